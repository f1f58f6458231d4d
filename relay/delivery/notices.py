"""Mail the relay writes itself: introductions, held, rejected, failed notices.

Owns turning a template into an EmailMessage and putting it in the outbox,
where it travels like any forwarded message. A template's first line is
``Subject: ...``; the rest, after a blank line, is the body. Operators can
point ``[relay] templates`` at a folder of their own: a template found there
wins over the shipped one of the same name.

A notice is addressed to one participant and never names the other
participant's real address: templates only receive display names and the
pair address.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formatdate
from enum import StrEnum
from importlib import resources
from secrets import token_hex
from typing import Any, Protocol

import jinja2
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from relay.config import Config
from relay.errors import ConfigError
from relay.mail.addresses import display_address, pair_address
from relay.outbound.rewrite import LOOP_HEADER
from relay.outbound.signing import outbound_bytes
from relay.store.counters import notices_since
from relay.store.models import Message, OutboxEntry
from relay.store.states import OutboxKind, utcnow


class Addressee(Protocol):
    """Whom a notice is for: a Participant, or a moderator."""

    @property
    def display_name(self) -> str: ...

    @property
    def email(self) -> str: ...


class Notice(StrEnum):
    """Every kind of mail the relay writes itself; the value names its template."""

    INTRO = "intro"  # to both participants when a pair is created
    HELD = "held"  # to a sender: your message waits for a moderator
    REJECTED = "rejected"  # to a sender: a moderator rejected your message
    REFUSED = "refused"  # to a sender: refused at intake (e.g. outside recipients)
    FAILED = "failed"  # to a sender: your message could not be delivered
    MODERATOR_ALERT = "moderator_alert"  # to moderators: what waits
    # Safeguarding (relay/safeguarding): at once, never batched.
    CONCERN_RECEIVED = "concern_received"  # to a participant who wrote to concern@
    LEAD_ALERT = "lead_alert"  # to the safeguarding leads: a concern was opened or grew
    OVERDUE_ALERT = "overdue_alert"  # to the leads: held mail undecided past decide_within
    CHECK_EXPIRING = "check_expiring"  # to the leads: a mentor's background check runs out
    GUARDIAN_COPY = "guardian_copy"  # a minor's mail, copied to their guardian (no template)
    POSTMASTER = "postmaster"  # to the operator: mail for postmaster@ or abuse@, attached
    UNREAD = "unread"  # to whoever writes to the notices' address: it is not read
    # The programme (relay/programme/). Prompts, check-ins and closings are rendered
    # from the cohort's curriculum folder; the others from templates/ like any notice.
    PROMPT = "prompt"  # a week's suggested topic, from the pair address
    CHECKIN = "checkin"  # "how is it going?", from its signed check-in address
    CLOSING = "closing"  # the curriculum's last message
    NUDGE = "nudge"  # to a silent participant (or both in a quiet pair)
    PAIR_ENDED = "pair_ended"  # to both when a coordinator ends a pair
    COMPLETED = "programme_completed"  # to both at the end of the weeks: thanks, renewal
    EXIT_CHECKIN = "exit_checkin"  # to each when a pair ends, from a check-in address
    # Match offers by email (relay/offers), each from its signed offer address.
    OFFER = "offer"  # to a mentee: a few mentors to choose from
    OFFER_INVITATION = "offer_invitation"  # to the chosen mentor: yes or no
    OFFER_UNCLEAR = "offer_unclear"  # to either: please answer with a number / yes or no
    OFFER_MOVED_ON = "offer_moved_on"  # to either: this offer has moved on
    OFFER_NO_CHOICE_LEFT = "offer_no_choice_left"  # to the moderators: a mentee needs them
    OFFER_CLOSED = "offer_closed"  # to the mentee: no pair this time, a coordinator will call
    OFFER_CANCELLED = "offer_cancelled"  # to the mentee: a coordinator withdrew the offer
    OFFER_WITHDRAWN = "offer_withdrawn"  # to an invited mentor: no need to answer any more
    OFFER_REMINDER = "offer_reminder"  # to whoever the offer waits on, half way to the deadline


@dataclass(frozen=True)
class Moderator:
    display_name: str
    email: str


class Notices:
    """Renders notices from templates and queues them."""

    def __init__(self, config: Config) -> None:
        self.config = config
        loaders: list[jinja2.BaseLoader] = []
        if config.relay.templates:
            folder = (config.source.parent / config.relay.templates).resolve()
            if not folder.is_dir():
                raise ConfigError(f"{config.source}: [relay] templates: no folder {folder}")
            loaders.append(jinja2.FileSystemLoader(folder))
        loaders.append(jinja2.FunctionLoader(_shipped_template))
        self.environment = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,  # plain-text mail
        )

    def check(self) -> None:
        """Load every template now, so a broken one fails a reload, not a notice."""
        names = sorted(set(shipped_templates()) | set(self._operator_templates()))
        for name in names:
            try:
                self.environment.get_template(f"{name}.txt.j2")
            except jinja2.TemplateError as error:
                raise ConfigError(f"template {name}.txt.j2: {error}") from None

    def _operator_templates(self) -> list[str]:
        if not self.config.relay.templates:
            return []
        folder = (self.config.source.parent / self.config.relay.templates).resolve()
        return [path.name.removesuffix(".txt.j2") for path in folder.glob("*.txt.j2")]

    def render(
        self,
        notice: Notice,
        recipient: Addressee,
        reply_to: str = "",
        *,
        policy: EmailPolicy[Any] = email.policy.default,
        **context: Any,
    ) -> EmailMessage:
        """The notice as a message; `policy` lets a batch reuse its repeated headers."""
        relay = self.config.relay
        template = notice.value
        text = self.environment.get_template(f"{template}.txt.j2").render(
            programme_name=relay.programme_name,
            recipient_name=recipient.display_name,
            **context,
        )
        first_line, _, body = text.partition("\n")
        if not first_line.startswith("Subject:"):
            raise ConfigError(f"template {template}.txt.j2 must start with a 'Subject:' line")
        message = EmailMessage(policy=policy)
        message["From"] = display_address(relay.programme_name, self.config.notice_address)
        message["To"] = display_address(recipient.display_name, recipient.email)
        message["Subject"] = first_line.removeprefix("Subject:").strip()
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = f"<notice.{token_hex(12)}@{relay.domain}>"
        if reply_to:
            message["Reply-To"] = reply_to
        message["Auto-Submitted"] = "auto-generated"
        message[LOOP_HEADER] = relay.domain
        message.set_content(body.lstrip("\n"))
        return message

    def to_sender(
        self, session: Session, notice: Notice, message: Message, **context: Any
    ) -> OutboxEntry:
        """A notice to a message's sender about it, naming the partner by display name only."""
        return self.queue(
            session,
            notice,
            message.sender,
            about_message_id=message.id,
            subject=message.subject or "(no subject)",
            partner_name=message.recipient.display_name,
            pair_address=pair_address(message.pair.token, self.config.relay.domain),
            **context,
        )

    def not_delivered(self, session: Session, row: OutboxEntry) -> None:
        """Tell the sender a forward failed for good."""
        if row.kind is not OutboxKind.FORWARD or row.message is None:
            return  # a notice that fails is recorded, never answered with another notice
        self.to_sender(session, Notice.FAILED, row.message)

    def queue(
        self,
        session: Session,
        notice: Notice,
        recipient: Addressee,
        *,
        about_message_id: int | None = None,
        reply_to: str = "",
        **context: Any,
    ) -> OutboxEntry:
        entry = OutboxEntry(
            **self.outbox_row(notice, recipient, reply_to=reply_to, **context),
            message_id=about_message_id,
        )
        session.add(entry)
        return entry

    def outbox_row(
        self, notice: Notice, recipient: Addressee, *, reply_to: str = "", **context: Any
    ) -> dict[str, Any]:
        """A rendered notice as outbox column values, for a Core insert (message_id aside)."""
        message = self.render(notice, recipient, reply_to, **context)
        return {
            "kind": OutboxKind.NOTICE,
            "notice": notice.value,
            "recipient": recipient.email,
            "content": outbound_bytes(self.config, message),
        }


def held_notice_allowed(connection: Connection, config: Config, recipient: str) -> bool:
    """Whether a sender may still be told "held" today: a chatty sender is not flooded.

    Counted inside the writing transaction, so the cap holds for one process; two
    processes writing at the same instant may each send one more.
    """
    since = utcnow() - timedelta(days=1)
    sent = notices_since(connection, Notice.HELD.value, recipient, since)
    return sent < config.moderation.held_notices_per_day


def shipped_templates() -> list[str]:
    folder = resources.files("relay.templates")
    return sorted(
        entry.name.removesuffix(".txt.j2")
        for entry in folder.iterdir()
        if entry.name.endswith(".txt.j2")
    )


def _shipped_template(name: str) -> str | None:
    """A template shipped with the relay (templates/, installed as relay.templates)."""
    entry = resources.files("relay.templates").joinpath(name)
    return entry.read_text(encoding="utf-8") if entry.is_file() else None
