"""jobwait: wait for remote jobs to finish, correctly, in every Python runtime.

This package is the pure core: a sans-IO state machine, :class:`JobWaiter`, that
consumes events (``Start``, ``Observed``, ``FetchFailed``, ``Woke``) and returns
actions (``Poll``, ``Sleep``, ``Done``, ``Raise``), and :class:`JobFleet`, which
schedules many waiters over shared requests. They never read a clock, sleep or touch a
socket. The runtimes that perform their actions live in :mod:`jobwait.adapters`
(sync, asyncio, trio, httpx, IonQ, the CLI); :mod:`jobwait.http` holds the HTTP helpers
for a fetch of your own, and the plumbing the adapters share is in ``jobwait._plumbing``.
"""

from ._backoff import Backoff as Backoff
from ._errors import FleetFailedError as FleetFailedError
from ._errors import JobCanceledError as JobCanceledError
from ._errors import JobFailedError as JobFailedError
from ._errors import JobFetchError as JobFetchError
from ._errors import JobStatusError as JobStatusError
from ._errors import JobTimeoutError as JobTimeoutError
from ._errors import JobWaitError as JobWaitError
from ._errors import UsageError as UsageError
from ._fetched import fetch_failed as fetch_failed
from ._fetched import is_retryable as is_retryable
from ._fetched import observed as observed
from ._fleet import JobFleet as JobFleet
from ._profiles import ApiProfile as ApiProfile
from ._protocol import AllDone as AllDone
from ._protocol import BatchFailed as BatchFailed
from ._protocol import BatchObserved as BatchObserved
from ._protocol import CancelJobs as CancelJobs
from ._protocol import Done as Done
from ._protocol import EndReason as EndReason
from ._protocol import Expired as Expired
from ._protocol import Fetched as Fetched
from ._protocol import FetchFailed as FetchFailed
from ._protocol import Finished as Finished
from ._protocol import FleetSleep as FleetSleep
from ._protocol import Interrupted as Interrupted
from ._protocol import Nudged as Nudged
from ._protocol import Observed as Observed
from ._protocol import Poll as Poll
from ._protocol import PollBatch as PollBatch
from ._protocol import Raise as Raise
from ._protocol import SharedFetchFailed as SharedFetchFailed
from ._protocol import Sleep as Sleep
from ._protocol import Start as Start
from ._protocol import StatusChanged as StatusChanged
from ._protocol import Woke as Woke
from ._public import claim as _claim
from ._report import PollReport as PollReport
from ._statuses import Phase as Phase
from ._statuses import Statuses as Statuses
from ._statuses import field_reader as field_reader
from ._waiter import JobWaiter as JobWaiter
from ._waiter import State as State
from ._wakeup import Wakeup as Wakeup

__version__ = "0.1.0.dev0"

# What users write (h11 exports 23 names; we keep to 40 or fewer). Driver plumbing
# that the adapters share lives in jobwait._plumbing.
__all__ = [
    "AllDone",
    "ApiProfile",
    "Backoff",
    "BatchFailed",
    "BatchObserved",
    "CancelJobs",
    "Done",
    "EndReason",
    "Expired",
    "FetchFailed",
    "Fetched",
    "Finished",
    "FleetFailedError",
    "FleetSleep",
    "Interrupted",
    "JobCanceledError",
    "JobFailedError",
    "JobFetchError",
    "JobFleet",
    "JobStatusError",
    "JobTimeoutError",
    "JobWaitError",
    "JobWaiter",
    "Nudged",
    "Observed",
    "Phase",
    "Poll",
    "PollBatch",
    "PollReport",
    "Raise",
    "SharedFetchFailed",
    "Sleep",
    "Start",
    "State",
    "StatusChanged",
    "Statuses",
    "UsageError",
    "Wakeup",
    "Woke",
    "fetch_failed",
    "field_reader",
    "is_retryable",
    "observed",
]

# What a user catches, builds or calls names its public home in tracebacks, reprs and
# pickles, as trio does: jobwait.JobTimeoutError, not jobwait._errors.JobTimeoutError.
_claim(globals(), __all__, __name__)
