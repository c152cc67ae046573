"""jobwait: wait for remote jobs to finish, correctly, in every Python runtime.

This package is the pure core: a sans-IO state machine, :class:`JobWaiter`, that
consumes events (``Start``, ``Observed``, ``FetchFailed``, ``Woke``) and returns
actions (``Poll``, ``Sleep``, ``Done``, ``Raise``). It never reads a clock, sleeps or
touches a socket. The runtimes that perform its actions live in
:mod:`jobwait.adapters` (sync, asyncio, trio, httpx, IonQ).
"""

from ._backoff import Backoff as Backoff
from ._drive import RETRYABLE_STATUS_CODES as RETRYABLE_STATUS_CODES
from ._drive import WaiterOptions as WaiterOptions
from ._drive import cancel_failed as cancel_failed
from ._drive import fetch_failed as fetch_failed
from ._drive import is_retryable as is_retryable
from ._drive import is_retryable_status as is_retryable_status
from ._drive import make_waiter as make_waiter
from ._drive import observed as observed
from ._drive import retry_after_of as retry_after_of
from ._errors import JobCanceledError as JobCanceledError
from ._errors import JobFailedError as JobFailedError
from ._errors import JobFetchError as JobFetchError
from ._errors import JobStatusError as JobStatusError
from ._errors import JobTimeoutError as JobTimeoutError
from ._errors import JobWaitError as JobWaitError
from ._errors import UsageError as UsageError
from ._http import DEFAULT_MAX_BODY_SIZE as DEFAULT_MAX_BODY_SIZE
from ._http import ResponseError as ResponseError
from ._http import body_excerpt as body_excerpt
from ._http import parse_retry_after as parse_retry_after
from ._http import read_response as read_response
from ._http import request_timeout as request_timeout
from ._protocol import Action as Action
from ._protocol import Done as Done
from ._protocol import Event as Event
from ._protocol import Fetched as Fetched
from ._protocol import FetchFailed as FetchFailed
from ._protocol import Observed as Observed
from ._protocol import Poll as Poll
from ._protocol import Raise as Raise
from ._protocol import Sleep as Sleep
from ._protocol import Start as Start
from ._protocol import Woke as Woke
from ._statuses import Phase as Phase
from ._statuses import Statuses as Statuses
from ._statuses import field_reader as field_reader
from ._waiter import SNAPSHOT_FORMAT as SNAPSHOT_FORMAT
from ._waiter import JobWaiter as JobWaiter
from ._waiter import State as State
from ._waiter import Transition as Transition
from ._waiter import transitions as transitions

__version__ = "0.1.0.dev0"

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "RETRYABLE_STATUS_CODES",
    "SNAPSHOT_FORMAT",
    "Action",
    "Backoff",
    "Done",
    "Event",
    "FetchFailed",
    "Fetched",
    "JobCanceledError",
    "JobFailedError",
    "JobFetchError",
    "JobStatusError",
    "JobTimeoutError",
    "JobWaitError",
    "JobWaiter",
    "Observed",
    "Phase",
    "Poll",
    "Raise",
    "ResponseError",
    "Sleep",
    "Start",
    "State",
    "Statuses",
    "Transition",
    "UsageError",
    "WaiterOptions",
    "Woke",
    "body_excerpt",
    "cancel_failed",
    "fetch_failed",
    "field_reader",
    "is_retryable",
    "is_retryable_status",
    "make_waiter",
    "observed",
    "parse_retry_after",
    "read_response",
    "request_timeout",
    "retry_after_of",
    "transitions",
]
