"""Removing what the rules flagged, and showing it to a moderator.

Owns the two things done with a hit's spans after detection: ``redact``
returns a copy of the message in which every flagged span of a text part,
the Subject or an attachment's file name reads ``[removed by moderator]``
(changed parts are re-encoded cleanly, every other part keeps its bytes), and
``mark_spans`` draws the spans into a text for ``relay show``.

Spans index the text as relay.mail.parts.decode_text reads it, and this
module reads and rewrites parts with the same functions. A span whose text
no longer sits at its offsets (the message was re-parsed differently, say)
is found again by searching for its text, because leaving flagged contact
details in place is the worse failure.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from email.message import EmailMessage, Message

from relay.mail.parts import decode_text, replace_text
from relay.mail.text import text_parts
from relay.rules.base import Hit, Span

REMOVED = "[removed by moderator]"
_MARKS = (">>>", "<<<")
_ANSI_MARKS = ("\x1b[1;7m", "\x1b[0m")  # bold reverse video, then reset


def _intervals(text: str, spans: Iterable[Span]) -> list[tuple[int, int]]:
    """The spans' ranges in ``text``, relocated when stale, merged and sorted."""
    ranges: list[tuple[int, int]] = []
    for span in spans:
        if not span.text:
            continue
        if 0 <= span.start < span.end <= len(text) and text[span.start : span.end] == span.text:
            ranges.append((span.start, span.end))
            continue
        at = text.find(span.text)
        while at != -1:
            ranges.append((at, at + len(span.text)))
            at = text.find(span.text, at + len(span.text))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _replace(text: str, spans: Iterable[Span], replacement: str = REMOVED) -> str:
    out: list[str] = []
    pos = 0
    for start, end in _intervals(text, spans):
        out += [text[pos:start], replacement]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def mark_spans(text: str, spans: Iterable[Span], *, ansi: bool = False) -> str:
    """``text`` with each span drawn as ``>>>flagged<<<`` (or in reverse video)."""
    before, after = _ANSI_MARKS if ansi else _MARKS
    out: list[str] = []
    pos = 0
    for start, end in _intervals(text, spans):
        out += [text[pos:start], before, text[start:end], after]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _set_filename(part: Message, spans: Sequence[Span]) -> None:
    old = part.get_filename()
    if not old:
        return
    new = _replace(old, spans)
    if new == old:
        return
    if "Content-Disposition" in part:
        disposition = part.get_content_disposition() or "attachment"
        del part["Content-Disposition"]
        part.add_header("Content-Disposition", disposition, filename=new)
    if part.get_param("name") is not None:
        part.set_param("name", new)


def redact(msg: EmailMessage, hits: Sequence[Hit]) -> EmailMessage:
    """A copy of ``msg`` with every span of ``hits`` replaced by ``REMOVED``.

    Whole-part spans (an attachment flagged as such) are left alone: removing
    an attachment is a moderator's decision, not a redaction.
    """
    spans = [span for hit in hits for span in hit.spans]
    result = copy.deepcopy(msg)
    subject_spans = [s for s in spans if s.where == "subject"]
    if subject_spans and result.get("Subject") is not None:
        subject = str(result["Subject"])
        new_subject = _replace(subject, subject_spans)
        if new_subject != subject:
            del result["Subject"]
            result["Subject"] = new_subject
    readable = {p.index for p in text_parts(result)}
    for index, part in enumerate(result.walk()):
        body = [s for s in spans if s.part == index and s.where == "body"]
        if body and index in readable:
            text = decode_text(part)
            new_text = _replace(text, body)
            if new_text != text:
                replace_text(part, new_text)
        names = [s for s in spans if s.part == index and s.where == "filename"]
        if names:
            _set_filename(part, names)
    return result
