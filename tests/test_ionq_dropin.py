"""Change one import, break nothing: the same user code through ``ionq_core.polling`` and
through ``jobwait.adapters.ionq``, side by side, with real ionq-core 0.2.0 clients over
real HTTP on loopback (a ``JobServer`` serving IonQ v0.4 job JSON), sync and asyncio.

Each scenario runs a migrating user's program twice: once with ``api = ionq_core.polling``
and once with ``api = jobwait.adapters.ionq`` (the one import that changes). The program
keeps its ``except`` clauses written against ionq-core's names. We compare what it
returns: the job's type and every attribute, the error's type family and attributes,
and which ``except`` clauses catch it (every clause that catches ionq-core's error must
catch ours). Cost: about 3 s of real time in all (10 ms poll intervals).
"""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
import textwrap
import types
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import ionq_core
import ionq_core.polling
import pytest
from ionq_core.models import Failure

import jobwait
from jobwait.adapters import ionq
from jobwait.adapters.server import JobServer
from jobwait.testing import Fault

realtime = pytest.mark.realtime

KEY = "sk-ionq-dropin-0123456789"
FAILURE = {"code": "SimulationError", "message": "calibration lost"}
DONE: dict[str, Any] = {"durations": {"ready": 0.0, "started": 0.0}}
SOON: dict[str, Any] = {"durations": {"ready": 0.03, "started": 0.03}}
PENDING: dict[str, Any] = {"durations": {"ready": 10_000.0}}
APIS: dict[str, types.ModuleType] = {"ionq_core": ionq_core.polling, "jobwait": ionq}
MODES = ["sync", "asyncio"]

# Every except clause a migrating user may have written, by name.
CLAUSES: dict[str, type[BaseException]] = {
    "IonQError": ionq_core.IonQError,
    "JobFailedError": ionq_core.JobFailedError,
    "polling.JobFailedError": ionq_core.polling.JobFailedError,
    "JobTimeoutError": ionq_core.JobTimeoutError,
    "polling.JobTimeoutError": ionq_core.polling.JobTimeoutError,
    "APIError": ionq_core.APIError,
    "NotFoundError": ionq_core.NotFoundError,
    "AuthenticationError": ionq_core.AuthenticationError,
    "ServerError": ionq_core.ServerError,
    "RateLimitError": ionq_core.RateLimitError,
    "APIConnectionError": ionq_core.APIConnectionError,
}


def authenticated(server: JobServer) -> ionq_core.AuthenticatedClient:
    return ionq_core.AuthenticatedClient(
        base_url=server.url, token=KEY, prefix="apiKey", timeout=httpx.Timeout(5.0)
    )


def ionq_client(server: JobServer) -> ionq_core.AuthenticatedClient:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # http:// on loopback
        client: ionq_core.AuthenticatedClient = ionq_core.IonQClient(
            api_key=KEY, base_url=server.url, max_retries=0
        )
    return client


def program(api: types.ModuleType, mode: str, client: Any, job_id: Any, **kw: Any) -> Any:
    """The user's program: wait, and say what happened in the user's own terms."""

    def handled(error: BaseException) -> tuple[str, BaseException]:
        # The user's handlers, written against ionq-core's classes.
        try:
            raise error
        except api.JobFailedError as e:
            return ("failed: " + str(getattr(e.failure, "message", e.failure)), e)
        except ionq_core.polling.JobTimeoutError as e:
            return (f"timed out at {e.last_status}", e)
        except ionq_core.NotFoundError as e:
            return (f"not found ({e.status_code})", e)
        except ionq_core.IonQError as e:
            return ("ionq error", e)

    if mode == "sync":
        with client:
            try:
                return api.wait_for_job(client, job_id, **kw)
            except ionq_core.IonQError as error:
                return handled(error)

    async def main() -> Any:
        async with client:
            try:
                return await api.async_wait_for_job(client, job_id, **kw)
            except ionq_core.IonQError as error:
                return handled(error)

    return asyncio.run(main())


def side_by_side(
    server: JobServer,
    mode: str,
    script: dict[str, Any] | None,
    client: Callable[[JobServer], Any] = authenticated,
    job_id: Any = None,
    ours: dict[str, Any] | None = None,
    **kw: Any,
) -> tuple[Any, Any, list[int], list[int]]:
    """Run the program through both libraries, each on its own copy of the job
    (``script``) or both on ``job_id``; ``ours`` are jobwait-only options."""
    out: dict[str, Any] = {}
    polls: dict[str, list[int]] = {}
    for name, api in APIS.items():
        jid = job_id if script is None else server.submit(**script)
        before = len(server.requests)
        extra = (ours or {}) if api is ionq else {}
        out[name] = program(api, mode, client(server), jid, **kw, **extra)
        polls[name] = [r.status_code or 0 for r in server.requests[before:]]
    return out["ionq_core"], out["jobwait"], polls["ionq_core"], polls["jobwait"]


def caught_by(error: BaseException) -> set[str]:
    return {name for name, cls in CLAUSES.items() if isinstance(error, cls)}


def assert_same_error(
    theirs: tuple[str, BaseException], ours: tuple[str, BaseException], same_handler: bool = True
) -> None:
    if same_handler:
        assert ours[0] == theirs[0]  # the same handler ran, with the same information
    assert caught_by(theirs[1]) <= caught_by(ours[1])
    assert isinstance(ours[1], jobwait.JobWaitError)
    assert ours[1].job_id is not None


def job_fields(job: Any) -> dict[str, Any]:
    return {
        "type": type(job),
        **{
            name: getattr(job, name)
            for name in (
                "id",
                "status",
                "type_",
                "backend",
                "submitted_at",
                "started_at",
                "completed_at",
                "execution_duration_ms",
                "failure",
                "results",
                "child_job_ids",
            )
        },
        "output": job.output.to_dict(),
        "settings": job.settings.to_dict(),
        "to_dict": {k: v for k, v in job.to_dict().items() if k != "id"},
    }


# --- returned jobs ----------------------------------------------------------------


@realtime
@pytest.mark.parametrize("mode", MODES)
def test_a_completed_job_is_ionq_cores_own_model(server: JobServer, mode: str) -> None:
    job_id = server.submit(**SOON)
    theirs, ours, _, polls = side_by_side(server, mode, None, job_id=job_id, poll_interval=0.01)
    assert type(theirs).__name__ == "SingleCircuitJob"
    assert job_fields(ours) == job_fields(theirs)
    assert ours.output.to_dict() == {}  # ionq-core's README: completed.output.to_dict()
    assert polls[-1] == 200


@realtime
@pytest.mark.parametrize("mode", MODES)
def test_a_failed_job_returned_has_ionq_cores_failure(server: JobServer, mode: str) -> None:
    script = {**DONE, "outcome": "failed", "failure": FAILURE}
    theirs, ours, _, _ = side_by_side(server, mode, script, raise_on_failure=False)
    assert type(ours.failure) is type(theirs.failure) is Failure
    assert ours.failure == theirs.failure == Failure(**FAILURE)  # type: ignore[arg-type]


@realtime
@pytest.mark.parametrize("mode", MODES)
def test_a_canceled_job_is_returned(server: JobServer, mode: str) -> None:
    theirs, ours, p1, p2 = side_by_side(server, mode, {**DONE, "outcome": "canceled"})
    assert (type(ours), ours.status) == (type(theirs), theirs.status) == (type(theirs), "canceled")
    assert p1 == p2 == [200]


@realtime
@pytest.mark.parametrize("mode", MODES)
def test_a_uuid_job_id_is_accepted(server: JobServer, mode: str) -> None:
    job_uuid = uuid.uuid4()
    server.submit(id=str(job_uuid), **DONE)
    theirs, ours, _, _ = side_by_side(server, mode, None, job_id=job_uuid)
    assert ours.id == theirs.id == str(job_uuid)


# --- errors -----------------------------------------------------------------------


@realtime
@pytest.mark.parametrize("mode", MODES)
def test_a_failed_job_raises_the_same_error(server: JobServer, mode: str) -> None:
    script = {**DONE, "outcome": "failed", "failure": FAILURE}
    theirs, ours, p1, p2 = side_by_side(server, mode, script, poll_interval=0.01)
    assert_same_error(theirs, ours)
    assert ours[0] == "failed: calibration lost"
    error = ours[1]
    assert type(error.failure) is Failure
    assert str(error).startswith(str(theirs[1]).replace(theirs[1].job_id, error.job_id))
    assert (error.last_status, error.polls) == ("failed", 1)
    assert p1 == p2 == [200]


@realtime
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("timeout", [0.05, 0, -1])
def test_timeouts_raise_the_same_error(server: JobServer, mode: str, timeout: float) -> None:
    # timeout <= 0: one poll, then JobTimeoutError, in both.
    theirs, ours, p1, p2 = side_by_side(server, mode, PENDING, poll_interval=0.01, timeout=timeout)
    assert_same_error(theirs, ours)
    assert (ours[1].timeout, ours[1].last_status) == (theirs[1].timeout, theirs[1].last_status)
    assert ours[1].timeout == timeout
    if timeout <= 0:
        assert p1 == p2 == [200]
    else:
        assert len(p2) >= 2


@realtime
@pytest.mark.parametrize("mode", MODES)
def test_poll_interval_zero_polls_back_to_back(server: JobServer, mode: str) -> None:
    theirs, ours, p1, p2 = side_by_side(server, mode, PENDING, poll_interval=0, timeout=0.3)
    assert_same_error(theirs, ours)
    assert len(p1) > 3
    assert len(p2) > 3


@realtime
@pytest.mark.parametrize("mode", MODES)
def test_an_unknown_job_is_an_ionq_error_that_says_failed_to_fetch(
    server: JobServer, mode: str
) -> None:
    # A plain AuthenticatedClient: ionq-core raises IonQError("Failed to fetch job ...").
    theirs, ours, p1, p2 = side_by_side(server, mode, None, job_id="no-such-job")
    # The one change a user may see: ours is also NotFoundError (what ionq-core raises
    # for a 404 through IonQClient), so a handler for it, written first, now runs.
    assert (theirs[0], ours[0]) == ("ionq error", "not found (404)")
    assert_same_error(theirs, ours, same_handler=False)
    assert str(theirs[1]) == "Failed to fetch job no-such-job"
    assert str(ours[1]).startswith("Failed to fetch job no-such-job: ")
    assert isinstance(ours[1], jobwait.JobFetchError)
    assert isinstance(ours[1], ionq_core.NotFoundError)  # what IonQClient users catch
    assert (ours[1].status_code, ours[1].request_id) == (404, f"req-{len(server.requests):06d}")
    assert p1 == [404]
    # asyncio shares by default, and a lone wait sends exactly its own GET.
    assert p2 == [404]


@realtime
@pytest.mark.parametrize("mode", MODES)
def test_ionq_client_http_errors_are_ionq_cores_classes(server: JobServer, mode: str) -> None:
    # IonQClient's transport raises NotFoundError itself; ours is that class too.
    theirs, ours, _, _ = side_by_side(server, mode, None, ionq_client, job_id="nope")
    assert type(theirs[1]) is ionq_core.NotFoundError
    assert_same_error(theirs, ours)
    error = ours[1]
    assert (error.status_code, error.message) == (theirs[1].status_code, theirs[1].message)
    assert error.body == theirs[1].body
    assert isinstance(error.__cause__, ionq_core.NotFoundError)


@realtime
@pytest.mark.parametrize("mode", MODES)
def test_exhausted_retries_say_failed_to_fetch(server: JobServer, mode: str) -> None:
    # ionq-core gives up on the first 503; jobwait retries, then raises an IonQError
    # (here also ServerError) whose message starts the same way.
    script = {**DONE, "faults": [Fault("503", poll=1, count=10)]}
    theirs, ours, p1, p2 = side_by_side(
        server, mode, script, poll_interval=0.01, ours={"max_fetch_errors": 3}
    )
    assert str(theirs[1]).startswith("Failed to fetch job ")
    assert_same_error(theirs, ours, same_handler=False)
    assert str(ours[1]).startswith(f"Failed to fetch job {ours[1].job_id}: ")
    assert isinstance(ours[1], ionq_core.ServerError)
    assert p1 == [503]
    # max_fetch_errors=3 ends the wait, shared (asyncio, the default) or not.
    assert p2 == [503] * 3


def test_positional_constructors_as_in_users_mocks() -> None:
    failure = Failure(code="SimulationError", message="m")
    for theirs, ours in [
        (ionq_core.polling.JobFailedError("j1", failure), ionq.JobFailedError("j1", failure)),
        (
            ionq_core.polling.JobTimeoutError("j1", 5.0, "running"),
            ionq.JobTimeoutError("j1", 5.0, "running"),
        ),
    ]:
        assert isinstance(ours, type(theirs))
        assert isinstance(ours, jobwait.JobWaitError)
        assert caught_by(theirs) <= caught_by(ours)
        assert str(ours).startswith(str(theirs))
        for name in ("job_id", "failure", "timeout", "last_status"):
            if hasattr(theirs, name):
                assert getattr(ours, name) == getattr(theirs, name)
        again = pickle.loads(pickle.dumps(ours))
        assert (type(again), str(again)) == (type(ours), str(ours))
    keywords = ionq.JobTimeoutError(job_id="j2", timeout=1, last_status="ready")
    assert keywords.timeout == 1


@realtime
def test_converted_errors_pickle_and_keep_context(server: JobServer) -> None:
    result = program(ionq, "sync", ionq_client(server), "nope")
    error = result[1]
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert str(again) == str(error)
    assert (again.status_code, again.request_id, again.polls) == (404, error.request_id, 1)


# --- batch forms ------------------------------------------------------------------


@realtime
@pytest.mark.parametrize("mode", MODES)
def test_batch_forms_return_ionq_cores_models_and_errors(server: JobServer, mode: str) -> None:
    done = server.submit(**SOON)
    failed = server.submit(**DONE, outcome="failed", failure=FAILURE)
    pending = server.submit(**PENDING)
    ids = [done, uuid.UUID(int=0), failed, pending]
    server.submit(id=str(ids[1]), **DONE)
    options: dict[str, Any] = {"poll_interval": 0.01, "timeout": 0.1}
    if mode == "sync":
        with authenticated(server) as client:
            results = ionq.wait_for_jobs(client, ids, **options)
    else:

        async def main() -> Any:
            async with authenticated(server) as client:
                return await ionq.async_wait_for_jobs(client, ids, **options)

        results = asyncio.run(main())
    with authenticated(server) as client:
        alone = ionq_core.polling.wait_for_job(client, done)
    assert job_fields(results[done]) == job_fields(alone)
    assert type(results[str(ids[1])]) is type(alone)
    assert isinstance(results[failed], ionq_core.polling.JobFailedError)
    assert type(results[failed].failure) is Failure
    assert isinstance(results[pending], ionq_core.polling.JobTimeoutError)
    assert results[pending].timeout == 0.1
    batches = [r.path for r in server.requests[:-1]]
    assert batches
    assert all(path.startswith("/v0.4/jobs?ids=") for path in batches)


# --- argument edges ---------------------------------------------------------------


def refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError("no request may be sent for invalid arguments")


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"poll_interval": float("nan")}, ValueError),
        ({"poll_interval": float("inf")}, ValueError),
        ({"timeout": float("nan")}, ValueError),
        ({"timeout": "5"}, TypeError),
        ({"poll_interval": True}, TypeError),
    ],
)
def test_what_ionq_core_would_misread_is_refused(options: dict[str, Any], error: type) -> None:
    with (
        ionq.client(KEY, transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(error, match=next(iter(options))),
    ):
        ionq.wait_for_job(client, "j", **options)


# --- without ionq-core --------------------------------------------------------------

WITHOUT = """
import sys
sys.modules["ionq_core"] = None  # as if it were not installed: import raises ImportError
import jobwait
from jobwait.adapters import ionq
from jobwait.adapters._http import ionq_core as _ionq_core
from jobwait.adapters.server import JobServer
assert not _ionq_core.AVAILABLE
error = ionq.JobFailedError("j1", {"code": "E", "message": "m"})
assert isinstance(error, jobwait.JobFailedError) and error.failure["code"] == "E"
assert ionq.JobTimeoutError("j1", 5.0, "running").last_status == "running"
with JobServer(api_key="k" * 20) as server:
    done = server.submit(durations={"ready": 0.0, "started": 0.0})
    failed = server.submit(durations={"ready": 0.0, "started": 0.0}, outcome="failed")
    with ionq.client("k" * 20, base_url=server.url) as client:
        assert ionq.wait_for_job(client, done).status == "completed"
        try:
            ionq.wait_for_job(client, failed)
        except ionq.JobFailedError as e:
            assert e.failure["code"] == "SimulatedFailure"
        try:
            ionq.wait_for_job(client, "nope")
        except jobwait.JobFetchError as e:
            assert type(e) is jobwait.JobFetchError and e.status_code == 404
        assert set(ionq.wait_for_jobs(client, [done])) == {done}
assert "ionq_core.exceptions" not in sys.modules
print("ok")
"""


@realtime
def test_the_adapter_works_without_ionq_core() -> None:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(WITHOUT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
