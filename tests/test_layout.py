"""The layout's rules, checked on the source: what may import what, and how modules are kept.

- relay/mail, relay/rules and relay/outbound are pure: none of their modules
  imports the store or SQLAlchemy, even inside a function;
- matching/ never imports relay;
- relay's modules form no import cycle (module-level imports, including
  those under ``if TYPE_CHECKING:``: a cycle of types is still a tangle);
- every package folder is in pyproject's [tool.setuptools] packages list, so
  `pip install .` installs it (templates/ and migrations/ through package-dir);
- every module opens with a docstring and stays within 400 lines.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE = ("relay.mail", "relay.rules", "relay.outbound")
FORBIDDEN_IN_PURE = ("relay.store", "sqlalchemy")
MAX_LINES = 400
# Folders installed under another name (pyproject's [tool.setuptools.package-dir]).
INSTALLED_AS = {"templates": "relay.templates", "migrations": "relay.migrations"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(*folders: str) -> dict[str, Path]:
    return {
        _module_name(path): path
        for folder in folders
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


RELAY = _modules("relay")
SOURCE = _modules("relay", "matching", "migrations")


def _imported(name: str, path: Path, nodes: list[ast.stmt] | None = None) -> Iterator[str]:
    """Every module name an import statement among ``nodes`` names (all of the file if None)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    statements = ast.walk(tree) if nodes is None else iter(nodes)
    for node in statements:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _module_level(path: Path) -> list[ast.stmt]:
    """Statements run at import: the module body and the bodies of its top-level if/try."""
    found: list[ast.stmt] = []
    pending = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while pending:
        node = pending.pop()
        found.append(node)
        if isinstance(node, ast.If):
            pending += [*node.body, *node.orelse]
        elif isinstance(node, ast.Try):
            pending += [*node.body, *node.orelse, *node.finalbody]
            pending += [statement for handler in node.handlers for statement in handler.body]
    return found


def _names(imported: str, prefixes: tuple[str, ...]) -> bool:
    return any(imported == prefix or imported.startswith(prefix + ".") for prefix in prefixes)


@pytest.mark.parametrize("name", [name for name in RELAY if _names(name, PURE)])
def test_pure_packages_never_touch_the_store(name: str) -> None:
    bad = sorted({i for i in _imported(name, RELAY[name]) if _names(i, FORBIDDEN_IN_PURE)})
    assert not bad, f"{name} imports {', '.join(bad)}: relay.mail, .rules, .outbound are pure"


def test_matching_never_imports_relay() -> None:
    matching = _modules("matching")
    bad = {name: sorted({i for i in _imported(name, path) if _names(i, ("relay",))})
           for name, path in matching.items()}  # fmt: skip
    assert not {name: found for name, found in bad.items() if found}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_relay_modules_form_no_import_cycle() -> None:
    graph = {
        name: {i for i in _imported(name, path, _module_level(path)) if i in RELAY} - {name}
        for name, path in RELAY.items()
    }
    assert _cycles(graph) == []


def test_every_package_folder_is_installed() -> None:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(settings["packages"])
    assert settings["package-dir"] == {v: k for k, v in INSTALLED_AS.items()}
    folders = [
        init.parent.relative_to(ROOT)
        for top in ("relay", "matching", *INSTALLED_AS)
        for init in (ROOT / top).rglob("__init__.py")
    ]
    # A folder of modules without __init__.py would not be installed at all.
    folders += [
        path.parent.relative_to(ROOT)
        for top in ("relay", "matching", *INSTALLED_AS)
        for path in (ROOT / top).rglob("*.py")
        if "__pycache__" not in path.parts
    ]
    missing = set()
    for folder in folders:
        top, *rest = folder.parts
        name = ".".join([INSTALLED_AS.get(top, top), *rest])
        if name not in listed:
            missing.add(name)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(SOURCE))
def test_every_module_has_a_docstring_and_stays_short(name: str) -> None:
    text = SOURCE[name].read_text(encoding="utf-8")
    assert ast.get_docstring(ast.parse(text)), f"{name}: open with a docstring saying what it owns"
    lines = len(text.splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines; split it by concept"
