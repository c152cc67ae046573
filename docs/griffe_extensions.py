"""Griffe extensions the API reference needs (listed in ``mkdocs.yml``, in this order).

``PackageDir``: ``jobwait.adapters`` lives in ``adapters/``, not in
``src/jobwait/adapters/`` (``[tool.setuptools.package-dir]`` in ``pyproject.toml``).
Python imports it through the editable install's finder, but griffe reads source trees:
it finds ``jobwait`` in ``src/jobwait`` and then looks for ``adapters`` inside it, so
``::: jobwait.adapters.sync`` would fail. This extension reads the same ``package-dir``
table the build uses and, once the top-level package is loaded, loads each mapped
subpackage from its own directory and attaches it where Python finds it. It relies on
``GriffeLoader._load_module`` (private); if a griffe upgrade breaks it, the strict docs
build fails on the first ``::: jobwait.adapters...`` directive.

``SphinxRoles``: the docstrings are Google style but use Sphinx roles for names
(``:class:`~jobwait.JobWaiter```), which Markdown would show verbatim. This rewrites
each role as inline code (``JobWaiter``; ``~`` keeps the last component, as in Sphinx).

``RealDefaults``: a default written as a private module constant (``backoff:
Backoff = _DEFAULT_BACKOFF``, shared so every call does not build a new one) would show
as ``_DEFAULT_BACKOFF``, which tells a reader nothing. This shows the value instead:
the runtime default's ``repr`` when it is short and stable (``Backoff(initial=1.0,
factor=1.5, max=30.0, jitter=None)``, ``1.0``), else the expression the constant is
defined with (``Statuses()``). Every function and method of the package, signatures
of classes (``__init__``) included. A private default it cannot show fails the build.
Keywords typed once as ``**options: Unpack[JobOptions]`` are spelled out as the
keyword parameters they are, with their defaults (``JOB_DEFAULTS``), wherever the
docstring documents them one by one (``JobWaiter``, ``JobFleet``).
"""

from __future__ import annotations

import importlib
import inspect
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import griffe

_ROOT = Path(__file__).resolve().parent.parent


def _mapped_subpackages(pyproject: Path) -> dict[str, Path]:
    with pyproject.open("rb") as file:
        config = tomllib.load(file)
    package_dir = config.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    return {
        name: (pyproject.parent / directory).resolve()
        for name, directory in package_dir.items()
        if "." in name
    }


class PackageDir(griffe.Extension):
    """Attach each ``a.b`` of ``package-dir`` to the loaded package ``a``."""

    def __init__(self, pyproject: str = "pyproject.toml") -> None:
        self.subpackages = _mapped_subpackages(_ROOT / pyproject)

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        # Parents first, so "a.b" is attached before "a.b.c" looks for it.
        for dotted in sorted(self.subpackages, key=lambda name: name.count(".")):
            parent_path, _, name = dotted.rpartition(".")
            if parent_path.split(".")[0] != pkg.name:
                continue
            parent = (
                pkg if parent_path == pkg.name else pkg.get_member(parent_path.split(".", 1)[1])
            )
            if name in parent.members:
                continue
            module = loader._load_module(
                name, self.subpackages[dotted] / "__init__.py", submodules=True, parent=parent
            )
            parent.set_member(name, module)
            loader.expand_exports(module)


_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|mod|exc|data|obj|const):`(~?)([^`]+)`")


def _role_to_code(match: re.Match[str]) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


def _objects(obj: griffe.Object, seen: set[str] | None = None) -> Iterator[griffe.Object]:
    """``obj`` and every object defined in it, once each (aliases are not followed)."""
    seen = set() if seen is None else seen
    if obj.path in seen:
        return
    seen.add(obj.path)
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member, seen)  # type: ignore[arg-type]


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` in every docstring of the package as inline code."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            if obj.docstring is not None:
                obj.docstring.value = _ROLE.sub(_role_to_code, obj.docstring.value)


_PRIVATE = re.compile(r"(?<![\w.])_[A-Za-z]\w*")
_SHORT = 80


def _runtime_value(path: str) -> Any:
    """The object at a dotted ``path``, imported, or ``inspect.Parameter.empty``."""
    owner: Any = inspect.Parameter.empty
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attribute in parts[split:]:
                owner = getattr(owner, attribute)
        except AttributeError:
            return inspect.Parameter.empty
        break
    return owner


def _runtime_default(func: griffe.Function, name: str) -> Any:
    """The parameter's default as Python sees it, or ``inspect.Parameter.empty``."""
    owner = _runtime_value(func.path)
    if owner is inspect.Parameter.empty:
        return owner
    try:
        parameter = inspect.signature(owner).parameters.get(name)
    except (TypeError, ValueError):
        return inspect.Parameter.empty
    return inspect.Parameter.empty if parameter is None else parameter.default


def _stable_repr(value: Any) -> str | None:
    # Sets print in hash order, which changes between runs; objects without a repr of
    # their own print an address. Neither belongs in reproducible docs.
    if isinstance(value, set | frozenset):
        return None
    text = repr(value)
    if len(text) > _SHORT or "<" in text or "frozenset(" in text or "{" in text:
        return None
    return text


def _defined_as(obj: griffe.Object, name: str) -> str | None:
    module = obj.module
    member = module.members.get(name)
    value = getattr(member, "value", None) if member is not None else None
    text = None if value is None else str(value)
    return text if text and not _PRIVATE.search(text) else None


class RealDefaults(griffe.Extension):
    """Show the value of defaults written as private constants (``_DEFAULT_BACKOFF``)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            if isinstance(obj, griffe.Function):
                _spell_out(obj)
                self._fix(obj)
            elif isinstance(obj, griffe.Attribute) and isinstance(obj.parent, griffe.Class):
                # A dataclass field's value is its __init__ default (griffe builds the
                # dataclass signature from the fields afterwards).
                self._fix_field(obj)

    def _fix_field(self, field: griffe.Attribute) -> None:
        default = None if field.value is None else str(field.value)
        if default is None or not _PRIVATE.fullmatch(default):
            return
        value = _runtime_value(field.path)
        shown = None if value is inspect.Parameter.empty else _stable_repr(value)
        shown = shown or _defined_as(field, default)
        if shown is None:
            raise ValueError(f"{field.path} = {default}: cannot show this default's value")
        field.value = shown

    def _fix(self, func: griffe.Function) -> None:
        for parameter in func.parameters:
            default = None if parameter.default is None else str(parameter.default)
            if default is None or not _PRIVATE.fullmatch(default):
                continue
            value = _runtime_default(func, parameter.name)
            shown = None if value is inspect.Parameter.empty else _stable_repr(value)
            shown = shown or _defined_as(func, default)
            if shown is None:
                # Fail the (strict) docs build rather than publish a private name.
                raise ValueError(
                    f"{func.path}({parameter.name}={default}): cannot show this default's "
                    "value; give it a short repr or define the constant with a public "
                    "expression"
                )
            parameter.default = shown


def _documented_args(func: griffe.Function) -> set[str]:
    text = func.docstring.value if func.docstring is not None else ""
    if func.name == "__init__" and isinstance(func.parent, griffe.Class):
        parent_doc = func.parent.docstring
        text += "\n" + (parent_doc.value if parent_doc is not None else "")
    return set(re.findall(r"^\s{4,}(\w+):", text, re.MULTILINE))


def _typed_dict_keys(func: griffe.Function, name: str) -> list[griffe.Attribute]:
    """The keys of the TypedDict ``name`` (as seen from ``func``), bases first."""
    try:
        cls = func.module.modules_collection.get_member(str(func.resolve(name)))
    except Exception:  # noqa: BLE001 - not resolvable: leave the signature as written
        return []
    if not isinstance(cls, griffe.Class):
        return []
    keys: dict[str, griffe.Attribute] = {}
    for base in reversed(cls.mro()):
        keys.update({n: m for n, m in base.members.items() if isinstance(m, griffe.Attribute)})
    keys.update({n: m for n, m in cls.members.items() if isinstance(m, griffe.Attribute)})
    return list(keys.values())


def _job_defaults() -> dict[str, Any]:
    try:
        options = importlib.import_module("jobwait._options")
    except ImportError:
        return {}
    return dict(getattr(options, "JOB_DEFAULTS", {}))


def _shown(value: Any) -> str:
    if callable(value) and hasattr(value, "__name__") and not isinstance(value, type):
        return str(value.__name__)
    text = _stable_repr(value)
    if text is not None:
        return text
    cls = type(value)
    try:
        if value == cls():
            return f"{cls.__name__}()"
    except Exception:  # noqa: BLE001 - no argument-free constructor: fall through
        pass
    raise ValueError(f"cannot show the default {value!r}")


def _spell_out(func: griffe.Function) -> None:
    """Replace ``**options: Unpack[TD]`` by TD's keys as keyword-only parameters, when the
    docstring documents those keys one by one (so the reference and the Args agree)."""
    params = list(func.parameters)
    last = params[-1] if params else None
    annotation = None if last is None else last.annotation
    if (
        last is None
        or last.kind is not griffe.ParameterKind.var_keyword
        or not isinstance(annotation, griffe.ExprSubscript)
        or str(annotation.left) != "Unpack"
    ):
        return
    keys = _typed_dict_keys(func, str(annotation.slice))
    documented = _documented_args(func)
    if not keys or not documented & {key.name for key in keys}:
        return
    defaults = _job_defaults()
    present = {p.name for p in params}
    spelled = [
        griffe.Parameter(
            key.name,
            annotation=key.annotation,
            kind=griffe.ParameterKind.keyword_only,
            default=_shown(defaults[key.name]) if key.name in defaults else None,
        )
        for key in keys
        if key.name not in present
    ]
    func.parameters = griffe.Parameters(*params[:-1], *spelled)
