"""The public surface: flat ``__all__`` lists that match what the modules export, the
event/action value types, and the type marker that ships with the package."""

from __future__ import annotations

import dataclasses
import enum
import importlib
import importlib.resources
import pickle
import tomllib
import traceback
import types
from pathlib import Path
from typing import Any

import pytest

import jobwait
import jobwait.testing
from jobwait._protocol import Nudged

ROOT = Path(__file__).resolve().parent.parent


def _public(module: types.ModuleType) -> dict[str, Any]:
    """Attributes without a leading underscore that are not submodules."""
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


@pytest.mark.parametrize("module", [jobwait, jobwait.testing], ids=lambda m: m.__name__)
def test_all_lists_unique_existing_names(module: types.ModuleType) -> None:
    names = module.__all__
    assert len(names) == len(set(names)), "duplicates in __all__"
    missing = [name for name in names if not hasattr(module, name)]
    assert not missing, f"__all__ names that do not exist: {missing}"


def test_jobwait_exports_exactly_all() -> None:
    public = set(_public(jobwait))
    assert public - set(jobwait.__all__) == set(), "public names missing from __all__"
    assert set(jobwait.__all__) - public == set()


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, Any] = {}
    exec("from jobwait import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(jobwait.__all__)


def test_testing_exports_exactly_all() -> None:
    # testing.py also imports helpers for its own use (typing names, the events it
    # drives, which jobwait exports already): those are not part of its surface. What
    # it defines itself, or brings in from a private jobwait module, must be listed.
    own = {
        name
        for name, value in _public(jobwait.testing).items()
        if getattr(value, "__module__", None) == "jobwait.testing"
        or (
            str(getattr(value, "__module__", "")).startswith("jobwait._")
            and name not in jobwait.__all__
        )
    }
    assert {"VirtualClock", "Trace", "Fail", "simulate", "JobBoard"} <= own
    assert own - set(jobwait.testing.__all__) == set(), "public names missing from __all__"
    helpers = set(_public(jobwait.testing)) - set(jobwait.testing.__all__)
    for name in helpers:
        module = str(getattr(_public(jobwait.testing)[name], "__module__", ""))
        assert not module.startswith("jobwait") or name in jobwait.__all__, name


def test_public_objects_say_they_are_from_jobwait() -> None:
    for name in jobwait.__all__:
        value = getattr(jobwait, name)
        module = getattr(value, "__module__", None)
        if isinstance(value, type | types.FunctionType):
            assert str(module).startswith("jobwait"), (name, module)


EVENTS = [
    jobwait.Start,
    jobwait.Observed,
    jobwait.FetchFailed,
    jobwait.SharedFetchFailed,
    jobwait.Woke,
    jobwait.Expired,
    Nudged,
]
ACTIONS = [jobwait.Poll, jobwait.Sleep, jobwait.Done, jobwait.Raise]
EXAMPLES: dict[type, dict[str, Any]] = {
    jobwait.Start: {"now": 0.0},
    jobwait.Observed: {"job": {"status": "ready"}, "now": 0.0},
    jobwait.FetchFailed: {"error": OSError(), "now": 0.0},
    jobwait.SharedFetchFailed: {"error": OSError(), "now": 0.0},
    jobwait.Woke: {"now": 0.0},
    jobwait.Expired: {"now": 0.0},
    Nudged: {"now": 0.0, "job_id": "j1"},
    jobwait.Poll: {},
    jobwait.Sleep: {"seconds": 1.0},
    jobwait.Done: {"job": {}},
    jobwait.Raise: {"error": jobwait.JobWaitError("x")},
}


@pytest.mark.parametrize("cls", EVENTS + ACTIONS, ids=lambda c: c.__name__)
def test_events_and_actions_are_frozen_slotted_keyword_only_dataclasses(cls: type) -> None:
    assert dataclasses.is_dataclass(cls)
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen
    assert "__slots__" in cls.__dict__
    assert all(f.kw_only for f in dataclasses.fields(cls))
    instance = cls(**EXAMPLES[cls])
    assert not hasattr(instance, "__dict__")
    for f in dataclasses.fields(cls):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(instance, f.name, None)
    if dataclasses.fields(cls):
        with pytest.raises(TypeError):
            cls(*EXAMPLES[cls].values())


def test_event_and_action_unions() -> None:
    from jobwait._plumbing import Action, Event

    assert set(Event.__args__) == set(EVENTS)
    assert set(Action.__args__) == set(ACTIONS)


def test_every_event_carries_now() -> None:
    for cls in EVENTS:
        assert "now" in {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("cls", [jobwait.State, jobwait.Phase])
def test_states_and_phases_are_enums(cls: type) -> None:
    assert issubclass(cls, enum.Enum)
    assert all(member.name.isupper() for member in cls)


def test_error_tree() -> None:
    for name in [
        "UsageError",
        "JobFailedError",
        "JobCanceledError",
        "JobTimeoutError",
        "JobFetchError",
        "JobStatusError",
    ]:
        assert issubclass(getattr(jobwait, name), jobwait.JobWaitError)
    assert issubclass(jobwait.JobWaitError, Exception)


def test_py_typed_ships() -> None:
    assert importlib.resources.files("jobwait").joinpath("py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["jobwait"]


def test_version() -> None:
    assert isinstance(jobwait.__version__, str)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert jobwait.__version__ == config["project"]["version"]


def test_option_lists_derive_from_their_one_definition() -> None:
    import inspect

    from jobwait._plumbing import JOB_DEFAULTS, FleetOptions, JobOptions, WaiterOptions

    per_job = tuple(JobOptions.__annotations__)
    assert ("job_id", *per_job) == jobwait.JobWaiter.OPTIONS
    assert set(WaiterOptions.__annotations__) == set(jobwait.JobWaiter.OPTIONS)
    assert set(JOB_DEFAULTS) == set(per_job)
    # The fleet's own keywords are its explicit parameters; the per-job ones are
    # forwarded as **options, typed by JobOptions.
    fleet_params = inspect.signature(jobwait.JobFleet).parameters
    own = {name for name, p in fleet_params.items() if p.kind is p.KEYWORD_ONLY}
    driver_flags = {"report_status", "report_polls"}  # set by drivers from on_status/on_poll
    # api= is a keyword of both machines, merged into the per-job options (not kept).
    assert set(jobwait.JobFleet.FLEET_OPTIONS) == own - driver_flags - {"api"}
    waiter_params = inspect.signature(jobwait.JobWaiter).parameters
    assert {n for n, p in waiter_params.items() if p.kind is p.KEYWORD_ONLY} == {"job_id", "api"}
    assert set(FleetOptions.__annotations__) == {*per_job, *jobwait.JobFleet.FLEET_OPTIONS}
    # Every per-job option is accepted by both machines with its default.
    jobwait.JobWaiter(**JOB_DEFAULTS)
    jobwait.JobFleet(**JOB_DEFAULTS)
    for machine in (jobwait.JobWaiter, jobwait.JobFleet):
        with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
            machine(colour="red")  # type: ignore[call-arg]


def test_the_public_surface_is_what_users_write() -> None:
    # Issue 9: about 40 names; issue 19 added observed, fetch_failed and Nudged (a loop
    # of your own needs them: docs/concepts.md, docs/push.md) and put the HTTP helpers in
    # the public jobwait.http. Driver plumbing lives in jobwait._plumbing.
    assert len(jobwait.__all__) <= 43
    import jobwait._plumbing as plumbing

    assert not set(plumbing.__all__) & set(jobwait.__all__)
    for name in plumbing.__all__:
        assert hasattr(plumbing, name), name


@pytest.mark.parametrize("module", ["jobwait", "jobwait.http", "jobwait.testing"])
def test_public_names_report_their_public_module(module: str) -> None:
    # Tracebacks, reprs and pickles name what users import (trio's way), e.g.
    # jobwait.JobTimeoutError, not jobwait._errors.JobTimeoutError.
    public = importlib.import_module(module)
    for name in public.__all__:
        obj = getattr(public, name)
        if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__module__")):
            assert obj.__module__ == module, (name, obj.__module__)
    error = jobwait.JobTimeoutError("late", job_id="a")
    assert pickle.loads(pickle.dumps(error)).job_id == "a"
    assert (
        "jobwait.JobTimeoutError" in "".join(traceback.format_exception_only(type(error), error))
        or type(error).__module__ == "jobwait"
    )


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("ResponseError", "jobwait.http"),
        ("parse_retry_after", "jobwait.http"),
        ("request_timeout", "jobwait.http"),
        ("read_response", "jobwait.http"),
        ("observed", "jobwait"),
        ("fetch_failed", "jobwait"),
        ("Nudged", "jobwait"),
    ],
)
def test_names_that_moved_to_the_public_surface_still_import_with_a_warning(
    name: str, where: str
) -> None:
    import jobwait._plumbing as plumbing

    with pytest.warns(DeprecationWarning, match=f"import it from {where}"):
        old = getattr(plumbing, name)
    assert old is getattr(importlib.import_module(where), name)
    with pytest.raises(AttributeError):
        plumbing.no_such_name  # noqa: B018


def test_no_docs_page_imports_private_modules() -> None:
    # What a page shows users to write is public: no example imports jobwait._x.
    for page in sorted((ROOT / "docs").glob("*.md")):
        for number, line in enumerate(page.read_text().splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith(("from jobwait._", "import jobwait._")):
                raise AssertionError(f"{page.name}:{number}: {stripped}")


def test_the_docs_list_every_per_job_option_from_its_definition() -> None:
    import importlib.util

    from jobwait._plumbing import JOB_OPTIONS

    spec = importlib.util.spec_from_file_location("jobwait_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None
    assert spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    rows = hooks.job_options().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == list(JOB_OPTIONS)
    assert all(row.rstrip(" |").split("|")[-1].strip() for row in rows)  # each explained
    assert "<!-- jobwait:job-options -->" in (ROOT / "docs" / "concepts.md").read_text()
