"""The JobWaiter state machine: every decision about waiting for one job lives here.

Theory of operation
===================

Waiting for a remote job is a loop every SDK writes: fetch the job, read its status,
sleep with backoff, give up at a deadline. jobwait splits that loop in two. This module
is the half that *decides*; the adapters in ``jobwait.adapters`` are the half that
*does* (fetches over HTTP, sleeps on a clock). The two talk through plain values:

- The driver sends **events**, which say what happened: ``Start`` (the wait begins),
  ``Observed`` (a fetch returned the job), ``FetchFailed`` (a fetch raised), ``Woke``
  (the sleep we asked for is over), ``Nudged`` (a push says the job may have changed).
- ``JobWaiter.handle(event)`` answers with one **action**, which says what to do next:
  ``Poll`` (fetch now), ``Sleep(seconds)``, ``Done(job)`` or ``Raise(error)``.

Time is an input. Every event carries ``now``, monotonic seconds read by the driver
from whatever clock it runs on (``time.monotonic``, the asyncio loop, trio's clock, a
virtual clock in tests). This module never reads a clock, never sleeps and never does
IO, so the same waiter gives the same schedule under sync code, asyncio and trio, and
a test can drive it through hours of waiting with a list of numbers.

The machine
-----------

The waiter is always in one ``State``. ``_TABLE`` below lists, for each state, the
events it accepts, the method that handles each and the actions that method may
return; the action returned decides the next state (``Poll`` -> POLLING, ``Sleep`` ->
SLEEPING, ``Done`` -> DONE, ``Raise`` -> RAISED). Any other (state, event) pair is a
bug in the driver: ``handle`` raises ``UsageError`` and leaves the waiter unchanged.
DONE and RAISED are final: a waiter finishes exactly once, and any event after that
is a ``UsageError``. The docs draw the state diagram from ``_TABLE`` itself.

    IDLE     --Start-------> Poll                      -> POLLING
    POLLING  --Observed----> Sleep | Done | Raise      -> SLEEPING | DONE | RAISED
    POLLING  --FetchFailed-> Sleep | Raise             -> SLEEPING | RAISED
    POLLING  --SharedFetchFailed-> Sleep | Raise       -> SLEEPING | RAISED
    SLEEPING --Woke--------> Poll                      -> POLLING
    SLEEPING --Nudged------> Poll                      -> POLLING
    POLLING  --Nudged------> Poll (the one in flight)  -> POLLING
    POLLING or SLEEPING --Expired--> Raise             -> RAISED

(``Observed`` and ``FetchFailed`` may also answer ``Poll``: the extra poll a nudge
asked for; see "Pushes" below.)

The rules (the ``ionq_core.polling`` contract, kept exactly)
-------------------------------------------------------------

On each observation, in this order: a terminal status finishes the wait (``Done``, or
``Raise(JobFailedError)`` / ``Raise(JobCanceledError)`` when asked to raise); else,
if ``now >= deadline``, ``Raise(JobTimeoutError)``; else ``Sleep(min(interval,
deadline - now))`` and the interval grows by the factor up to the cap. A sleep that
was clamped to the deadline makes the following poll the last one, whatever the float
arithmetic of ``now + (deadline - now)`` gives. ``timeout=0`` makes exactly one poll;
``timeout=None`` never times out (the caller's own cancellation ends the wait).

A retryable fetch failure is retried on the same schedule; the ``max_fetch_errors``-th
failure in a row raises ``JobFetchError`` (this check comes before the deadline check),
and a retryable failure at or after the deadline raises ``JobTimeoutError``. A
non-retryable failure raises ``JobFetchError`` at once, except a ``JobStatusError`` (a
body that is not a job), which raises ``JobStatusError``. The fetch's exception is
always the ``__cause__``. A failure whose error has ``pending = True`` (an API's "not
there yet" answer, such as a 404 right after submission: see ``ApiProfile``) is a
pending poll instead: it sleeps on the schedule, never counts against
``max_fetch_errors``, and a wait that reaches its deadline so times out with it as
the cause.

A server hint (``retry_after`` on either event) is a floor for the next sleep, capped
at ``max_retry_after``; the sleep still never passes the deadline. So no sleep exceeds
``max(backoff.max, max_retry_after)``, and none is negative.

Every error carries the job id, the last status and job seen, the poll count and the
elapsed time, so nothing observed is lost when the wait ends badly.

A scheduler that polls many jobs with one request (``JobFleet``) reports a retryable
failure of that shared request as ``SharedFetchFailed``: the waiter answers with its own
next sleep, exactly as for a retryable ``FetchFailed``, and counts it as a poll, but the
failure counts against the scheduler's shared budget instead of ``max_fetch_errors``.
When the shared budget is spent the event says so (``spent``), and the waiter ends with
``JobFetchError`` chained to the real error, with a note naming the budget.

A scheduler that shares a request budget among many waiters (``JobFleet``) may have
to hold a due poll back past the deadline. It sends ``Expired(now)`` instead of
polling (POLLING or SLEEPING -> RAISED), and the wait ends with the same
``JobTimeoutError`` at its deadline. A lone driver never needs it: it always polls at
the deadline.

Pushes (``Nudged``)
-------------------

Polling is the safety net; a push (webhook, queue message, watch event) only brings a
poll forward. ``Nudged`` while SLEEPING answers ``Poll`` at once and leaves the backoff
where it was: the poll that was due stays due at the same time, so after the extra
poll the waiter sleeps the rest of the way to it (a server hint still floors that
sleep, the deadline still caps it). An extra poll that ends at or after the due time
simply is the due poll, and the schedule advances from it. ``Nudged`` while POLLING
answers ``Poll`` (the poll in flight stands) and is remembered: the answer in flight
may predate the push, so when it comes back still pending the waiter asks for one
more poll at once, then resumes the schedule the same way. However many nudges come
before a poll starts, they are one poll. A nudge after the wait ended is the driver's
to drop (the ``Wakeup`` a driver listens on forgets a wait when it ends); sent here it
is a ``UsageError`` like every late event. A nudge never moves the deadline, never
counts as a fetch error and never advances the interval, so a push for a job that is
still running costs exactly one extra poll.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Final, Unpack, cast

from ._advice import unreadable_status
from ._backoff import Backoff
from ._errors import (
    JobCanceledError,
    JobFailedError,
    JobFetchError,
    JobStatusError,
    JobTimeoutError,
    JobWaitError,
    UsageError,
)
from ._numbers import (
    as_float,
    check_count,
    check_number,
    finite,
    held_to,
    usable_seconds,
)
from ._options import (
    JOB_DEFAULTS,
    JOB_OPTIONS,
    JobOptions,
)
from ._protocol import (
    Done,
    EndReason,
    Event,
    Expired,
    FetchFailed,
    Nudged,
    Observed,
    Poll,
    Raise,
    SharedFetchFailed,
    Sleep,
    Start,
    Woke,
)
from ._statuses import Phase, Statuses, default_failure_of, default_status_of
from ._text import ID_LIMIT, STATUS_LIMIT, VALUE_LIMIT, preview

if TYPE_CHECKING:
    from ._profiles import ApiProfile

__all__ = ["JobWaiter", "State"]

log = logging.getLogger("jobwait")


class State(enum.Enum):
    """Where a :class:`JobWaiter` is in its machine (not the job's status: see Phase)."""

    IDLE = "idle"
    """Created; expects ``Start``."""
    POLLING = "polling"
    """Asked for a poll; expects ``Observed`` or ``FetchFailed``."""
    SLEEPING = "sleeping"
    """Asked for a sleep; expects ``Woke``."""
    DONE = "done"
    """Finished with ``Done``; accepts nothing more."""
    RAISED = "raised"
    """Finished with ``Raise``; accepts nothing more."""


# (state, event type) -> (handler method, actions it may return). The table *is* the
# machine: handle() dispatches through it, the docs draw the diagram from it, and the
# property tests check every handler returns only the actions listed here.
_TABLE: Final[dict[tuple[State, type[Any]], tuple[str, tuple[type[Any], ...]]]] = {
    (State.IDLE, Start): ("_on_start", (Poll,)),
    (State.POLLING, Observed): ("_on_observed", (Sleep, Poll, Done, Raise)),
    (State.POLLING, FetchFailed): ("_on_fetch_failed", (Sleep, Poll, Raise)),
    (State.POLLING, SharedFetchFailed): ("_on_shared_failure", (Sleep, Poll, Raise)),
    (State.SLEEPING, Woke): ("_on_woke", (Poll,)),
    (State.SLEEPING, Nudged): ("_on_nudged", (Poll,)),
    (State.POLLING, Nudged): ("_on_nudged_in_flight", (Poll,)),
    (State.POLLING, Expired): ("_on_expired", (Raise,)),
    (State.SLEEPING, Expired): ("_on_expired", (Raise,)),
}
_NEXT_STATE: Final[dict[type[Any], State]] = {
    Poll: State.POLLING,
    Sleep: State.SLEEPING,
    Done: State.DONE,
    Raise: State.RAISED,
}
# handle() is the hot path (hundreds of thousands of calls a second in fleets and
# simulations), and Enum hashing runs Python code: index the table by state once, and
# let each transition carry the next state's row along.
_ROWS: Final[dict[State, dict[type[Any], str]]] = {state: {} for state in State}
for (_state, _event), (_handler, _) in _TABLE.items():
    _ROWS[_state][_event] = _handler
_NEXT: Final[dict[type[Any], tuple[State, dict[type[Any], str]]]] = {
    action: (state, _ROWS[state]) for action, state in _NEXT_STATE.items()
}
_POLL: Final = Poll()
_NO_SLEEP: Final = Sleep(seconds=-1.0)
_FINAL: Final = frozenset({State.DONE, State.RAISED})


def _named(job_id: str | None) -> str:
    # Log lines name the job ("job j1"), or say "job" when it has no id (not "job None").
    return "job" if job_id is None else f"job {job_id}"


def _describe(error: BaseException) -> str:
    # A JobWaitError raised by a fetch (a body that is not a job) carries an empty wait
    # context of its own; the error being built will carry the real one.
    detail = error.reason if isinstance(error, JobWaitError) else str(error)
    text = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
    return preview(text, VALUE_LIMIT, quote=False)


class JobWaiter:
    """The sans-IO state machine that waits for one job.

    Feed it events with :meth:`handle` and perform the action each call returns; see
    the module's theory of operation. All options are keyword-only and validated here.

    Args:
        job_id: The job's id, carried into logs and errors. Optional.
        api: An :class:`~jobwait.ApiProfile`, a built-in profile's name
            (``"prefect"``), or ``"auto"`` to find the status and its meaning in any
            job API's answer: the profile's ``statuses``, ``status_of``, ``failure_of``
            and ``raise_on_cancel``, under the options given here (which win).
            Default ``None``: the options alone.
        timeout: Seconds from ``Start`` to the deadline (default 300). ``0`` polls
            exactly once; ``None`` never times out.
        backoff: The poll schedule (default ``Backoff()``: 1 s, x1.5, capped at 30 s).
        statuses: The status vocabulary (default IonQ v0.4).
        raise_on_failure: When ``True`` (default) a failed job ends the wait with
            ``JobFailedError``; when ``False`` it is returned through ``Done``.
        raise_on_cancel: When ``True`` a canceled job raises ``JobCanceledError``;
            by default it is returned through ``Done``.
        max_fetch_errors: The n-th consecutive retryable fetch failure raises
            ``JobFetchError`` (default 5; at least 1). An observation resets the count.
        max_retry_after: Cap in seconds on a server's ``retry_after`` hint (default 120).
        status_of: Reads the raw status from a job (default: key or attribute
            ``status``). If it raises, the wait ends with ``JobStatusError``.
        failure_of: Reads the failure payload from a failed job (default: key or
            attribute ``failure``, ``None`` when absent).

    Raises:
        ValueError: For a negative or NaN timeout, ``max_fetch_errors < 1``, a negative
            or non-finite ``max_retry_after`` (the message names the option), or an
            unknown profile name (the message lists the known ones).
        TypeError: For a ``backoff``, ``statuses`` or ``api`` of the wrong type.
    """

    __slots__ = (
        "_backoff",
        "_deadline",
        "_due",
        "_extra",
        "_failure_of",
        "_fetch_errors",
        "_final_poll",
        "_interval",
        "_last_action",
        "_last_error",
        "_last_job",
        "_last_status",
        "_lookup",
        "_max_fetch_errors",
        "_max_retry_after",
        "_now",
        "_nudged",
        "_phase",
        "_polls",
        "_prev_sleep",
        "_raise_on_cancel",
        "_raise_on_failure",
        "_row",
        "_sleep",
        "_started",
        "_state",
        "_status_changed",
        "_status_of",
        "_statuses",
        "_timeout",
        "_unknown_seen",
        "job_id",
    )

    #: The option names the constructor takes (adapters accept the same keywords):
    #: ``job_id`` and the per-job options of ``JobOptions``, their one definition.
    OPTIONS: ClassVar[tuple[str, ...]] = ("job_id", *JOB_OPTIONS)

    def __init__(
        self,
        *,
        job_id: str | None = None,
        api: ApiProfile | str | None = None,
        **options: Unpack[JobOptions],
    ) -> None:
        if api is not None:
            from ._profiles import merged  # profiles read HTTP answers: imported on use

            options = cast(JobOptions, merged(api, options))
        unknown = [name for name in options if name not in JOB_DEFAULTS]
        if unknown:
            raise TypeError(f"JobWaiter() got an unexpected keyword argument {unknown[0]!r}")
        given: dict[str, Any] = {**JOB_DEFAULTS, **options}
        timeout: float | None = given["timeout"]
        backoff: Backoff = given["backoff"]
        statuses: Statuses = given["statuses"]
        max_fetch_errors: int = given["max_fetch_errors"]
        status_of: Callable[[Any], Any] = given["status_of"]
        failure_of: Callable[[Any], Any] = given["failure_of"]
        if job_id is not None and not isinstance(job_id, str):
            raise TypeError(f"JobWaiter(job_id={job_id!r}) must be a string or None")
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, int | float):
                raise ValueError(f"JobWaiter(timeout={timeout!r}) must be a number or None")
            number = as_float(timeout)  # None: an int too large for a float
            if number is None or math.isnan(number) or number < 0:
                raise ValueError(
                    f"JobWaiter(timeout={preview(timeout)}) must be >= 0 and fit a float (or None)"
                )
            timeout = None if math.isinf(number) else number
        if not isinstance(backoff, Backoff):
            raise TypeError(f"JobWaiter(backoff=...) must be a jobwait.Backoff, got {backoff!r}")
        if not isinstance(statuses, Statuses):
            raise TypeError(f"JobWaiter(statuses=...) must be a jobwait.Statuses, got {statuses!r}")
        check_count("JobWaiter(max_fetch_errors=...)", max_fetch_errors, minimum=1)
        if not callable(status_of) or not callable(failure_of):
            raise TypeError("JobWaiter(status_of=..., failure_of=...) must be callables")
        self.job_id = job_id
        self._timeout = timeout
        self._backoff = backoff
        self._statuses = statuses
        self._lookup = statuses._lookup
        self._raise_on_failure = bool(given["raise_on_failure"])
        self._raise_on_cancel = bool(given["raise_on_cancel"])
        self._max_fetch_errors = max_fetch_errors
        self._max_retry_after = check_number(
            "JobWaiter(max_retry_after=...)", given["max_retry_after"], minimum=0.0
        )
        self._status_of = status_of
        self._failure_of = failure_of
        self._state = State.IDLE
        self._row = _ROWS[State.IDLE]
        self._started = 0.0
        self._now = 0.0
        self._deadline: float | None = None
        self._interval = backoff.initial
        self._prev_sleep = backoff.initial
        self._final_poll = False
        # Pushes: when the poll that is due falls (set with every Sleep), whether the
        # poll in flight is an extra one a nudge asked for, and whether a nudge came
        # while a poll was in flight.
        self._due = 0.0
        self._extra = False
        self._nudged = False
        self._fetch_errors = 0
        self._polls = 0
        self._last_status: str | None = None
        self._last_job: Any = None
        self._last_error: BaseException | None = None
        self._phase: Phase | None = None
        self._status_changed = False
        # Created on the first unknown status: most waits never see one, and an empty
        # set costs 216 bytes per waiter, which adds up in a fleet of thousands.
        self._unknown_seen: set[str] | None = None
        self._last_action: Poll | Sleep | Done | Raise | None = None
        # Sleep actions are immutable values: once the interval is capped every sleep
        # is the same, so the previous one is handed out again instead of rebuilt.
        self._sleep = _NO_SLEEP

    # --- the one entry point ---------------------------------------------------------

    def handle(self, event: Event) -> Poll | Sleep | Done | Raise:
        """Feed one event; perform the action returned, then report what happened.

        Returns:
            ``Poll``: fetch the job, then send ``Observed`` or ``FetchFailed``.
            ``Sleep``: sleep ``seconds``, then send ``Woke``.
            ``Done``: return ``job`` to your caller; the wait is over.
            ``Raise``: raise ``error`` (call ``cancel`` first if ``cancel_job``).

        Raises:
            UsageError: The event is not valid in the current state (see ``State``),
                or its ``now`` is NaN or earlier than the previous event's. The waiter
                is left unchanged. Every other problem comes back as ``Raise``.
        """
        handler = self._row.get(type(event))
        if handler is None:
            raise self._usage(event)
        now = event.now
        # Also catches NaN. Before Start there is no previous event: any finite reading
        # is valid (a monotonic clock's reference point is undefined, may be negative).
        if not now >= self._now and (self._state is not State.IDLE or finite(now) is None):
            raise UsageError(
                f"{type(event).__name__}(now={now!r}) is earlier than the previous "
                f"event's now={self._now!r}; now must come from a monotonic clock",
                **self._context(),
            )
        action: Poll | Sleep | Done | Raise = getattr(self, handler)(event)
        self._state, self._row = _NEXT[type(action)]
        self._last_action = action
        return action

    # --- transitions -------------------------------------------------------------

    def _on_start(self, event: Start) -> Poll:
        now = event.now
        self._started = self._now = now
        if self._timeout is not None:
            self._deadline = now + self._timeout
        return _POLL

    def _on_woke(self, event: Woke) -> Poll:
        self._now = event.now
        self._status_changed = False
        return _POLL

    def _on_nudged(self, event: Nudged) -> Poll:
        self._check_nudge(event)
        now = self._now = event.now
        self._status_changed = False
        # Before the due time this poll is an extra one; at or after it, it is simply
        # the poll that was due (a nudge that raced the end of the sleep).
        self._extra = now < self._due
        return _POLL

    def _on_nudged_in_flight(self, event: Nudged) -> Poll:
        self._check_nudge(event)
        self._now = event.now
        self._status_changed = False
        self._nudged = True
        return _POLL

    def _check_nudge(self, event: Nudged) -> None:
        job_id = event.job_id
        if job_id is not None and self.job_id is not None and job_id != self.job_id:
            raise UsageError(
                f"Nudged(job_id={job_id!r}) is for another job than this waiter's",
                **self._context(),
            )

    def _on_observed(self, event: Observed) -> Sleep | Poll | Done | Raise:
        job = event.job
        now = self._now = event.now
        self._polls += 1
        self._last_job = job
        self._last_error = None
        self._status_changed = False
        try:
            status = self._status_of(job)
        except Exception as exc:  # noqa: BLE001 - any reader failure is a status error
            reason = self._unreadable(job, exc) or str(exc)
            return self._fail(JobStatusError(reason, **self._context()), exc)
        if type(status) is not str:
            # Enum members (Qiskit's JobStatus, StrEnums) read through the vocabulary;
            # anything else gets an error that says how to map it.
            try:
                status = self._statuses.text(status)
            except TypeError as exc:
                # A fetch that returned the wrong kind of thing is named as such;
                # a real job with an unmappable status gets the mapping advice.
                reason = self._unreadable(job, None) or str(exc)
                return self._fail(JobStatusError(reason, **self._context()))
        self._fetch_errors = 0
        if status != self._last_status:
            self._status_changed = True
            log.info("%s: status %r -> %r", _named(self.job_id), self._last_status, status)
            self._last_status = status
        phase = self._lookup.get(status if self._statuses.case_sensitive else status.casefold())
        if phase is None:
            phase = Phase.UNKNOWN
            seen = self._unknown_seen
            if seen is None:
                seen = self._unknown_seen = set()
            if status not in seen:
                seen.add(status)
                if self._statuses.on_unknown == "wait":
                    log.warning(
                        "%s: unknown status %r; still waiting (list it in Statuses "
                        "to silence this)",
                        _named(self.job_id),
                        status,
                    )
        self._phase = phase
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: poll %d saw status %r", _named(self.job_id), self._polls, status)
        if phase is Phase.PENDING or phase is Phase.UNKNOWN:
            if phase is Phase.UNKNOWN and self._statuses.on_unknown == "raise":
                return self._fail(
                    JobStatusError(self._statuses.unknown_message(status), **self._context())
                )
            return self._after_poll(now, event.retry_after, None)
        if phase is Phase.SUCCEEDED:
            return Done(job=job)
        if phase is Phase.FAILED:
            if not self._raise_on_failure:
                return Done(job=job)
            try:
                failure = self._failure_of(job)
            except Exception as exc:  # noqa: BLE001 - any reader failure is a status error
                return self._fail(
                    JobStatusError(
                        f"the job failed, and reading its failure raised {_describe(exc)}",
                        **self._context(),
                    ),
                    exc,
                )
            reason = (
                "job failed, giving no reason (to read it from another field, pass "
                "failure_of=jobwait.field_reader('path.to.reason'))"
                if failure is None
                else f"job failed: {preview(failure)}"
            )
            return self._fail(
                JobFailedError(reason, failure=failure, **self._context()),
                reason=EndReason.DONE,
            )
        if not self._raise_on_cancel:
            return Done(job=job)
        return self._fail(
            JobCanceledError("job was canceled", **self._context()), reason=EndReason.DONE
        )

    def _unreadable(self, job: Any, problem: Exception | None) -> str | None:
        return unreadable_status(
            job, problem=problem, default_reader=self._status_of is default_status_of
        )

    def _on_fetch_failed(self, event: FetchFailed) -> Sleep | Poll | Raise:
        error = self._last_error = event.error
        self._now = event.now
        self._polls += 1
        self._status_changed = False
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s: poll %d failed (%s): %s",
                _named(self.job_id),
                self._polls,
                "retryable" if event.retryable else "not retryable",
                _describe(error),
            )
        if getattr(error, "pending", False) is True:
            # The API said "not there yet" (an ApiProfile's pending_http: a 404 just
            # after submission, Azure's 202): a pending poll, not a failed fetch.
            self._fetch_errors = 0
            return self._sleep_or_time_out(event.now, event.retry_after, error)
        if not event.retryable:
            if isinstance(error, JobStatusError):
                # The fetch worked but the body is not a job (an HTTP adapter with
                # retry_invalid_body=False): a status problem, not a fetch problem.
                return self._fail(JobStatusError(error.reason, **self._context()), error)
            return self._fail(
                JobFetchError(
                    f"fetching the job failed and retrying cannot fix it: {_describe(error)}",
                    **_http_context(error),
                    **self._context(),
                ),
                error,
            )
        self._fetch_errors += 1
        if self._fetch_errors >= self._max_fetch_errors:
            return self._fail(
                JobFetchError(
                    f"{self._fetch_errors} fetch{'es' if self._fetch_errors > 1 else ''} "
                    "in a row failed "
                    f"(max_fetch_errors={self._max_fetch_errors}); last: {_describe(error)}",
                    **_http_context(error),
                    **self._context(),
                ),
                error,
            )
        return self._after_poll(event.now, event.retry_after, error)

    def _on_shared_failure(self, event: SharedFetchFailed) -> Sleep | Poll | Raise:
        error = self._last_error = event.error
        self._now = event.now
        self._polls += 1  # a fetch attempt that carried this job, failed or not
        self._status_changed = False
        spent = event.spent
        if spent is None:
            # The scheduler retries the shared request and counts it against its own
            # budget: this job answers with its own schedule, as for FetchFailed.
            return self._after_poll(event.now, event.retry_after, error)
        failed = self._fail(
            JobFetchError(
                f"{spent}; last: {_describe(error)}",
                **_http_context(error),
                **self._context(),
            ),
            error,
        )
        failed.error.add_note(f"jobwait: gave up on this job because {spent}")
        return failed

    def _on_expired(self, event: Expired) -> Raise:
        deadline = self._deadline
        if deadline is None or not event.now >= deadline:
            # Checked before anything changes: a rejected event leaves the waiter as is.
            raise UsageError(
                f"Expired(now={event.now!r}) needs a deadline at or before now "
                f"(deadline={deadline!r})",
                **self._context(),
            )
        self._now = event.now
        self._status_changed = False
        return self._timed_out(event.cause)

    # --- shared decisions ----------------------------------------------------------

    def _after_poll(
        self, now: float, hint: float | None, cause: BaseException | None
    ) -> Sleep | Poll | Raise:
        # What follows a poll that left the job pending: the schedule, bent by pushes.
        if self._extra:
            if now < self._due:
                if self._nudged:
                    self._nudged = False
                    return _POLL
                return self._resume(now, hint)
            self._extra = False  # it reached the due time: it was the due poll
        action = self._sleep_or_time_out(now, hint, cause)
        if self._nudged:
            self._nudged = False
            if type(action) is Sleep:
                self._extra = True
                return _POLL
        return action

    def _resume(self, now: float, hint: float | None) -> Sleep:
        # After an extra poll: sleep the rest of the way to the poll that was due,
        # without advancing the interval (due <= deadline, so now < deadline here).
        self._extra = False
        seconds = self._due - now
        if hint is not None:
            seconds = self._floored(seconds, hint)
        return self._sleep_until(now, seconds)

    def _sleep_or_time_out(
        self, now: float, hint: float | None, cause: BaseException | None
    ) -> Sleep | Raise:
        deadline = self._deadline
        if deadline is not None and (self._final_poll or now >= deadline):
            return self._timed_out(cause)
        backoff = self._backoff
        interval = self._interval
        seconds = (
            interval if backoff.jitter is None else backoff.sleep_for(interval, self._prev_sleep)
        )
        self._prev_sleep = seconds
        self._interval = min(interval * backoff.factor, backoff.max)
        if hint is not None:
            seconds = self._floored(seconds, hint)
        return self._sleep_until(now, seconds)

    def _floored(self, seconds: float, hint: float) -> float:
        # A usable server hint is a floor for the sleep, capped at max_retry_after.
        floor = usable_seconds(hint, self._max_retry_after)
        return floor if floor is not None and floor > seconds else seconds

    def _sleep_until(self, now: float, seconds: float) -> Sleep:
        deadline = self._deadline
        if deadline is not None:
            left = deadline - now
            if seconds >= left:
                seconds = left
                self._final_poll = True
        self._due = now + seconds
        sleep = self._sleep
        if sleep.seconds != seconds:
            sleep = self._sleep = Sleep(seconds=seconds)
        return sleep

    def _timed_out(self, cause: BaseException | None) -> Raise:
        unknown = ""
        if self._phase is Phase.UNKNOWN:
            # A finished job in a status nobody listed looks like a slow one: say so.
            unknown = (
                f"; its last status {preview(self._last_status, STATUS_LIMIT)} was never "
                "recognised (if it "
                "means the job ended, list it in Statuses, or pass api= for its API)"
            )
        return self._fail(
            JobTimeoutError(
                f"job did not finish within the timeout of {self._timeout:g}s{unknown}",
                timeout=self._timeout,
                **self._context(),
            ),
            cause,
            reason=EndReason.TIMEOUT,
        )

    def _fail(
        self,
        error: JobWaitError,
        cause: BaseException | None = None,
        *,
        reason: EndReason = EndReason.ERROR,
    ) -> Raise:
        if cause is not None:
            error.__cause__ = cause
            error.__suppress_context__ = True
        return Raise(error=error, reason=reason)

    def _context(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "last_status": self._last_status,
            "last_job": self._last_job,
            "polls": self._polls,
            "elapsed": self._now - self._started,
        }

    def _usage(self, event: object) -> UsageError:
        if self._state in _FINAL:
            reason = (
                f"the wait is already over ({self._state.name}); "
                f"{type(event).__name__} came after it"
            )
        else:
            expected = " or ".join(t.__name__ for t in self._row)
            reason = (
                f"{type(event).__name__} is not valid while {self._state.name}; expected {expected}"
            )
        return UsageError(reason, **self._context())

    # --- read-only state -----------------------------------------------------------

    @property
    def state(self) -> State:
        """Where the waiter is in its machine."""
        return self._state

    @property
    def finished(self) -> bool:
        """``True`` once ``Done`` or ``Raise`` was returned."""
        return self._state in _FINAL

    @property
    def polls(self) -> int:
        """Fetch attempts reported so far (``Observed`` plus ``FetchFailed``)."""
        return self._polls

    @property
    def elapsed(self) -> float:
        """Seconds from ``Start`` to the latest event (0 before ``Start``)."""
        return self._now - self._started

    @property
    def last_status(self) -> str | None:
        """The last status string read, or ``None``."""
        return self._last_status

    @property
    def last_error(self) -> BaseException | None:
        """The exception of the latest poll if it failed (``FetchFailed``); ``None``
        after an observation. Per-poll hooks report it (``PollReport.error``)."""
        return self._last_error

    @property
    def last_job(self) -> Any:
        """The last job payload observed, or ``None``."""
        return self._last_job

    @property
    def phase(self) -> Phase | None:
        """The phase of the last observed status, or ``None`` before one was read."""
        return self._phase

    @property
    def status_changed(self) -> bool:
        """Whether the latest event was an observation that changed the status (the
        first observation counts). Drivers call ``on_status`` when this is true."""
        return self._status_changed

    @property
    def deadline(self) -> float | None:
        """The deadline in the driver's clock (``Start.now + timeout``), or ``None``
        before ``Start`` and when ``timeout`` is ``None``."""
        return self._deadline

    @property
    def timeout(self) -> float | None:
        """The timeout in seconds, as configured."""
        return self._timeout

    @property
    def backoff(self) -> Backoff:
        """The poll schedule, as configured."""
        return self._backoff

    @property
    def statuses(self) -> Statuses:
        """The status vocabulary, as configured."""
        return self._statuses

    @property
    def last_action(self) -> Poll | Sleep | Done | Raise | None:
        """The action most recently returned (after :meth:`restore`, the action the
        driver should perform next: ``Poll`` or ``Sleep``)."""
        return self._last_action

    def options(self) -> JobOptions:
        """The per-job options this waiter runs with, as validated (every name of
        ``JobOptions``): pass them to another ``JobWaiter`` or adapter to wait alike."""
        # Each option lives in the slot of the same name: derived, never listed again.
        return cast(JobOptions, {name: getattr(self, f"_{name}") for name in JOB_OPTIONS})

    def time_left(self, now: float) -> float | None:
        """Seconds from ``now`` to the deadline (never negative), or ``None`` when
        there is no deadline. Fetches use it to bound their own request timeout."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - now)

    def __repr__(self) -> str:
        return (
            f"<JobWaiter job_id={preview(self.job_id, ID_LIMIT)} state={self._state.name} "
            f"polls={self._polls} last_status={preview(self._last_status, STATUS_LIMIT)}>"
        )

    # --- snapshot / restore ----------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The wait's full state as a JSON-serialisable dict, to resume elsewhere.

        The moment of the snapshot is the latest event's ``now``, kept as ``"now"`` so
        that :meth:`restore` can go on counting on the same clock
        (``same_clock=True``). The last job is kept when it is JSON-serialisable (plain
        dicts, lists, strings, numbers, booleans, None); its status is always kept.
        Callables (``status_of``, ``failure_of``, the jitter generator) are not: pass
        them to :meth:`restore`.

        Raises:
            UsageError: If the wait has already finished: there is nothing to resume.
        """
        # The saved form lives in _snapshots, which imports this module.
        from ._snapshots import waiter_snapshot

        return waiter_snapshot(self)

    @classmethod
    def restore(
        cls,
        snapshot: Any,
        *,
        now: float,
        same_clock: bool = False,
        status_of: Callable[[Any], Any] = default_status_of,
        failure_of: Callable[[Any], Any] = default_failure_of,
        rng: Any = None,
    ) -> JobWaiter:
        """Continue a wait from :meth:`snapshot`, maybe in another process.

        Two modes, for two kinds of driver:

        - ``same_clock=False`` (default): ``now`` (on the new driver's clock) is taken
          as the moment the snapshot was taken. Time spent stored does not count
          against the timeout: use it when the new process has another monotonic
          clock. The waiter resumes in the same state; perform :attr:`last_action` (a
          ``Poll``, or the same ``Sleep``) next.
        - ``same_clock=True``: ``now`` is read from the same clock the snapshot's
          events used (``time.time()`` on every worker, Redis ``TIME``, ...), so the
          deadline keeps counting while the snapshot is stored: a job given
          ``timeout=3600`` at 10:00 times out at 11:00, however long it sat in
          storage. A pending ``Sleep`` is shortened by the time that passed; one that
          ran out while stored is ``Sleep(0)``: the poll it led to is owed and made at
          once, as a lone wait that ran late makes it. If the deadline passed while
          stored, that poll is the last: it ends the wait as a lone wait's last poll at
          its deadline does (the job, if it finished; else ``JobTimeoutError``). A
          ``now`` earlier than the snapshot's (clock skew between machines) counts as no
          time passed.

        Without jitter, and with no time passing, the rest of the schedule is
        identical to the uninterrupted wait's in both modes.

        Example::

            saved = json.dumps(waiter.snapshot())          # events ran on time.time()
            ...                                            # hours later, elsewhere
            waiter = JobWaiter.restore(json.loads(saved), now=time.time(), same_clock=True)
            action = waiter.last_action                    # Poll, Sleep or Raise

        Raises:
            ValueError: If the snapshot is corrupted, of another format or version,
                holds an invalid configuration, or (``same_clock=True``) lacks the
                clock reading older snapshots did not keep (the message says what).
        """
        from ._snapshots import restore_waiter

        return restore_waiter(
            cls,
            snapshot,
            now=now,
            same_clock=same_clock,
            status_of=status_of,
            failure_of=failure_of,
            rng=rng,
        )

    def _held_due(self, due: float, *, deferred: bool = False) -> float:
        """A stored time of this job's next poll, ``due`` seconds after its latest
        event, held to the rules that set it (the one rule every restore applies, the
        fleet's included): no later than the longest sleep, ``max(backoff.max,
        max_retry_after)`` (a poll a fleet ``deferred`` on a prediction may be later),
        and never past the deadline."""
        latest = math.inf if deferred else max(self._backoff.max, self._max_retry_after)
        if self._deadline is not None:
            latest = min(latest, self._deadline - self._now)
        return held_to(due, latest)


def _http_context(error: BaseException) -> dict[str, Any]:
    # HTTP adapters raise fetch errors that carry these attributes; copying them onto
    # the JobFetchError lets callers read status_code etc. from the error they catch.
    status = getattr(error, "status_code", None)
    request_id = getattr(error, "request_id", None)
    excerpt = getattr(error, "body_excerpt", None)
    return {
        "status_code": status if isinstance(status, int) and not isinstance(status, bool) else None,
        "request_id": request_id if isinstance(request_id, str) else None,
        "body_excerpt": excerpt[:200] if isinstance(excerpt, str) else None,
    }
