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
"""

from __future__ import annotations

import re
import tomllib
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


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` in every docstring of the package as inline code."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        self._rewrite(pkg, set())

    def _rewrite(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_role_to_code, obj.docstring.value)
        for member in obj.members.values():
            if not member.is_alias:
                self._rewrite(member, seen)  # type: ignore[arg-type]
