"""A curriculum: a folder with curriculum.toml and the Jinja templates it names.

Owns reading and checking a curriculum. Every problem (a TOML error, an
unknown key, a bad value, a missing template, a template syntax error, a
week beyond the cohort) is a CurriculumError naming the file and the line,
so `relay check-config`, `relay cohort create` and a reload can say exactly
what to fix. A template renders to ``Subject: ...``, a blank line, the body.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jinja2

from relay.errors import ConfigError
from relay.store.states import ItemKind

CURRICULUM_FILE = "curriculum.toml"
ITEM_KEYS = frozenset({"week", "kind", "to", "template"})
TOP_LEVEL_KEYS = frozenset({"item", "name"})
ITEM_KINDS = (ItemKind.PROMPT, ItemKind.CHECKIN, ItemKind.CLOSING)
Audience = Literal["both", "mentor", "mentee"]
AUDIENCES: tuple[Audience, ...] = ("both", "mentor", "mentee")
_TOML_LINE = re.compile(r"at line (\d+)")

# What a template may use; a check renders every template with these.
SAMPLE_CONTEXT: dict[str, Any] = {
    "programme_name": "Mentor Relay",
    "pair_address": "abcdefghjkmnp@relay.example",
    "reader_name": "Ana",
    "reader_role": "mentor",
    "partner_name": "Ben",
    "partner_role": "mentee",
    "week": 1,
    "weeks": 34,
}


class CurriculumError(ConfigError):
    """A curriculum that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class CurriculumItem:
    week: int
    kind: ItemKind
    to: Audience
    template: str
    line: int  # of its template key in curriculum.toml, for errors
    week_line: int  # of its week key

    @property
    def key(self) -> str:
        """The item's part of the exactly-once key (with the pair and the participant)."""
        return f"w{self.week:02d}-{self.kind.value}-{self.template}"

    def for_role(self, role: str) -> bool:
        return self.to == "both" or self.to == role


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


@dataclass(frozen=True)
class Curriculum:
    folder: Path
    name: str
    items: tuple[CurriculumItem, ...]
    environment: jinja2.Environment = field(compare=False, repr=False)

    @property
    def last_week(self) -> int:
        return max((item.week for item in self.items), default=0)

    def check_weeks(self, weeks: int) -> None:
        """Refuse items after the last week of a cohort of this many weeks."""
        for item in self.items:
            if item.week > weeks:
                raise CurriculumError(
                    f"{self.folder / CURRICULUM_FILE} line {item.week_line}: week {item.week} "
                    f"is beyond the cohort's {weeks} weeks"
                )

    def render(self, template: str, **context: Any) -> Rendered:
        text = self.environment.get_template(template).render(**context)
        first, _, body = text.partition("\n")
        if not first.startswith("Subject:"):
            raise CurriculumError(f"{self.folder / template} line 1: must start with 'Subject:'")
        return Rendered(first.removeprefix("Subject:").strip(), body.lstrip("\n"))


def shipped_folder() -> Path:
    """The default 34-week curriculum shipped with the relay."""
    return Path(str(resources.files("relay.templates"))) / "curriculum" / "default"


def resolve_folder(text: str, base: Path) -> Path:
    """A curriculum folder as given in relay.toml or on the command line; '' is the default."""
    if not text:
        return shipped_folder()
    return (base / Path(text).expanduser()).resolve()


def load_curriculum(folder: Path) -> Curriculum:
    path = folder / CURRICULUM_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CurriculumError(f"{path}: cannot read: {error.strerror}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = _TOML_LINE.search(str(error))
        where = f" line {found.group(1)}" if found else ""
        raise CurriculumError(f"{path}{where}: not valid TOML: {error}") from None
    lines = text.splitlines()
    for key in document:
        if key not in TOP_LEVEL_KEYS:
            raise CurriculumError(
                f"{path} line {_key_line(lines, 0, len(lines), key)}: unknown key '{key}'"
            )
    raw_items = document.get("item", [])
    if not isinstance(raw_items, list) or not raw_items:
        raise CurriculumError(f"{path}: no [[item]] tables")
    starts = [number for number, line in enumerate(lines) if line.strip() == "[[item]]"]
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # plain-text mail
    )
    items = []
    for index, raw in enumerate(raw_items):
        first = starts[index] if index < len(starts) else 0
        last = starts[index + 1] if index + 1 < len(starts) else len(lines)
        items.append(_item(path, lines, first, last, raw))
    curriculum = Curriculum(
        folder, str(document.get("name", folder.name)), tuple(items), environment
    )
    for item in items:
        _check_template(curriculum, item, path)
    return curriculum


def _item(path: Path, lines: list[str], first: int, last: int, raw: Any) -> CurriculumItem:
    def fail(key: str, problem: str) -> CurriculumError:
        line = _key_line(lines, first, last, key) if key else first + 1
        return CurriculumError(f"{path} line {line}: {problem}")

    if not isinstance(raw, dict):
        raise fail("", "an [[item]] must be a table")
    for key in raw:
        if key not in ITEM_KEYS:
            raise fail(key, f"unknown key '{key}' (expected {', '.join(sorted(ITEM_KEYS))})")
    for key in ("week", "kind", "template"):
        if key not in raw:
            raise fail("", f"the item has no '{key}'")
    week = raw["week"]
    if isinstance(week, bool) or not isinstance(week, int) or week < 1:
        raise fail("week", f"week must be a whole number from 1, got {week!r}")
    kind = raw["kind"]
    if kind not in [each.value for each in ITEM_KINDS]:
        raise fail("kind", f"kind must be prompt, checkin or closing, got {kind!r}")
    to = raw.get("to", "both")
    if to not in AUDIENCES:
        raise fail("to", f"to must be both, mentor or mentee, got {to!r}")
    template = raw["template"]
    if not isinstance(template, str) or not template or "/" in template:
        raise fail("template", f"template must be a file name in the folder, got {template!r}")
    line = _key_line(lines, first, last, "template")
    week_line = _key_line(lines, first, last, "week")
    return CurriculumItem(week, ItemKind(kind), to, template, line, week_line)


def _check_template(curriculum: Curriculum, item: CurriculumItem, path: Path) -> None:
    try:
        curriculum.environment.get_template(item.template)
    except jinja2.TemplateNotFound:
        raise CurriculumError(
            f"{path} line {item.line}: no template {item.template} in {curriculum.folder}"
        ) from None
    except jinja2.TemplateSyntaxError as error:
        raise CurriculumError(
            f"{curriculum.folder / item.template} line {error.lineno}: {error.message}"
        ) from None
    try:
        curriculum.render(item.template, **SAMPLE_CONTEXT)
    except jinja2.TemplateError as error:
        line = getattr(error, "lineno", None) or 1
        raise CurriculumError(f"{curriculum.folder / item.template} line {line}: {error}") from None


def _key_line(lines: list[str], first: int, last: int, key: str) -> int:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for number in range(first, last):
        if pattern.match(lines[number]) or lines[number].strip() == f"[[{key}]]":
            return number + 1
    return first + 1
