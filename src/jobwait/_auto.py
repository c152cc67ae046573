"""Zero-config reading (``api="auto"``): a job's status and its meaning, untold.

Theory of operation
===================

The built-in profiles (``_apis.py``) already hold the vocabularies of the job APIs
people run, each cited from its SDK. ``auto`` reads an answer with all of them:

1. **Signatures.** Some APIs' answers carry a field no other API's do (Prefect's
   ``state.type``, MLflow's ``run.info.status``, Ray's ``submission_id``, a Databricks
   run's ``state.life_cycle_state``, a Kubernetes ``Job``...). The first profile in
   :data:`SIGNATURES` whose signature the answer carries reads it with its own status
   and failure readers, derived statuses included.
2. **Well-known paths.** Otherwise the status is the first of :data:`STATUS_PATHS`
   (``status``, ``state``, ``status.phase``, ...) that holds a string (or an enum
   member), and the failure's reason the first of :data:`FAILURE_PATHS` that is set.
3. **One meaning.** The status means what :data:`UNIVERSAL` says, case-insensitively:
   every status of every built-in profile, with the few on which two APIs disagree
   resolved once in :data:`CONFLICTS` (and why). IonQ's vocabulary is a part of it.

The settling is done again on every answer (a Job's conditions appear later, an
operation's ``done`` too) and is a pure function of the answer: :func:`reading` says
where the status was found, for the CLI's live line and for messages. A status the
vocabulary does not list keeps the wait going, as with any profile.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ._apis import BUILT_IN
from ._profiles import ApiProfile
from ._statuses import MISSING, Phase, Statuses, read_field

__all__ = [
    "AUTO",
    "CONFLICTS",
    "FAILURE_PATHS",
    "PROFILES",
    "SIGNATURES",
    "STATUS_PATHS",
    "UNIVERSAL",
    "Reading",
    "reading",
]

#: Where a status is looked for when no signature matched, in this order.
STATUS_PATHS: Final = (
    "status",
    "state",
    "phase",
    "status.state",
    "status.phase",
    "status.status",
    "state.type",
    "state.status",
    "run.info.status",
    "info.status",
    "metadata.status",
    "life_cycle_state",
    "job.status",
    "job.state",
    "run.status",
    "run.state",
    "data.status",
    "result.status",
)

#: Where a failed job's reason is looked for when no signature matched, in this order.
FAILURE_PATHS: Final = (
    "failure",
    "failureReason",
    "failure_reason",
    "error",
    "error_message",
    "errorMessage",
    "errors",
    "exception",
    "cause",
    "statusReason",
    "status_reason",
    "state.message",
    "state.state_message",
    "status.message",
    "message",
    "reason",
    "detail",
)


@dataclass(frozen=True, slots=True)
class Conflict:
    """A status two built-in profiles read differently, and what ``auto`` makes of it."""

    phase: Phase
    why: str


#: Every status (case-folded) on which two built-in profiles disagree, resolved once.
#: A conflict missing here is an error at import (a test names it).
CONFLICTS: Final[Mapping[str, Conflict]] = {
    "completed": Conflict(
        Phase.SUCCEEDED,
        "github-actions lists it as pending (the run's conclusion comes with it); "
        "for ionq, braket, qiskit, prefect and sagemaker-training it is the success",
    ),
    "deleting": Conflict(
        Phase.PENDING,
        "azure's and azure-location's provisioning state (pending), "
        "sagemaker-training's cancel; a word for something still happening stays "
        "pending, as cancelling and stopping do",
    ),
    "skipped": Conflict(
        Phase.CANCELED,
        "github-actions counts a skipped run as a success, databricks-runs' SKIPPED "
        "run never ran; canceled says the work was not done",
    ),
}

#: Common words no built-in profile spells, with their meaning.
_EXTRA: Final[Mapping[str, Phase]] = {
    "errored": Phase.FAILED,
    "processing": Phase.PENDING,
}


def _universal() -> Statuses:
    meanings: dict[str, set[Phase]] = {}
    for profile in BUILT_IN.values():
        statuses = profile.statuses
        for phase, values in (
            (Phase.PENDING, statuses.pending),
            (Phase.SUCCEEDED, statuses.succeeded),
            (Phase.FAILED, statuses.failed),
            (Phase.CANCELED, statuses.canceled),
        ):
            for value in values:
                meanings.setdefault(value.casefold(), set()).add(phase)
    for value, phase in _EXTRA.items():
        meanings.setdefault(value, set()).add(phase)
    sets: dict[Phase, set[str]] = {p: set() for p in Phase if p is not Phase.UNKNOWN}
    for value, phases in meanings.items():
        conflict = CONFLICTS.get(value)
        if conflict is not None:
            sets[conflict.phase].add(value)
        elif len(phases) == 1:
            sets[next(iter(phases))].add(value)
        else:  # pragma: no cover - a broken edit of the profiles
            names = ", ".join(sorted(p.value for p in phases))
            raise ImportError(f"built-in profiles read {value!r} as {names}: add it to CONFLICTS")
    return Statuses(
        pending=sets[Phase.PENDING],
        succeeded=sets[Phase.SUCCEEDED],
        failed=sets[Phase.FAILED],
        canceled=sets[Phase.CANCELED],
        case_sensitive=False,
    )


#: The one vocabulary ``auto`` reads every status with: every built-in profile's, with
#: :data:`CONFLICTS` resolved, case-insensitive.
UNIVERSAL: Final = _universal()


def _carries(*paths: str) -> Callable[[Any], bool]:
    def carries(job: Any) -> bool:
        return all(read_field(job, path) is not MISSING for path in paths)

    return carries


def _is_a(kind: str) -> Callable[[Any], bool]:
    return lambda job: read_field(job, "kind", None) == kind


def _workflow(job: Any) -> bool:
    # The Argo server's answer may leave out `kind`; a workflow's spec names its
    # entry point (or the template it runs), and its status is {} at first.
    return (
        read_field(job, "kind", None) == "Workflow"
        or read_field(job, "spec.entrypoint") is not MISSING
        or read_field(job, "spec.workflowTemplateRef") is not MISSING
    )


def _vertex(job: Any) -> bool:
    state = read_field(job, "state", None)
    state = state.name if isinstance(state, enum.Enum) else state
    return isinstance(state, str) and state.startswith("JOB_STATE_")


def _operation(job: Any) -> bool:
    name = read_field(job, "name", None)
    named = isinstance(name, str) and (name.startswith("operations/") or "/operations/" in name)
    return read_field(job, "done") is not MISSING or named


@dataclass(frozen=True, slots=True)
class Signature:
    """A field only one API's answers carry: ``profile`` reads an answer that has it."""

    profile: str
    field: str  # where that profile reads the status, for messages
    carries: Callable[[Any], bool]


#: The signatures, most specific first.
SIGNATURES: Final = (
    Signature("github-actions", "status, then conclusion", _carries("conclusion", "status")),
    Signature(
        "databricks-runs",
        "state.life_cycle_state, then state.result_state",
        _carries("state.life_cycle_state"),
    ),
    Signature("kubernetes-job", "status.conditions", _is_a("Job")),
    Signature("prefect", "state.type", _carries("state.type")),
    Signature("mlflow", "run.info.status", _carries("run.info.status")),
    Signature("dagster-run", "data.runOrError.status", _carries("data.runOrError")),
    Signature("argo-workflows", "status.phase", _workflow),
    Signature("vertex-ai", "state", _vertex),
    Signature("aws-step-functions", "status", _carries("executionArn", "status")),
    Signature("ray-jobs", "status", _carries("submission_id", "entrypoint", "status")),
    Signature("sagemaker-training", "TrainingJobStatus", _carries("TrainingJobStatus")),
    Signature("qiskit", "state.status", _carries("state.status")),
    Signature("airflow-dag-run", "state", _carries("dag_run_id", "state")),
    Signature("braket", "status", _carries("quantumTaskArn", "status")),
    Signature("aws-batch", "status", _carries("jobQueue", "status")),
    Signature("google-lro", "done, then response or error", _operation),
)


@dataclass(frozen=True, slots=True)
class Reading:
    """Where ``auto`` found a job's status.

    Attributes:
        field: The field (or fields) the status comes from, e.g. ``"state.type"``.
        profile: The built-in profile whose readers read it (its signature matched),
            or ``None`` for a well-known path read with the universal vocabulary.
    """

    field: str
    profile: str | None = None

    def __str__(self) -> str:
        return self.field if self.profile is None else f"{self.field}, as {self.profile}"


def _is_status(value: Any) -> bool:
    return isinstance(value, str | enum.Enum) and not isinstance(value, bool)


def _settle(job: Any) -> tuple[Reading, ApiProfile | None]:
    for signature in SIGNATURES:
        if signature.carries(job):
            return Reading(signature.field, signature.profile), BUILT_IN[signature.profile]
    odd = ""  # the first well-known field holding something else
    for path in STATUS_PATHS:
        value = read_field(job, path)
        if _is_status(value):
            return Reading(path), None
        if not odd and value is not MISSING and not isinstance(value, Mapping):
            odd = f"; its {path!r} field holds {_kind(value)}, not a status"
    raise LookupError(
        "none of the fields jobwait looks for holds a status "
        f"({', '.join(STATUS_PATHS[:6])}, ...){odd}"
    )


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool | int | float):
        return repr(value)
    return f"a {type(value).__name__}"


def reading(job: Any) -> Reading | None:
    """Where ``auto`` reads ``job``'s status, or ``None`` when it finds none."""
    try:
        return _settle(job)[0]
    except LookupError:
        return None


def auto_status(job: Any) -> Any:
    """``auto``'s status reader (see the module's theory).

    Raises:
        LookupError: No signature matched and no well-known path holds a status, or
            the matched profile's own reader raised it.
    """
    found, profile = _settle(job)
    if profile is not None:
        return profile.status_of(job)
    return read_field(job, found.field)


def _is_set(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def auto_failure(job: Any) -> Any:
    """``auto``'s failure reader: the matched profile's, else the first set field of
    :data:`FAILURE_PATHS`; ``None`` when the job carries none."""
    try:
        _, profile = _settle(job)
    except LookupError:
        profile = None
    if profile is not None:
        return profile.failure_of(job)
    for path in FAILURE_PATHS:
        value = read_field(job, path, None)
        if _is_set(value):
            return value
    return None


AUTO: Final = ApiProfile(
    name="auto",
    statuses=UNIVERSAL,
    status_of=auto_status,
    failure_of=auto_failure,
    source="jobwait: every built-in profile's vocabulary (src/jobwait/_auto.py)",
)

#: Every profile :meth:`ApiProfile.named` knows: the built-in ones and ``auto``.
PROFILES: Final[Mapping[str, ApiProfile]] = {**BUILT_IN, "auto": AUTO}
