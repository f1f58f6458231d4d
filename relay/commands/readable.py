"""A pair's conversation for people and for records: `relay log --full` and `relay export`.

Owns two renderings of the stored messages. The readable one gives each
message its date, who wrote it to whom, the subject, the decoded text (the
visible text of an HTML part), the attachments by name, type and size, and
marks for what moderation did: flagged, held, and approved with flagged
text removed (that text marked >>>like this<<<, as the partner never saw
it). The export writes each message as mail (mbox or .eml files).

Real addresses appear only when asked for (``with_addresses``): otherwise
every registered address of either participant reads as the pair address,
in the text, in the subject and in the headers of exported mail, which are
then those the partner received (From "Name via Programme <pair address>").
"""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.forwarding import hidden_addresses
from relay.mail.addresses import pair_address
from relay.mail.reading import parse
from relay.mail.text import MailView
from relay.moderation.decisions import hits_of
from relay.outbound.redact import mark_spans
from relay.outbound.rewrite import RewritePlan, as_outbound_bytes, rewrite
from relay.outbound.scrub_text import replace_addresses
from relay.store import transcript
from relay.store.models import Message, ModerationAction, Pair, Participant

_RULE = "-" * 72


def _who(person: Participant, with_addresses: bool) -> str:
    shown = f"{person.display_name} ({person.role.value})"
    return f"{shown} <{person.email}>" if with_addresses else shown


def full_text(session: Session, config: Config, pair: Pair, *, with_addresses: bool) -> str:
    """The whole conversation, oldest first, as a person reads it."""
    address = pair_address(pair.token, config.relay.domain)
    hidden = () if with_addresses else hidden_addresses(pair)
    lines = transcript.transcript(session, pair)
    actions = transcript.decisions(session, pair)
    out = [
        f"Pair {address}: {_who(pair.mentor, with_addresses)} and "
        f"{_who(pair.mentee, with_addresses)}, {pair.status.value}; "
        f"{len(lines)} message{'' if len(lines) == 1 else 's'}",
    ]
    for line in lines:
        out.append("")
        out.append(_RULE)
        out.extend(
            _message_text(line, actions.get(line.message_id, []), hidden, address, with_addresses)
        )
    return "\n".join(out)


def _message_text(
    line: transcript.TranscriptLine,
    actions: list[ModerationAction],
    hidden: tuple[str, ...],
    address: str,
    with_addresses: bool,
) -> list[str]:
    message = line.message

    def shown(text: str) -> str:
        return replace_addresses(text, hidden, address) if hidden else text

    out = [
        f"Message {message.id}, {message.received_at.strftime('%Y-%m-%d %H:%M UTC')}, {line.state}",
        f"From: {_who(message.sender, with_addresses)}",
        f"To: {_who(message.recipient, with_addresses)}",
        f"Subject: {shown(message.subject) or '(no subject)'}",
    ]
    hits = hits_of(message)
    if hits:
        out.append("Flagged: " + "; ".join(f"{hit.rule}: {hit.reason}" for hit in hits))
    redacted = any(action.redacted for action in actions)
    for action in actions:
        when = action.created_at.strftime("%Y-%m-%d %H:%M UTC")
        done = {"approve": "approved", "reject": "rejected", "discard": "discarded"}
        note = f"Held, then {done[action.verdict.value]} by {action.moderator} at {when}"
        if action.redacted:
            note += ", with the flagged text removed (marked >>>like this<<< below)"
        if action.reason:
            note += f": {action.reason}"
        out.append(note)
    if line.state == "held":
        out.append("Held: waiting for a moderator")
    if message.purged_at is not None or not message.raw:
        when = message.purged_at.strftime("%Y-%m-%d") if message.purged_at else "?"
        out += ["", f"[the text was purged on {when} (retention)]"]
        return out
    view = MailView.from_message(parse(message.raw))
    spans = [span for hit in hits for span in hit.spans] if redacted else []
    for part in view.parts:
        text = part.text if part.content_type == "text/plain" else part.visible.text
        if redacted and part.content_type == "text/plain":
            part_spans = [s for s in spans if s.where == "body" and s.part == part.index]
            text = mark_spans(text, part_spans)
        out.append("")
        out.append(shown(text).strip("\n"))
    if view.attachments:
        out.append("")
        out.append("Attachments:")
        for attachment in view.attachments:
            name = shown(attachment.filename) or "(no name)"
            out.append(f"  - {name} ({attachment.content_type}, {attachment.size} bytes)")
    return out


def export_bytes(config: Config, message: Message, state: str, *, with_addresses: bool) -> bytes:
    """One message as mail: as received (with_addresses), or as the partner got it."""
    role = message.sender.role.value
    marker = f"X-Relay-Transcript: message {message.id} from the {role}, {state}".encode()
    if with_addresses:  # for the record: the bytes as received, untouched
        newline = b"\r\n" if b"\r\n" in message.raw[:4096] else b"\n"
        return marker + newline + message.raw
    pair = message.pair
    address = pair_address(pair.token, config.relay.domain)
    plan = RewritePlan(
        programme_name=config.relay.programme_name,
        pair_address=address,
        sender_display_name=message.sender.display_name,
        recipient_display_name=message.recipient.display_name,
        recipient_address=address,
        relay_message_id=message.relay_message_id,
        in_reply_to=(),
        references=(),
        hidden_addresses=hidden_addresses(pair),
        loop_marker=config.relay.domain,
    )
    exported: EmailMessage = rewrite(parse(message.raw), plan)
    return marker + b"\r\n" + as_outbound_bytes(exported)
