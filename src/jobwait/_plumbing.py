"""Driver plumbing: what the adapters in ``jobwait.adapters`` (part of this
distribution) share, kept out of the public surface.

``jobwait.__all__`` holds what users write: the machines, their events and actions,
``Backoff``, ``Statuses``, ``Phase``, the errors and a few helpers. The names here turn
what a fetch did into an event, build machines from adapter keywords, read HTTP
responses, and describe the machines for the docs. They are re-exported from the
private modules they live in (``from ._x import Name as Name``, as trio does), so this
one import line is all an adapter needs, and a new runtime or job API written in
``adapters/`` imports from here and from ``jobwait``. They are not covered by the
public API's stability: import them at your own risk.
"""

from ._advice import job_fields as job_fields
from ._advice import status_candidates as status_candidates
from ._auto import reading as auto_reading
from ._backoff import Jitter as Jitter
from ._backoff import usable_seconds as usable_seconds
from ._drive import RETRYABLE_STATUS_CODES as RETRYABLE_STATUS_CODES
from ._drive import cancel_failed as cancel_failed
from ._drive import fetch_failed as fetch_failed
from ._drive import is_retryable_status as is_retryable_status
from ._drive import make_waiter as make_waiter
from ._drive import observed as observed
from ._drive import retry_after_of as retry_after_of
from ._driver import BATCH_REFUSED_STATUS_CODES as BATCH_REFUSED_STATUS_CODES
from ._driver import FleetDriver as FleetDriver
from ._driver import Read as Read
from ._driver import Reads as Reads
from ._driver import Step as Step
from ._driver import refuses_batch as refuses_batch
from ._errors import RemoteError as RemoteError
from ._errors import error_from_json as error_from_json
from ._errors import error_to_json as error_to_json
from ._errors import is_json as is_json
from ._fleet import FLEET_SNAPSHOT_FORMAT as FLEET_SNAPSHOT_FORMAT
from ._fleet import BatchRefused as BatchRefused
from ._fleet import FleetAction as FleetAction
from ._fleet import FleetEvent as FleetEvent
from ._fleet import FleetState as FleetState
from ._fleet import FleetTransition as FleetTransition
from ._fleet import JobMissingError as JobMissingError
from ._fleet import batch_failed as batch_failed
from ._fleet import batch_observed as batch_observed
from ._fleet import fleet_transitions as fleet_transitions
from ._fleet import ionq_predicted_seconds as ionq_predicted_seconds
from ._fleet import make_fleet as make_fleet
from ._fleet import single_job as single_job
from ._http import DEFAULT_MAX_BODY_SIZE as DEFAULT_MAX_BODY_SIZE
from ._http import ResponseError as ResponseError
from ._http import body_excerpt as body_excerpt
from ._http import body_too_large as body_too_large
from ._http import parse_retry_after as parse_retry_after
from ._http import read_response as read_response
from ._http import request_timeout as request_timeout
from ._json import loads as loads_json
from ._numbers import check_count as check_count
from ._numbers import check_number as check_number
from ._options import JOB_DEFAULTS as JOB_DEFAULTS
from ._options import JOB_OPTIONS as JOB_OPTIONS
from ._options import FleetOptions as FleetOptions
from ._options import JobOptions as JobOptions
from ._options import WaiterOptions as WaiterOptions
from ._profiles import api_profile as api_profile
from ._profiles import with_api as with_api
from ._protocol import Action as Action
from ._protocol import Event as Event
from ._protocol import Nudged as Nudged
from ._text import ID_LIMIT as ID_LIMIT
from ._text import Redactor as Redactor
from ._text import preview as preview
from ._text import secret_values as secret_values
from ._waiter import SNAPSHOT_FORMAT as SNAPSHOT_FORMAT
from ._waiter import Transition as Transition
from ._waiter import transitions as transitions
from ._wakeup import Subscription as Subscription

__all__ = [
    "BATCH_REFUSED_STATUS_CODES",
    "DEFAULT_MAX_BODY_SIZE",
    "FLEET_SNAPSHOT_FORMAT",
    "ID_LIMIT",
    "JOB_DEFAULTS",
    "JOB_OPTIONS",
    "RETRYABLE_STATUS_CODES",
    "SNAPSHOT_FORMAT",
    "Action",
    "BatchRefused",
    "Event",
    "FleetAction",
    "FleetDriver",
    "FleetEvent",
    "FleetOptions",
    "FleetState",
    "FleetTransition",
    "Jitter",
    "JobMissingError",
    "JobOptions",
    "Nudged",
    "Read",
    "Reads",
    "Redactor",
    "RemoteError",
    "ResponseError",
    "Step",
    "Subscription",
    "Transition",
    "WaiterOptions",
    "api_profile",
    "auto_reading",
    "batch_failed",
    "batch_observed",
    "body_excerpt",
    "body_too_large",
    "cancel_failed",
    "check_count",
    "check_number",
    "error_from_json",
    "error_to_json",
    "fetch_failed",
    "fleet_transitions",
    "ionq_predicted_seconds",
    "is_json",
    "is_retryable_status",
    "job_fields",
    "loads_json",
    "make_fleet",
    "make_waiter",
    "observed",
    "parse_retry_after",
    "preview",
    "read_response",
    "refuses_batch",
    "request_timeout",
    "retry_after_of",
    "secret_values",
    "single_job",
    "status_candidates",
    "transitions",
    "usable_seconds",
    "with_api",
]
