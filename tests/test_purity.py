"""The core is pure: no module under ``src/`` imports a clock, sleep, socket, thread or
async runtime (the adapters in ``jobwait.adapters`` do all IO).

The scan parses every file with ``ast``: ``import x``, ``from x.y import z`` (absolute
only; relative imports stay inside the package) and string calls to
``importlib.import_module`` / ``__import__`` count, at any depth (inside functions and
``if TYPE_CHECKING`` blocks too).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
FORBIDDEN = frozenset(
    {
        "time",
        "asyncio",
        "trio",
        "anyio",
        "httpx",
        "h11",
        "socket",
        "threading",
        "selectors",
        "subprocess",
        "http",
        "urllib",
        "concurrent",
        "sniffio",
    }
)
# The one exception: ``python -m jobwait`` only dispatches to jobwait.adapters.cli.
ALLOWED_FILES = frozenset({SRC / "jobwait" / "__main__.py"})


def _dynamic_import_target(node: ast.Call) -> str | None:
    """The module named by ``importlib.import_module("x")``, ``import_module("x")`` or
    ``__import__("x")`` with a literal first argument; else ``None``."""
    func = node.func
    name = (
        func.attr
        if isinstance(func, ast.Attribute)
        else func.id
        if isinstance(func, ast.Name)
        else None
    )
    if name not in {"import_module", "__import__"} or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def forbidden_imports(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """Every (line, module) in ``source`` whose top-level package is in FORBIDDEN."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Call):
            target = _dynamic_import_target(node)
            modules = [target] if target else []
        found += [(node.lineno, m) for m in modules if m.split(".")[0] in FORBIDDEN]
    return sorted(found)


def _source_files() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_the_scan_sees_the_core() -> None:
    names = {p.relative_to(SRC).as_posix() for p in _source_files()}
    # The test kit (jobwait.testing, the simulated job board included) is scanned too:
    # it is pure like the core.
    assert {
        "jobwait/_waiter.py",
        "jobwait/__init__.py",
        "jobwait/testing/__init__.py",
        "jobwait/testing/_board.py",
    } <= names


@pytest.mark.parametrize("path", _source_files(), ids=lambda p: p.relative_to(SRC).as_posix())
def test_no_io_imports_in_src(path: Path) -> None:
    found = forbidden_imports(path.read_text(encoding="utf-8"), str(path))
    if path in ALLOWED_FILES:
        return
    assert not found, f"{path.relative_to(ROOT)} imports {found}: the core must not do IO"


def test_main_is_the_only_exception_and_only_dispatches() -> None:
    main = SRC / "jobwait" / "__main__.py"
    tree = ast.parse(main.read_text(encoding="utf-8"))
    imported = {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"sys", "jobwait.adapters.cli"}


@pytest.mark.parametrize(
    ("snippet", "module"),
    [
        ("import time", "time"),
        ("import time as t", "time"),
        ("import os, socket", "socket"),
        ("import http.client", "http.client"),
        ("from time import monotonic", "time"),
        ("from concurrent.futures import ThreadPoolExecutor", "concurrent.futures"),
        ("from urllib.parse import quote", "urllib.parse"),
        ("def f():\n    import threading", "threading"),
        ("if TYPE_CHECKING:\n    import trio", "trio"),
        ("try:\n    import sniffio\nexcept ImportError:\n    pass", "sniffio"),
        ("import importlib\nimportlib.import_module('asyncio')", "asyncio"),
        ("from importlib import import_module\nimport_module('anyio.abc')", "anyio.abc"),
        ("__import__('httpx')", "httpx"),
        ("x = __import__('h11', globals())", "h11"),
        ("class A:\n    def m(self):\n        from selectors import DefaultSelector", "selectors"),
        ("import subprocess as sp", "subprocess"),
    ],
)
def test_the_scanner_catches_forbidden_imports(snippet: str, module: str) -> None:
    found = forbidden_imports(textwrap.dedent(snippet))
    assert [m for _, m in found] == [module]


@pytest.mark.parametrize(
    "snippet",
    [
        "import timeit, datetime, math, random, logging",
        "from . import time",
        "from .time import monotonic",
        "from ._http import read_response",
        "import mytime",
        "x = 'import time'",
        "importlib.import_module(name)",
        "from httpx_like import thing",
        "import jobwait.http_helpers",
    ],
)
def test_the_scanner_allows_everything_else(snippet: str) -> None:
    assert forbidden_imports(snippet) == []


def test_importing_the_core_does_not_load_the_adapters_or_a_runtime() -> None:
    code = (
        "import sys, jobwait, jobwait.testing\n"
        "roots = {'trio', 'anyio', 'httpx', 'h11', 'sniffio', 'asyncio'}\n"
        "bad = [m for m in sys.modules if m.startswith('jobwait.adapters')"
        " or m.split('.')[0] in roots]\n"
        "print(len([m for m in sys.modules if m.startswith('jobwait')]), sorted(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    count, bad = result.stdout.split(" ", 1)
    assert int(count) >= 3  # the check ran with the package loaded
    assert bad.strip() == "[]", result.stdout


# --- the layers: what the adapters may import of jobwait (docs/architecture.md) --------

ADAPTERS = ROOT / "adapters"
# Every adapter imports jobwait's public names, jobwait.http, the plumbing and the
# durable core; jobwait.testing only the job server (a test double) with its own
# machinery, and the CLI (its demo serves scripted jobs).
ADAPTER_MAY_IMPORT = frozenset({"jobwait", "jobwait.http", "jobwait._plumbing", "jobwait._durable"})
TESTING_ALLOWED = ("server.py", "_server/", "cli/")


def jobwait_imports(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """Every (line, module) of ``jobwait`` itself that ``source`` imports absolutely."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("jobwait")]
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module
            and node.module.split(".")[0] == "jobwait"
        ):
            found.append((node.lineno, node.module))
    return found


def _adapter_files() -> list[Path]:
    return sorted(ADAPTERS.rglob("*.py"))


@pytest.mark.parametrize("path", _adapter_files(), ids=lambda p: p.relative_to(ADAPTERS).as_posix())
def test_adapters_import_only_the_public_names_and_the_plumbing(path: Path) -> None:
    relative = path.relative_to(ADAPTERS).as_posix()
    for line, module in jobwait_imports(path.read_text(encoding="utf-8"), str(path)):
        if module.startswith("jobwait.adapters") or module in ADAPTER_MAY_IMPORT:
            continue
        if module == "jobwait.testing" and relative.startswith(TESTING_ALLOWED):
            continue
        raise AssertionError(
            f"adapters/{relative}:{line} imports {module}: adapters import jobwait, "
            "jobwait.http, jobwait._plumbing and jobwait._durable (jobwait.testing: the job "
            "server and the CLI only)"
        )


def test_the_layer_rule_catches_a_private_import() -> None:
    found = jobwait_imports("from jobwait._advice import check_fetch\nimport jobwait._report\n")
    assert [m for _, m in found] == ["jobwait._advice", "jobwait._report"]
    assert not {m for _, m in found} & ADAPTER_MAY_IMPORT


def test_the_async_loop_imports_no_runtime_adapter() -> None:
    # The runtime seam has no cycle: asyncio.py and trio.py register themselves;
    # the loop finds a built-in runtime by name the first time its library runs.
    source = (ADAPTERS / "_runtime" / "loop.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    names = {f"{'.' * n.level}{n.module or ''}" for n in relative}
    assert not names & {"..asyncio", "..trio", ".asyncio", ".trio"}, names
