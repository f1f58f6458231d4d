"""The head revision of the schema, read from the migration files without Alembic.

Owns the quick answer to "which revision does this relay need?": each file
in migrations/versions names its ``revision`` and ``down_revision`` in plain
assignments, and the one revision no file names as its parent is the head.
Importing Alembic and loading every migration costs a command more than all
its own work (bench/startup.py), so relay.store.db and relay.store.plain ask
here first and Alembic only when this cannot tell. Imports no SQLAlchemy.
"""

from __future__ import annotations

import ast
import re
from importlib import resources
from pathlib import Path

# `revision = "0001"` or `down_revision: str | None = "0001"`, at the start of a line.
_ASSIGNMENT = re.compile(
    r"^(revision|down_revision)[ \t]*(?::[^=\n]*)?=[ \t]*(.+?)[ \t]*(?:#[^\n]*)?$", re.MULTILINE
)


def migrations_folder() -> Path:
    return Path(str(resources.files("relay.migrations")))


def head_from_files() -> str | None:
    """The head revision of migrations/versions, from each file's assignments; None if unsure.

    A revision no other file names as its down_revision is a head; anything
    this cannot read (no single head, a computed value) returns None, and
    Alembic decides.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (migrations_folder() / "versions").glob("*.py"):
        values = _assignments(path.read_text(encoding="utf-8"))
        if values is None:
            return None
        if "revision" not in values:
            continue  # not a migration (__init__.py)
        revision, down = values["revision"], values.get("down_revision")
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple):  # a merge revision
            parents.update(str(each) for each in down)
        elif down is not None:
            return None
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _assignments(source: str) -> dict[str, object] | None:
    """The module-level ``revision`` and ``down_revision`` literals; None if one is not a literal.

    A line match and literal_eval, not ast.parse of the whole file: parsing
    every migration was a tenth of what `relay status` cost.
    """
    found: dict[str, object] = {}
    for name, value in _ASSIGNMENT.findall(source):
        try:
            found[name] = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
    return found
