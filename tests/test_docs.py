"""Every Python example in the docs runs, and the generated doc sections match the code.

Each fenced ``python`` block of ``docs/*.md`` and ``README.md`` (every page, present
and future) is one test, named by page and line (``docs/concepts.md:42``). Each block
runs on its own in a fresh namespace, as it does when a reader copies it into a new
file: a block that uses a name it did not define or import fails with ``NameError``.

A page may mark one or more *setup* blocks with ``<!-- setup -->`` on the line before
the fence (or ```` ```python setup ````). The page shows them like any other block, and
they run first, in order, in the fresh namespace of every block on that page; say in
the prose that the examples start from them. A setup block is itself tested.

A block is only compiled, not run, when its fence reads ```` ```python no-run ```` or
the line before it is ``<!-- no-run -->``: use that for calls to real APIs.

Examples must not sleep for real or leave the machine: use ``jobwait.testing``
(``VirtualClock``, ``simulate``), trio's ``MockClock``, or a ``JobServer`` on loopback.
While a block runs, resolving or connecting to any host but loopback raises, and a
block that takes more than a few seconds of wall time fails.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import socket
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import jobwait
import jobwait._plumbing
import jobwait.testing

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]

# Virtual-time examples finish in milliseconds; this only catches real sleeps and
# hung connections, with room for a loaded CI machine.
WALL_CLOCK_LIMIT = 5.0

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Block:
    """One fenced ``python`` block of a page."""

    page: str  # relative to the repository root
    line: int  # 1-based line of the block's first code line
    source: str
    run: bool
    setup: bool = False

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def extract(text: str, page: str) -> list[Block]:
    """The ``python`` blocks of a Markdown text, in order."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        end = i + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        words = match["info"].split()
        if words and words[0] in ("python", "py"):
            body = [
                line[len(indent) :] if line.startswith(indent) else line
                for line in lines[i + 1 : end]
            ]
            previous = next((line.strip() for line in reversed(lines[:i]) if line.strip()), "")
            no_run = "no-run" in words[1:] or previous == "<!-- no-run -->"
            setup = "setup" in words[1:] or previous == "<!-- setup -->"
            blocks.append(Block(page, i + 2, "\n".join(body) + "\n", run=not no_run, setup=setup))
        i = end + 1
    return blocks


def _all_blocks() -> list[Block]:
    blocks: list[Block] = []
    for path in PAGES:
        if path.exists():
            page = path.relative_to(ROOT).as_posix()
            blocks += extract(path.read_text(encoding="utf-8"), page)
    return blocks


BLOCKS = _all_blocks()


def _compile(block: Block) -> types.CodeType:
    # Padding with newlines makes tracebacks point at the page's own line numbers, and
    # naming the page as the file lets them quote the Markdown source.
    padded = "\n" * (block.line - 1) + block.source
    return compile(padded, str(ROOT / block.page), "exec", dont_inherit=True)


def _fresh_namespace(block: Block) -> dict[str, Any]:
    name = "jobwait_docs_" + re.sub(r"\W", "_", block.page)
    module = types.ModuleType(name)
    module.__file__ = str(ROOT / block.page)
    sys.modules[name] = module  # so classes an example defines can be pickled, etc.
    return module.__dict__


def _namespace_for(block: Block, blocks: list[Block] | None = None) -> dict[str, Any]:
    """A fresh namespace holding only what the page's setup blocks define."""
    namespace = _fresh_namespace(block)
    page = [b for b in (BLOCKS if blocks is None else blocks) if b.page == block.page]
    for setup in (b for b in page if b.setup and b.run):
        if setup is block:
            break
        try:
            exec(_compile(setup), namespace)
        except BaseException as exc:
            pytest.fail(f"the page's setup block {setup.id} failed: {exc!r}")
    return namespace


_LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::", ""}


def _is_loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    return isinstance(host, str) and (host in _LOOPBACK or host.startswith("127."))


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse to resolve or connect to any host but loopback."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def refuse(host: object) -> None:
        raise AssertionError(f"a docs example tried to reach {host!r}; examples stay on loopback")

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            refuse(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            refuse(address[0])
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            refuse(address[0])
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture
def restore_logging() -> Any:
    """Undo what an example does to the "jobwait" logger, for the tests after it."""
    logger = logging.getLogger("jobwait")
    saved = (logger.level, list(logger.handlers), logger.propagate, logger.disabled)
    yield
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate, logger.disabled = saved[2], saved[3]


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
@pytest.mark.usefixtures("offline", "restore_logging")
def test_example(block: Block) -> None:
    code = _compile(block)  # a syntax error fails here, for run and no-run blocks alike
    if not block.run:
        return
    namespace = _namespace_for(block)
    started = time.perf_counter()
    exec(code, namespace)
    took = time.perf_counter() - started
    assert took < WALL_CLOCK_LIMIT, (
        f"{block.id} took {took:.1f}s of real time: examples must use virtual time "
        "(VirtualClock, simulate, trio's MockClock), never real sleeps"
    )


# --- the extractor itself -----------------------------------------------------------

SAMPLE = """\
# Title

```python
a = 1
```

```sh
pip install jobwait
```

<!-- no-run -->
```python
import requests
```

!!! note
    ````python
    b = a + 1
    ````

~~~python no-run
c = 3
~~~

<!-- setup -->
```python
d = 4
```

```python setup
e = 5
```
"""


def test_extract_finds_python_blocks_with_lines_and_flags() -> None:
    blocks = extract(SAMPLE, "sample.md")
    assert [(b.line, b.source, b.run) for b in blocks] == [
        (4, "a = 1\n", True),
        (13, "import requests\n", False),
        (18, "b = a + 1\n", True),
        (22, "c = 3\n", False),
        (27, "d = 4\n", True),
        (31, "e = 5\n", True),
    ]
    assert [b.setup for b in blocks] == [False, False, False, False, True, True]


def test_each_block_runs_alone_after_the_pages_setup_blocks() -> None:
    blocks = extract(SAMPLE, "docs/sample.md")
    namespace = _namespace_for(blocks[2], blocks)  # b = a + 1: `a` is another block's
    assert {"d", "e"} <= set(namespace)
    assert "a" not in namespace
    with pytest.raises(NameError):
        exec(_compile(blocks[2]), namespace)
    # A setup block runs after the setup blocks before it only.
    assert "e" not in _namespace_for(blocks[5], blocks)
    assert "d" in _namespace_for(blocks[5], blocks)


def test_tracebacks_point_at_the_page_line() -> None:
    block = Block("docs/sample.md", 7, "x = 1\nraise ValueError\n", run=True)
    with pytest.raises(ValueError) as info:
        exec(_compile(block), {})
    last = info.traceback[-1]
    assert last.lineno + 1 == 8  # pytest's lineno is 0-based
    assert str(last.path).endswith("docs/sample.md")


def test_the_docs_have_examples() -> None:
    pages = {b.page for b in BLOCKS}
    assert {"README.md", "docs/concepts.md", "docs/errors.md", "docs/testing.md"} <= pages


# --- the hook: generated sections match the code ------------------------------------


def _load_hooks() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("jobwait_docs_hooks", DOCS / "hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _load_hooks()


def test_state_diagram_has_exactly_the_transitions_of_the_code() -> None:
    diagram = hooks.state_diagram()
    assert diagram.startswith("```mermaid\nstateDiagram-v2\n")
    assert diagram.endswith("\n```")
    edges = set(re.findall(r"^    (\w+) --> (\w+): (\w+) / (\w+)$", diagram, re.MULTILINE))
    expected = {(t[0].name, t[3].name, t[1], t[2]) for t in jobwait._plumbing.transitions()}
    assert expected  # the machine has transitions at all
    assert edges == expected
    assert "    [*] --> IDLE" in diagram
    assert "    DONE --> [*]" in diagram
    assert "    RAISED --> [*]" in diagram


def test_transition_table_has_one_row_per_transition() -> None:
    rows = hooks.transition_table().splitlines()[2:]
    assert rows == [
        f"| `{s.name}` | `{e}` | `{a}` | `{n.name}` |"
        for s, e, a, n in jobwait._plumbing.transitions()
    ]


def test_default_schedule_table_has_18_polls_ending_at_the_300s_deadline() -> None:
    rows = hooks.default_schedule().splitlines()[2:]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert [c[0] for c in cells] == [str(n) for n in range(1, 19)]
    times = [float(c[1]) for c in cells]
    assert times[:5] == [0.0, 1.0, 2.5, 4.75, 8.125]
    assert times[-1] == 300.0
    sleeps = [float(c[2]) for c in cells[:-1]]
    assert sleeps[:4] == [1.0, 1.5, 2.25, 3.375]
    assert max(sleeps) == 30.0
    assert sum(sleeps) == pytest.approx(300.0, abs=1e-3)
    assert "JobTimeoutError" in cells[-1][2]


def test_render_fills_markers_and_rejects_unknown_ones() -> None:
    text = "# Page\n\n<!-- jobwait:state-diagram -->\n\n<!-- jobwait:default-schedule -->\n"
    out = hooks.render(text)
    assert "<!-- jobwait:" not in out
    assert hooks.state_diagram() in out
    assert hooks.default_schedule() in out
    with pytest.raises(KeyError, match="jobwait:no-such-thing"):
        hooks.render("<!-- jobwait:no-such-thing -->\n")


def test_render_strips_the_no_run_flag_so_markdown_sees_a_python_fence() -> None:
    out = hooks.render("```python no-run\nx = 1\n```\n    ~~~~python   no-run\n")
    assert out == "```python\nx = 1\n```\n    ~~~~python\n"


def test_concepts_page_uses_the_generated_sections() -> None:
    text = (DOCS / "concepts.md").read_text(encoding="utf-8")
    for marker in ("state-diagram", "transition-table", "default-schedule"):
        assert f"<!-- jobwait:{marker} -->" in text


# --- the API reference covers every public name -----------------------------------


def _documented() -> set[str]:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    return set(re.findall(r"^::: ([\w.]+)[ \t]*$", text, re.MULTILINE))


def _public_modules() -> list[str]:
    names = ["jobwait", "jobwait.testing"]
    adapters = ROOT / "adapters"
    names += [
        f"jobwait.adapters.{p.stem}"
        for p in sorted(adapters.glob("*.py"))
        if not p.name.startswith("_")
    ]
    return names


def _resolve(identifier: str) -> Any:
    module_name, _, name = identifier.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        return None


@pytest.mark.parametrize("module_name", _public_modules())
def test_api_reference_documents_every_public_name(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module_name} has no __all__"
    documented = _documented()
    # A re-export of an object documented under another name (the IonQ adapter's
    # JobFailedError is jobwait.JobFailedError) needs no second entry.
    objects = [_resolve(identifier) for identifier in documented]
    missing = [
        name
        for name in exported
        if f"{module_name}.{name}" not in documented
        and not any(getattr(module, name) is obj for obj in objects if obj is not None)
    ]
    assert not missing, f"docs/api.md lacks `::: {module_name}.NAME` for {missing}"


# --- the API reference shows real defaults ----------------------------------------------


def test_api_reference_shows_default_values_not_private_constants() -> None:
    griffe = pytest.importorskip("griffe")  # the docs extra; CI's docs build runs it too
    spec = importlib.util.spec_from_file_location(
        "jobwait_docs_griffe", DOCS / "griffe_extensions.py"
    )
    assert spec is not None
    assert spec.loader is not None
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    package = griffe.load(
        "jobwait",
        search_paths=[str(ROOT / "src")],
        extensions=griffe.load_extensions(ext.PackageDir(), ext.RealDefaults()),
    )

    def defaults(path: str) -> dict[str, str]:
        return {p.name: str(p.default) for p in package[path].parameters if p.default}

    # The per-job options are typed keywords (**options: Unpack[JobOptions]), their
    # defaults documented in JobWaiter's docstring; the fleet's own are parameters.
    assert defaults("JobFleet.__init__")["max_batch"] == "100"
    assert defaults("adapters.ionq.wait_for_job")["poll_interval"] == "1.0"
    private = re.compile(r"^_[A-Za-z]")
    found: list[str] = []

    def walk(obj: Any, seen: set[str]) -> None:
        if obj.path in seen or obj.is_alias:
            return
        seen.add(obj.path)
        if obj.is_function:
            found.extend(
                f"{obj.path}({p.name})" for p in obj.parameters if private.match(str(p.default))
            )
        for member in obj.members.values():
            walk(member, seen)

    walk(package, set())
    assert found == []
