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

from ._advice import awaitable as awaitable
from ._advice import check_fetch as check_fetch
from ._advice import job_fields as job_fields
from ._advice import missing_extra as missing_extra
from ._advice import server_message as server_message
from ._advice import status_candidates as status_candidates
from ._advice import status_hint as status_hint
from ._apis import ionq_predicted_seconds as ionq_predicted_seconds
from ._auto import reading as auto_reading
from ._backoff import Jitter as Jitter
from ._backoff import usable_seconds as usable_seconds
from ._diagrams import FleetTransition as FleetTransition
from ._diagrams import Transition as Transition
from ._diagrams import fleet_transitions as fleet_transitions
from ._diagrams import transitions as transitions
from ._driver import BATCH_REFUSED_STATUS_CODES as BATCH_REFUSED_STATUS_CODES
from ._driver import FleetDriver as FleetDriver
from ._driver import Read as Read
from ._driver import Reads as Reads
from ._driver import Step as Step
from ._driver import make_fleet as make_fleet
from ._driver import make_waiter as make_waiter
from ._driver import refuses_batch as refuses_batch
from ._errors import JobMissingError as JobMissingError
from ._errors import RemoteError as RemoteError
from ._errors import error_from_json as error_from_json
from ._errors import error_to_json as error_to_json
from ._errors import is_json as is_json
from ._fetched import batch_failed as batch_failed
from ._fetched import batch_observed as batch_observed
from ._fetched import cancel_failed as cancel_failed
from ._fetched import retry_after_of as retry_after_of
from ._fetched import single_job as single_job
from ._fleet import FleetAction as FleetAction
from ._fleet import FleetState as FleetState
from ._http import body_excerpt as body_excerpt
from ._http import body_too_large as body_too_large
from ._json import loads as loads_json
from ._numbers import check_count as check_count
from ._numbers import check_number as check_number
from ._options import JOB_DEFAULTS as JOB_DEFAULTS
from ._options import JOB_OPTIONS as JOB_OPTIONS
from ._options import FleetOptions as FleetOptions
from ._options import JobOptions as JobOptions
from ._options import WaiterOptions as WaiterOptions
from ._profiles import api_profile as api_profile
from ._profiles import check_template as check_template
from ._profiles import template_markers as template_markers
from ._profiles import with_api as with_api
from ._protocol import Action as Action
from ._protocol import BatchRefused as BatchRefused
from ._protocol import Event as Event
from ._protocol import FleetEvent as FleetEvent
from ._report import poll_report as poll_report
from ._snapshots import FLEET_SNAPSHOT_FORMAT as FLEET_SNAPSHOT_FORMAT
from ._snapshots import SNAPSHOT_FORMAT as SNAPSHOT_FORMAT
from ._statuses import default_failure_of as default_failure_of
from ._statuses import default_status_of as default_status_of
from ._text import ID_LIMIT as ID_LIMIT
from ._text import Redactor as Redactor
from ._text import preview as preview
from ._text import secret_values as secret_values
from ._wakeup import Subscription as Subscription

__all__ = [
    "BATCH_REFUSED_STATUS_CODES",
    "FLEET_SNAPSHOT_FORMAT",
    "ID_LIMIT",
    "JOB_DEFAULTS",
    "JOB_OPTIONS",
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
    "Read",
    "Reads",
    "Redactor",
    "RemoteError",
    "Step",
    "Subscription",
    "Transition",
    "WaiterOptions",
    "api_profile",
    "auto_reading",
    "awaitable",
    "batch_failed",
    "batch_observed",
    "body_excerpt",
    "body_too_large",
    "cancel_failed",
    "check_count",
    "check_fetch",
    "check_number",
    "check_template",
    "default_failure_of",
    "default_status_of",
    "error_from_json",
    "error_to_json",
    "fleet_transitions",
    "ionq_predicted_seconds",
    "is_json",
    "job_fields",
    "loads_json",
    "make_fleet",
    "make_waiter",
    "missing_extra",
    "poll_report",
    "preview",
    "refuses_batch",
    "retry_after_of",
    "secret_values",
    "server_message",
    "single_job",
    "status_candidates",
    "status_hint",
    "template_markers",
    "transitions",
    "usable_seconds",
    "with_api",
]

# Names that moved to the public surface: importing them from here still works for one
# release, with a DeprecationWarning naming where they live now.
_MOVED: dict[str, str] = {
    "Nudged": "jobwait",
    "DEFAULT_MAX_BODY_SIZE": "jobwait.http",
    "RETRYABLE_STATUS_CODES": "jobwait.http",
    "ResponseError": "jobwait.http",
    "fetch_failed": "jobwait",
    "is_retryable_status": "jobwait.http",
    "observed": "jobwait",
    "parse_retry_after": "jobwait.http",
    "read_response": "jobwait.http",
    "request_timeout": "jobwait.http",
}


def __getattr__(name: str) -> object:
    where = _MOVED.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    import warnings

    warnings.warn(
        f"jobwait._plumbing.{name} is deprecated: import it from {where}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(where), name)
