"""How a stored message is shown to a moderator (`relay show`, `relay review`).

Owns one rendering: the message as its recipient would get it (the
rewritten headers, each text part with the participants' addresses replaced)
with every flagged span marked, the attachments listed, and the rules' reasons.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.forwarding import hidden_addresses, outbound_message
from relay.durations import format_duration
from relay.mail.addresses import pair_address
from relay.mail.reading import parse
from relay.mail.text import MailView
from relay.moderation.decisions import hits_of
from relay.outbound.redact import mark_spans
from relay.outbound.scrub_text import replace_addresses
from relay.store.models import Message
from relay.store.states import utcnow

_SHOWN_HEADERS = ("From", "To", "Subject", "Date")


def render(
    session: Session,
    config: Config,
    message: Message,
    *,
    ansi: bool = False,
    state: str | None = None,
) -> str:
    """state: the one word `relay log` uses for it (default: the moderation status)."""
    original = parse(message.raw)
    view = MailView.from_message(original)
    outbound = outbound_message(session, config, message, original)
    hits = hits_of(message)
    spans = [span for hit in hits for span in hit.spans]
    address = pair_address(message.pair.token, config.relay.domain)
    hidden = hidden_addresses(message.pair)

    waited = format_duration(utcnow() - message.received_at)
    lines = [
        f"Message {message.id}: {state or message.status.value}, received {waited} ago",
        f"Pair {address}: from the {message.sender.role.value} "
        f"({message.sender.display_name}) to the {message.recipient.role.value} "
        f"({message.recipient.display_name})",
        "",
        "Reasons:" if hits else "Reasons: none (no rule hit)",
    ]
    for hit in hits:
        flagged = ", ".join(repr(span.text) for span in hit.spans if span.text)
        lines.append(f"  - {hit.rule}: {hit.reason}" + (f" [{flagged}]" if flagged else ""))
    if view.attachments:
        lines.append("Attachments:")
        for attachment in view.attachments:
            how = "inline" if attachment.inline else "attached"
            name = attachment.filename or "(no name)"
            lines.append(f"  - {name} ({attachment.content_type}, {attachment.size} bytes, {how})")
    lines.append("")
    lines.append("-" * 72)
    for header in _SHOWN_HEADERS:
        if header in outbound:
            value = str(outbound[header])
            if header == "Subject":
                subject_spans = [span for span in spans if span.where == "subject"]
                value = mark_spans(value, subject_spans, ansi=ansi)
            lines.append(f"{header}: {value}")
    for part in view.parts:
        part_spans = [span for span in spans if span.where == "body" and span.part == part.index]
        lines.append("")
        lines.append(f"[{part.content_type}]")
        marked = mark_spans(part.text, part_spans, ansi=ansi)
        lines.append(replace_addresses(marked, hidden, address).rstrip("\n"))
    return "\n".join(lines)
