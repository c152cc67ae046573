"""``JobWaitTrigger``: many jobs of one API waited on in Airflow's triggerer.

Its ``run()`` is a driver of the core's fleet and nothing more: it rebuilds the fleet
from its arguments (:func:`jobwait._durable.resume_fleet`, on the wall clock the
arguments were written on), reads through the durable core's async source
(:func:`jobwait.adapters._durable.build_async_source`: bounded requests, the profile's
reading of every answer) and hands the fleet's steps to the one async fleet loop
(:func:`jobwait.adapters._runtime.loop.run_fleet`); what it adds is Airflow's IO: the
connections it reads secrets from, and the one ``TriggerEvent`` it fires.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Final

from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TriggerEvent

from jobwait import AllDone, CancelJobs, Finished, FleetFailedError, JobFleet
from jobwait._durable import SourceSpec, outcome_record, resume_fleet
from jobwait._plumbing import ID_LIMIT, FleetDriver, Read, Step, check_number, preview

from .._durable import AsyncSource, build_async_source
from .._runtime.loop import Alarm, _cancel_each, current_runtime, run_fleet
from ._common import (
    check_options,
    checked_instant,
    conn_ids,
    event_payload,
    job_ids_from,
    per_job_lines,
    resolvers,
    stored_options,
    wait_options,
)

#: The path Airflow re-creates the trigger from (the public name, not this module's).
CLASSPATH: Final = "jobwait.adapters.airflow.JobWaitTrigger"

_CANCEL_GRACE: Final = 10.0


class JobWaitTrigger(BaseTrigger):
    """Wait for many jobs of one API in Airflow's triggerer; fire one event when every
    job has an outcome (or, with ``fail_fast``, at the first job that ends in error).

    Everything it needs travels in its arguments, as JSON, and nothing secret does: the
    source's description (credentials named by Airflow connection id or environment
    variable, read in the triggerer), the ids, the fleet's options, and the deadline as
    a wall-clock instant. Re-created from :meth:`serialize` after a triggerer restart,
    it continues the same wait (:func:`jobwait._durable.resume_fleet`): each job keeps
    its deadline and is read once, at once (for a job past its deadline that read is
    its last: its outcome if it finished, else ``JobTimeoutError``), and polls go on
    from the interval the schedule had reached.

    The event's payload is JSON: ``{"format": "jobwait.airflow/1", "outcomes": {job_id:
    record}, "unfinished": [...], "stopped_by": job_id or null}``, each record the
    durable core's outcome record (``jobwait.adapters.airflow.outcome_of`` rebuilds the job or
    its error).

    Args:
        source: The job API: a :class:`~jobwait._durable.SourceSpec` or its
            ``to_json()`` form.
        job_ids: The jobs (strings; repeats dropped).
        options: :class:`~jobwait.JobFleet` options (``backoff``, ``max_batch``,
            ``max_polls_per_second``, ``fail_fast``, ...), as objects or in their JSON
            form; not ``timeout`` when ``deadline`` is given (it counts from
            ``started``).
        started: When the wait began, seconds since the epoch (default: now).
        deadline: When every job times out, seconds since the epoch (``None``: no
            deadline; default ``started + options["timeout"]`` when that is given).
        cancel_on_timeout: Cancel each job that times out through the source's
            ``cancel_url`` (and, with ``fail_fast``, the jobs left when it stops).
            Never on a triggerer restart.
        log_status_changes: Also log each job's status changes (the core's INFO lines,
            ``job 'a': status 'ready' -> 'started'``). Default ``False``: the trigger
            logs one line when it starts and one when it fires (with counts); through
            Airflow's log pipeline the per-job lines add about two thirds to the
            wait's CPU.

    Raises:
        ValueError: A malformed source description, ids or instants, ``deadline``
            before ``started``, or an invalid option value.
        TypeError: An unknown option, or one that cannot be stored (a callable).
    """

    def __init__(
        self,
        *,
        source: SourceSpec | Mapping[str, Any],
        job_ids: Iterable[str],
        options: Mapping[str, Any] | None = None,
        started: float | None = None,
        deadline: float | None = None,
        cancel_on_timeout: bool = False,
        log_status_changes: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's is untyped
        spec = source if isinstance(source, SourceSpec) else SourceSpec.from_json(source)
        ids = job_ids_from(list(job_ids))
        stored = stored_options(options)
        begun = checked_instant("started", time.time() if started is None else started)
        assert begun is not None
        timeout = stored.pop("timeout", None)
        if deadline is None and timeout is not None:
            deadline = begun + check_number("options['timeout']", timeout, minimum=0.0)
        elif timeout is not None:
            raise TypeError("pass either deadline= or options['timeout'], not both")
        end = checked_instant("deadline", deadline, optional=True)
        if end is not None and end < begun:
            raise ValueError(f"deadline={end!r} is before started={begun!r}")
        check_options(spec, self._fleet_options(spec, stored, begun, end))
        self._spec = spec
        self._ids = tuple(ids)
        self._stored = stored
        self._started = begun
        self._deadline = end
        self._cancel_on_timeout = bool(cancel_on_timeout)
        self._log_status_changes = bool(log_status_changes)

    # --- what it carries --------------------------------------------------------------

    @property
    def spec(self) -> SourceSpec:
        """The source's description."""
        return self._spec

    @property
    def job_ids(self) -> tuple[str, ...]:
        """The jobs waited on."""
        return self._ids

    @property
    def started(self) -> float:
        """When the wait began, seconds since the epoch."""
        return self._started

    @property
    def cancel_on_timeout(self) -> bool:
        """Whether a job that times out is canceled remotely."""
        return self._cancel_on_timeout

    @property
    def log_status_changes(self) -> bool:
        """Whether each job's status changes are logged (the core's INFO lines)."""
        return self._log_status_changes

    @property
    def deadline(self) -> float | None:
        """When every job times out, seconds since the epoch (``None``: never)."""
        return self._deadline

    @staticmethod
    def _fleet_options(
        spec: SourceSpec, stored: Mapping[str, Any], started: float, deadline: float | None
    ) -> dict[str, Any]:
        options = wait_options(spec, stored)
        options["timeout"] = None if deadline is None else deadline - started
        return options

    def fleet_options(self) -> dict[str, Any]:
        """The :class:`~jobwait.JobFleet` options the wait runs with (``timeout``
        counting from :attr:`started`)."""
        return self._fleet_options(self._spec, self._stored, self._started, self._deadline)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the keyword arguments that re-create this trigger: JSON,
        names of credentials only."""
        return (
            CLASSPATH,
            {
                "source": self._spec.to_json(),
                "job_ids": list(self._ids),
                "options": dict(self._stored),
                "started": self._started,
                "deadline": self._deadline,
                "cancel_on_timeout": self._cancel_on_timeout,
                "log_status_changes": self._log_status_changes,
            },
        )

    def __repr__(self) -> str:
        # Short, unlike BaseTrigger's (every kwarg): a trigger may carry 10,000 ids.
        return (
            f"<JobWaitTrigger {len(self._ids)} job(s) at {_where(self._spec)}, "
            f"deadline {_instant(self._deadline)}>"
        )

    # --- the wait ---------------------------------------------------------------------

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait for every job; yield one :class:`TriggerEvent` (see the class).

        Raises:
            LookupError: A connection or environment variable the source needs is not
                available in the triggerer (``AirflowNotFoundException`` for an
                unknown connection), or a connection without a password.
            ValueError: A secret that an HTTP header cannot carry.
        """
        source = await self._source()
        try:
            with per_job_lines(self._log_status_changes):
                payload = await self._wait(source)
        finally:
            if source.aclose is not None:
                await source.aclose()
        yield TriggerEvent(payload)  # type: ignore[no-untyped-call]  # Airflow's is untyped

    async def _source(self) -> AsyncSource:
        # Connections are read here, in the triggerer, and go nowhere but into the
        # client's headers (Airflow masks their passwords in every log it writes).
        connections = {
            conn_id: await BaseHook.aget_connection(conn_id) for conn_id in conn_ids(self._spec)
        }
        resolve, base_url_of = resolvers(connections)
        return build_async_source(self._spec, resolve=resolve, base_url_of=base_url_of)

    async def _wait(self, source: AsyncSource) -> dict[str, Any]:
        rt = current_runtime()
        # The fleet runs on the wall clock its arguments were written on, read through
        # the loop's monotonic clock so that a wall-clock step cannot run it backwards.
        wall, mono = time.time(), rt.clock()

        def clock() -> float:
            return wall + (rt.clock() - mono)

        fleet = resume_fleet(
            self.fleet_options(),
            self._ids,
            started=self._started,
            now=clock(),
            status_of=source.status_of,
            failure_of=source.failure_of,
        )
        driver = FleetDriver(
            fleet,
            reads="batch" if source.batch else "single",
            is_retryable=source.is_retryable,
            retry_after_of=source.retry_after_of,
        )
        cancel = source.cancel if self._cancel_on_timeout else None
        records: dict[str, dict[str, Any]] = {}
        to_cancel: tuple[str, ...] = ()

        async def on_action(action: Step) -> None:
            nonlocal to_cancel
            if type(action) is Finished:
                job_id, outcome = action.job_id, action.outcome
                records[job_id] = outcome_record(
                    outcome, status_of=source.status_of, polls=fleet.polls(job_id)
                )[1]
                if action.cancel_job and cancel is not None:
                    await rt.run_cancel(
                        _cancel_each(cancel, (job_id,), outcome), outcome, _CANCEL_GRACE
                    )
            elif type(action) is CancelJobs:
                to_cancel = action.ids  # the fleet's Raise comes next

        def hooks(action: Step) -> Any:
            # Only Finished and CancelJobs come here (the fleet reports nothing else).
            kind = type(action)
            return on_action(action) if kind is Finished or kind is CancelJobs else None

        async def read(job: Read) -> Any:
            return await source.fetch_many(job.ids, time_left=job.time_left)  # type: ignore[call-arg]

        self.log.info(
            "jobwait: waiting for %d job(s) at %s, deadline %s",
            len(self._ids),
            _where(self._spec),
            _instant(self._deadline),
        )
        end = await run_fleet(
            driver, read, rt=rt, clock=clock, sleep=None, on_action=hooks, alarm=Alarm(rt)
        )
        if isinstance(end, AllDone):
            payload = event_payload(records)
        else:
            error = end.error
            if to_cancel and cancel is not None:
                await rt.run_cancel(_cancel_each(cancel, to_cancel, error), error, _CANCEL_GRACE)
            if not isinstance(error, FleetFailedError):
                raise error
            payload = event_payload(records, error.unfinished, error.job_id)
        self.log.info("jobwait: %s", _summary(fleet, records, payload["unfinished"]))
        return payload


def _where(spec: SourceSpec) -> str:
    return preview(spec.batch_url or spec.url, ID_LIMIT)


def _instant(seconds: float | None) -> str:
    if seconds is None:
        return "none"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _summary(
    fleet: JobFleet, records: Mapping[str, Mapping[str, Any]], unfinished: list[str]
) -> str:
    kinds: dict[str, int] = {}
    for record in records.values():
        kind = record.get("status") if "job" in record else record["error"]["type"]
        kinds[str(kind)] = kinds.get(str(kind), 0) + 1
    counted = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    left = f", {len(unfinished)} left unfinished" if unfinished else ""
    return f"{len(records)} job(s) finished ({counted}){left}; {fleet.requests} request(s)"
