"""jobwait: wait for remote jobs to finish, correctly, in every Python runtime.

This package is the pure core: a sans-IO state machine, :class:`JobWaiter`, that
consumes events (``Start``, ``Observed``, ``FetchFailed``, ``Woke``) and returns
actions (``Poll``, ``Sleep``, ``Done``, ``Raise``). It never reads a clock, sleeps or
touches a socket. The runtimes that perform its actions live in
:mod:`jobwait.adapters` (sync, asyncio, trio, httpx, IonQ).
"""

from ._backoff import Backoff as Backoff
from ._drive import RETRYABLE_STATUS_CODES as RETRYABLE_STATUS_CODES
from ._drive import JobOptions as JobOptions
from ._drive import WaiterOptions as WaiterOptions
from ._drive import cancel_failed as cancel_failed
from ._drive import fetch_failed as fetch_failed
from ._drive import is_retryable as is_retryable
from ._drive import is_retryable_status as is_retryable_status
from ._drive import make_waiter as make_waiter
from ._drive import observed as observed
from ._drive import retry_after_of as retry_after_of
from ._errors import FleetFailedError as FleetFailedError
from ._errors import JobCanceledError as JobCanceledError
from ._errors import JobFailedError as JobFailedError
from ._errors import JobFetchError as JobFetchError
from ._errors import JobStatusError as JobStatusError
from ._errors import JobTimeoutError as JobTimeoutError
from ._errors import JobWaitError as JobWaitError
from ._errors import UsageError as UsageError
from ._fleet import AllDone as AllDone
from ._fleet import BatchFailed as BatchFailed
from ._fleet import BatchObserved as BatchObserved
from ._fleet import CancelJobs as CancelJobs
from ._fleet import Finished as Finished
from ._fleet import FleetAction as FleetAction
from ._fleet import FleetEvent as FleetEvent
from ._fleet import FleetOptions as FleetOptions
from ._fleet import FleetSleep as FleetSleep
from ._fleet import JobFleet as JobFleet
from ._fleet import JobMissingError as JobMissingError
from ._fleet import PollBatch as PollBatch
from ._fleet import StatusChanged as StatusChanged
from ._fleet import batch_failed as batch_failed
from ._fleet import batch_observed as batch_observed
from ._fleet import ionq_predicted_seconds as ionq_predicted_seconds
from ._fleet import make_fleet as make_fleet
from ._fleet import single_job as single_job
from ._http import DEFAULT_MAX_BODY_SIZE as DEFAULT_MAX_BODY_SIZE
from ._http import ResponseError as ResponseError
from ._http import body_excerpt as body_excerpt
from ._http import parse_retry_after as parse_retry_after
from ._http import read_response as read_response
from ._http import request_timeout as request_timeout
from ._profiles import ApiProfile as ApiProfile
from ._protocol import Action as Action
from ._protocol import Done as Done
from ._protocol import Event as Event
from ._protocol import Expired as Expired
from ._protocol import Fetched as Fetched
from ._protocol import FetchFailed as FetchFailed
from ._protocol import Observed as Observed
from ._protocol import Poll as Poll
from ._protocol import Raise as Raise
from ._protocol import SharedFetchFailed as SharedFetchFailed
from ._protocol import Sleep as Sleep
from ._protocol import Start as Start
from ._protocol import Woke as Woke
from ._report import PollReport as PollReport
from ._statuses import Phase as Phase
from ._statuses import Statuses as Statuses
from ._statuses import field_reader as field_reader
from ._waiter import SNAPSHOT_FORMAT as SNAPSHOT_FORMAT
from ._waiter import JobWaiter as JobWaiter
from ._waiter import State as State
from ._waiter import Transition as Transition
from ._waiter import transitions as transitions
from ._wakeup import Wakeup as Wakeup

__version__ = "0.1.0.dev0"

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "RETRYABLE_STATUS_CODES",
    "SNAPSHOT_FORMAT",
    "Action",
    "AllDone",
    "ApiProfile",
    "Backoff",
    "BatchFailed",
    "BatchObserved",
    "CancelJobs",
    "Done",
    "Event",
    "Expired",
    "FetchFailed",
    "Fetched",
    "Finished",
    "FleetAction",
    "FleetEvent",
    "FleetFailedError",
    "FleetOptions",
    "FleetSleep",
    "JobCanceledError",
    "JobFailedError",
    "JobFetchError",
    "JobFleet",
    "JobMissingError",
    "JobOptions",
    "JobStatusError",
    "JobTimeoutError",
    "JobWaitError",
    "JobWaiter",
    "Observed",
    "Phase",
    "Poll",
    "PollBatch",
    "PollReport",
    "Raise",
    "ResponseError",
    "SharedFetchFailed",
    "Sleep",
    "Start",
    "State",
    "StatusChanged",
    "Statuses",
    "Transition",
    "UsageError",
    "WaiterOptions",
    "Wakeup",
    "Woke",
    "batch_failed",
    "batch_observed",
    "body_excerpt",
    "cancel_failed",
    "fetch_failed",
    "field_reader",
    "ionq_predicted_seconds",
    "is_retryable",
    "is_retryable_status",
    "make_fleet",
    "make_waiter",
    "observed",
    "parse_retry_after",
    "read_response",
    "request_timeout",
    "retry_after_of",
    "single_job",
    "transitions",
]
