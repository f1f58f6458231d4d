"""What a person reads in a message.

Owns turning a parsed ``EmailMessage`` into the text its recipient would see:
every text/plain and text/html part decoded to ``str`` (any charset, any
transfer encoding, never raising on bad input), the visible text and link
targets of HTML, the subject, and the list of attachments with their decoded
names. Everything readable is offered as a ``Segment``: a string to scan plus
a map from each of its characters back to an offset in the decoded source,
so a rule's match can be located in the part and later redacted there.

Offsets are always into the *decoded* text of a part (``TextPart.text``), as
relay.mail.parts.decode_text produces it; scrubbing and redaction read parts
with the same function.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from typing import Literal

from relay.mail.parts import decode_text

Where = Literal["body", "subject", "filename", "part"]
Kind = Literal["text", "href", "subject", "filename"]

# A run maps visible[vstart:vend] to source[sstart:send]. Linear runs are
# copied text (one char to one char); the others (an entity, a tag turned into
# a line break) map every character they hold to the whole source range.
_Run = tuple[int, int, int, int, bool]


@dataclass(frozen=True)
class Segment:
    """A piece of readable text and where each of its characters came from."""

    part: int
    where: Where
    kind: Kind
    text: str
    source: str
    runs: tuple[_Run, ...] | None = None
    _starts: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def source_range(self, start: int, end: int) -> tuple[int, int]:
        """The ``source`` offsets that ``text[start:end]`` was read from."""
        if self.runs is None:
            return start, end
        return self._locate(start, last=False), self._locate(end - 1, last=True)

    def _locate(self, pos: int, *, last: bool) -> int:
        assert self.runs is not None
        if not self.runs:
            return 0
        i = max(bisect_right(self._starts, pos) - 1, 0)
        vstart, _vend, sstart, send, linear = self.runs[i]
        if linear:
            return sstart + (pos - vstart) + (1 if last else 0)
        return send if last else sstart


def _segment(
    part: int, where: Where, kind: Kind, text: str, source: str, runs: list[_Run] | None = None
) -> Segment:
    if runs is None:
        return Segment(part, where, kind, text, source)
    return Segment(part, where, kind, text, source, tuple(runs), tuple(r[0] for r in runs))


@dataclass(frozen=True)
class TextPart:
    """One text/plain or text/html part, decoded.

    ``text`` is the decoded body (HTML source for text/html); ``visible`` is
    what a reader sees (tags dropped, entities resolved) and ``hrefs`` are the
    link targets of an HTML part. Both map back into ``text``.
    """

    index: int
    content_type: str
    text: str
    visible: Segment
    hrefs: tuple[Segment, ...] = ()


@dataclass(frozen=True)
class AttachmentInfo:
    """A part that reaches the recipient as a file or picture, not as text."""

    index: int
    filename: str
    content_type: str
    size: int
    inline: bool


@dataclass(frozen=True)
class MailView:
    """A message parsed once, with everything the rules read from it."""

    message: EmailMessage
    parts: tuple[TextPart, ...]
    attachments: tuple[AttachmentInfo, ...]
    subject: str = ""

    @classmethod
    def from_message(cls, msg: EmailMessage) -> MailView:
        return cls(msg, tuple(text_parts(msg)), tuple(attachments(msg)), _header(msg, "Subject"))

    def segments(self, *kinds: Kind) -> Iterator[Segment]:
        """Every readable segment of the given kinds (all kinds if none given)."""
        wanted = set(kinds) if kinds else {"text", "href", "subject", "filename"}
        if "subject" in wanted and self.subject:
            yield _segment(0, "subject", "subject", self.subject, self.subject)
        for part in self.parts:
            if "text" in wanted:
                yield part.visible
            if "href" in wanted:
                yield from part.hrefs
        if "filename" in wanted:
            for att in self.attachments:
                if att.filename:
                    yield _segment(att.index, "filename", "filename", att.filename, att.filename)


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
        return "" if value is None else str(value)
    except Exception:  # a malformed header must not stop moderation
        return ""


def _filename(part: Message) -> str:
    try:
        return part.get_filename() or ""
    except Exception:
        return ""


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _is_text_part(part: Message) -> bool:
    ctype = part.get_content_type()
    if ctype not in ("text/plain", "text/html") or part.is_multipart():
        return False
    if not _filename(part):
        return _disposition(part) != "attachment"
    # A named text/plain shown inline (some clients name every part) is read.
    return ctype == "text/plain" and _disposition(part) != "attachment"


def text_parts(msg: EmailMessage) -> list[TextPart]:
    """Every text/plain and text/html part a reader sees, decoded."""
    found: list[TextPart] = []
    for index, part in enumerate(msg.walk()):
        if not _is_text_part(part):
            continue
        text = decode_text(part)
        ctype = part.get_content_type()
        if ctype == "text/html":
            visible, hrefs = _read_html(index, text)
            found.append(TextPart(index, ctype, text, visible, hrefs))
        else:
            found.append(TextPart(index, ctype, text, _segment(index, "body", "text", text, text)))
    return found


def attachments(msg: EmailMessage) -> list[AttachmentInfo]:
    """Every part that is a file or picture rather than readable text."""
    found: list[AttachmentInfo] = []
    for index, part in enumerate(msg.walk()):
        ctype = part.get_content_type()
        if part.is_multipart() and ctype != "message/rfc822":
            continue
        name = _filename(part)
        disposition = _disposition(part)
        is_body_text = ctype in ("text/plain", "text/html") and not name
        if is_body_text and disposition != "attachment":
            continue
        found.append(
            AttachmentInfo(
                index=index,
                filename=name,
                content_type=ctype,
                size=_size(part),
                inline=disposition == "inline" or (disposition is None and "Content-ID" in part),
            )
        )
    return found


def _size(part: Message) -> int:
    try:
        if part.is_multipart():
            return len(part.as_bytes())
        data = part.get_payload(decode=True)
    except Exception:
        return 0
    return len(data) if isinstance(data, bytes) else 0


# --- HTML -------------------------------------------------------------------

_HTML_TOKEN = re.compile(
    r"""
    <(?P<hidden>script|style)\b[^>]*>.*?</(?P=hidden)\s*>
  | <!--|-->|<!\[[^\]]*\]>|<![^>]*>|<\?[^>]*>
  | <(?P<close>/?)(?P<tag>[a-zA-Z][a-zA-Z0-9:-]*)(?P<attrs>(?:[^>"']|"[^"]*"|'[^']*')*)>
  | &(?:\#[0-9]{1,7}|\#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});?
    """,
    re.S | re.X | re.I,
)
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
# Tags a browser renders as a break; without one, "<td>a</td><td>b</td>" would
# read as "ab" and glue unrelated numbers into one phone-like run.
_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "title",
        "tr",
        "ul",
    ]
)


def _read_html(index: int, source: str) -> tuple[Segment, tuple[Segment, ...]]:
    pieces: list[str] = []
    runs: list[_Run] = []
    hrefs: list[Segment] = []
    pos = vpos = 0

    def emit(text: str, sstart: int, send: int, linear: bool) -> None:
        nonlocal vpos
        pieces.append(text)
        runs.append((vpos, vpos + len(text), sstart, send, linear))
        vpos += len(text)

    for m in _HTML_TOKEN.finditer(source):
        if m.start() > pos:
            emit(source[pos : m.start()], pos, m.start(), True)
        pos = m.end()
        token = m.group(0)
        if token.startswith("&"):
            emit(html.unescape(token), m.start(), m.end(), False)
            continue
        tag = m.group("tag")
        if not tag:
            continue
        if tag.lower() in _BLOCK_TAGS:
            emit("\n", m.start(), m.end(), False)
        if not m.group("close"):
            hrefs.extend(_hrefs(index, source, m.start("attrs"), m.group("attrs")))
    if pos < len(source):
        emit(source[pos:], pos, len(source), True)
    return _segment(index, "body", "text", "".join(pieces), source, runs), tuple(hrefs)


def _hrefs(index: int, source: str, offset: int, attrs: str) -> Iterator[Segment]:
    for m in _HREF.finditer(attrs):
        group = next(g for g in (1, 2, 3) if m.group(g) is not None)
        start, end = offset + m.start(group), offset + m.end(group)
        raw = m.group(group)
        value = html.unescape(raw).strip()
        if not value:
            continue
        if value == raw:
            yield _segment(
                index, "body", "href", value, source, [(0, len(value), start, end, True)]
            )
        else:
            yield _segment(
                index, "body", "href", value, source, [(0, len(value), start, end, False)]
            )
