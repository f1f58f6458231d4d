"""The outbound message, made from a stored one: a pure function.

``rewrite(original, plan)`` takes the message as the sender wrote it and
returns the message the other participant receives. Top-level headers are
kept by allow-list (anything not named in KEPT_HEADERS is dropped, so a
header a client invents tomorrow cannot leak) and the kept ones are written
anew from their parsed values (relay.outbound.reemit: no comments, the
relay's own Date format and boundaries); From/To/Message-ID and the
threading headers are written anew, and every registered address of either
participant is replaced by the pair address wherever it appears in text.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from io import BytesIO
from typing import TypeVar

from relay.mail.addresses import display_address
from relay.mail.headerlist import keep_only
from relay.mail.policy import SMTP_POLICY
from relay.outbound.identity_parts import strip_identity_parts
from relay.outbound.reemit import reemit_content_headers, relay_date
from relay.outbound.scrub import scrub_message
from relay.outbound.scrub_text import replace_addresses

KEPT_HEADERS = frozenset(
    {
        "subject",
        "date",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-language",
    }
)
LOOP_HEADER = "X-Loop"
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
MessageT = TypeVar("MessageT", bound=Message)


@dataclass(frozen=True)
class RewritePlan:
    """Everything rewrite needs to know besides the message itself."""

    programme_name: str
    pair_address: str
    sender_display_name: str
    recipient_display_name: str
    recipient_address: str
    relay_message_id: str
    in_reply_to: tuple[str, ...]  # already mapped to ids the recipient knows
    references: tuple[str, ...]
    hidden_addresses: tuple[str, ...]  # every registered address of both participants
    loop_marker: str
    strip_remote_content: bool = False  # [rules.links] remote_content = "strip"


def message_ids(value: str | None) -> list[str]:
    """The <...> ids in a Message-ID, In-Reply-To or References value, in order."""
    return _MESSAGE_ID.findall(value or "")


def first_message_id(value: str | None) -> str | None:
    found = message_ids(value)
    return found[0] if found else None


def rewrite(original: EmailMessage, plan: RewritePlan) -> EmailMessage:
    outbound = copy_structure(original)
    keep_only(outbound, KEPT_HEADERS.__contains__)
    strip_identity_parts(outbound)
    scrub_message(
        outbound,
        plan.hidden_addresses,
        plan.pair_address,
        strip_remote=plan.strip_remote_content,
    )
    subject = str(original.get("Subject", ""))
    _replace_header(
        outbound, "Subject", replace_addresses(subject, plan.hidden_addresses, plan.pair_address)
    )
    _replace_header(outbound, "Date", relay_date(_parsed(original, "Date")))
    sender_name = f"{plan.sender_display_name} via {plan.programme_name}"
    outbound["From"] = display_address(sender_name, plan.pair_address)
    outbound["To"] = display_address(plan.recipient_display_name, plan.recipient_address)
    outbound["Message-ID"] = plan.relay_message_id
    if plan.in_reply_to:
        outbound["In-Reply-To"] = " ".join(plan.in_reply_to)
    if plan.references:
        outbound["References"] = " ".join(plan.references)
    outbound[LOOP_HEADER] = plan.loop_marker
    reemit_content_headers(outbound)
    _replace_header(outbound, "MIME-Version", "1.0")
    return outbound


def copy_structure(message: MessageT) -> MessageT:
    """A copy to rewrite in place: every part a new object with its own header and part lists.

    What ``copy.deepcopy`` gives for everything rewriting can change, without copying what
    nothing changes in place: header values (parsed header objects are immutable and already
    shared between messages by relay.mail.policy's cache), payload strings, the policy.
    """
    twin = copy.copy(message)
    state = vars(twin)  # copy.copy gave the twin its own attribute dict
    state["_headers"] = list(state["_headers"])
    state["defects"] = list(state.get("defects", ()))
    payload = state.get("_payload")
    if isinstance(payload, list):  # a multipart's parts; message/rfc822's one message
        state["_payload"] = [copy_structure(part) for part in payload]
    elif isinstance(payload, Message):
        state["_payload"] = copy_structure(payload)
    elif not isinstance(payload, str | bytes | None):
        return copy.deepcopy(message)  # nothing the parser makes; copied the thorough way
    return twin


def _parsed(message: EmailMessage, name: str) -> object:
    try:
        return message.get(name)
    except Exception:  # the header registry's failures are the input's fault, any kind
        return None


def _replace_header(message: EmailMessage, name: str, value: str) -> None:
    del message[name]
    if value:
        message[name] = value


class _WholeBodyGenerator(BytesGenerator):
    """The stdlib's BytesGenerator, writing a body in one piece.

    The stdlib writes a body line by line, two writes and two encodes a line
    (a 50 KB body: some 1,300 calls); replacing every line end with the
    policy's at once writes the same bytes: the pieces between line ends,
    each followed by a line end, and the last piece as it is.
    """

    def _write_lines(self, lines: str) -> None:
        if lines:
            self.write(_with_line_ends(lines, self._NL))  # type: ignore[attr-defined]


_LINE_END = re.compile(r"\r\n|\r|\n")  # the stdlib generator's NLCRE


def _with_line_ends(text: str, line_end: str) -> str:
    """``text`` with every CRLF, CR and LF made ``line_end``."""
    # Parsed mail has one kind of line end throughout (intake makes them CRLF):
    # str.replace, or nothing at all, is many times faster than the pattern.
    cr, lf = text.count("\r"), text.count("\n")
    if not cr:
        return text.replace("\n", line_end) if lf and line_end != "\n" else text
    if cr == lf == text.count("\r\n"):
        return text if line_end == "\r\n" else text.replace("\r\n", line_end)
    return _LINE_END.sub(line_end, text)


def as_outbound_bytes(message: EmailMessage) -> bytes:
    """Wire form: CRLF line ends, long lines folded, 8-bit bodies left as they are.

    What ``message.as_bytes(policy=SMTP_POLICY)`` gives, with a faster writer.
    """
    out = BytesIO()
    _WholeBodyGenerator(out, mangle_from_=False, policy=SMTP_POLICY).flatten(message)
    return out.getvalue()
