"""`relay concern`, `relay sample`, `relay participant consent|check`: safeguarding by hand.

Thin: each command parses, calls relay.safeguarding, prints. Showing a
concern's mail is a reading of message content and lands in the access log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from relay.commands.context import (
    Context,
    emit_json,
    moderator_option,
    pass_context,
    printable,
    table,
)
from relay.store.states import ConcernStatus

if TYPE_CHECKING:
    from relay.store.safeguarding_models import Concern

# Named here, not imported: `relay --help` loads no database or mail library.
STATUS_WORDS = tuple(status.value for status in ConcernStatus)
VERDICTS = ("ok", "concern")


def _as_name_option(function: Any) -> Any:
    return click.option(
        "--as",
        "who",
        default=None,
        help="Your name, for the record (default: your login name).",
    )(function)


@click.group("concern")
def concern_group() -> None:
    """Safeguarding concerns: raise, list, read, update."""


def _summary(context: Context, concern: Concern) -> dict[str, Any]:
    from relay.mail.addresses import pair_address

    return {
        "id": concern.id,
        "status": concern.status.value,
        "source": concern.source,
        "raised_by": concern.raised_by,
        "created_at": concern.created_at.isoformat(timespec="seconds"),
        "pairs": [pair_address(p.token, context.domain) for p in concern.pairs],
        "messages": [m.id for m in concern.messages],
        "reference": concern.reference,
        "summary": concern.summary,
    }


@concern_group.command("open")
@click.option("--pair", "address", required=True, help="The pair address it is about.")
@click.option("--summary", required=True, help="What was seen or heard.")
@_as_name_option
@pass_context
def concern_open(context: Context, address: str, summary: str, who: str | None) -> None:
    """Raise a concern about a pair (a coordinator's own); the leads are alerted at once."""
    from relay.delivery.notices import Notices
    from relay.mail.addresses import pair_address
    from relay.safeguarding import access_log, concerns
    from relay.store import registry

    if not summary.strip():
        raise click.BadParameter("must not be empty", param_hint="--summary")
    name = access_log.reader_name(who)
    with context.session() as session:
        pair = registry.find_pair(session, address, context.domain)
        concern = concerns.open_concern(
            session, source="coordinator", raised_by=name, summary=summary.strip(), pairs=[pair]
        )
        alerted = concerns.alert_leads(
            session, context.config, Notices(context.config), concern, f"{name}: {summary}"
        )
        click.echo(f"opened concern {concern.id} about {pair_address(pair.token, context.domain)}")
    click.echo(f"alerted {alerted} lead{'s' if alerted != 1 else ''}")


@concern_group.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUS_WORDS),
    help="Only concerns in this state (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_context
def concern_list(context: Context, statuses: tuple[str, ...], as_json: bool) -> None:
    """Concerns, oldest first."""
    from relay.safeguarding import concerns

    wanted = [concerns.parse_status(word) for word in statuses]
    with context.session() as session:
        items = [_summary(context, c) for c in concerns.list_concerns(session, wanted)]
    if as_json:
        emit_json(items)
        return
    rows = [
        (
            str(i["id"]),
            str(i["status"]),
            str(i["created_at"])[:16].replace("T", " "),
            str(i["source"]),
            ", ".join(i["pairs"]) or "-",
            str(i["summary"])[:60],
        )
        for i in items
    ]
    table(("ID", "STATUS", "OPENED (UTC)", "SOURCE", "PAIRS", "SUMMARY"), rows)


@concern_group.command("show")
@click.argument("concern_id", type=int)
@_as_name_option
@pass_context
def concern_show(context: Context, concern_id: int, who: str | None) -> None:
    """A concern, its history and, for one raised by mail, the mail itself (logged)."""
    from relay.mail.addresses import pair_address
    from relay.safeguarding import access_log, concerns

    reader = access_log.reader_name(who)
    with context.session() as session:
        concern = concerns.get_concern(session, concern_id)
        info = _summary(context, concern)
        click.echo(f"Concern {concern.id}: {info['status']}")
        click.echo(f"raised by: {concern.raised_by} ({concern.source}), {info['created_at']}")
        for pair in concern.pairs:
            click.echo(
                f"pair:      {pair_address(pair.token, context.domain)} ({pair.status.value}): "
                f"mentor {pair.mentor.display_name}, mentee {pair.mentee.display_name}"
            )
        for message in concern.messages:
            click.echo(
                f"message:   {message.id} ({message.status.value}) `relay show {message.id}`"
            )
        if concern.reference:
            click.echo(f"reference: {concern.reference}")
        click.echo(f"summary:   {concern.summary}")
        click.echo("history:")
        for event in concern.events:
            when = event.created_at.strftime("%Y-%m-%d %H:%M UTC")
            ref = f" [reference {event.reference}]" if event.reference else ""
            click.echo(f"  {when}  {event.actor}: {event.status.value}{ref}: {event.note}")
        # Summaries quote what was flagged: every reading of a concern is logged.
        access_log.record(
            session,
            reader,
            "concern show",
            pair_id=concern.pairs[0].id if len(concern.pairs) == 1 else None,
            concern_id=concern.id,
            detail="concern and its mail" if concern.raw else "concern",
        )
        if concern.raw:
            click.echo("\n--- the mail as received ---")
            click.echo(printable(concern.raw))


@concern_group.command("update")
@click.argument("concern_id", type=int)
@click.option("--status", "status_word", required=True, help="open|investigating|referred|closed")
@click.option("--note", required=True, help="Why: kept in the concern's history.")
@click.option("--reference", default=None, help="A referral or case reference.")
@moderator_option
@pass_context
def concern_update(
    context: Context,
    concern_id: int,
    status_word: str,
    note: str,
    reference: str | None,
    moderator: str,
) -> None:
    """Change a concern's status, saying why; every change is kept."""
    from relay.safeguarding import concerns

    status = concerns.parse_status(status_word)
    with context.session() as session:
        concern = concerns.update_concern(session, concern_id, status, note, moderator, reference)
        click.echo(f"concern {concern.id} is now {concern.status.value}")


# -- spot checks ------------------------------------------------------------------


@click.group("sample", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def sample_group(ctx: click.Context, as_json: bool) -> None:
    """Spot checks: a share of delivered, unflagged mail to read ([safeguarding] sample_rate)."""
    from relay.mail.addresses import pair_address
    from relay.safeguarding import sampling

    if ctx.invoked_subcommand is not None:
        return
    context = ctx.find_object(Context)
    assert context is not None
    rate = context.config.safeguarding.sample_rate
    with context.session() as session:
        eligible, sampled = sampling.sample_and_count(session, rate)
        counts = sampling.summarise(eligible, sampled)
        items: list[dict[str, Any]] = [
            {
                "id": s.message.id,
                "received_at": s.message.received_at.isoformat(timespec="seconds"),
                "pair": pair_address(s.message.pair.token, context.domain),
                "sender_role": s.message.sender.role.value,
                "subject": s.message.subject,
                "checked": None
                if s.check is None
                else {
                    "verdict": s.check.verdict,
                    "by": s.check.checked_by,
                    "at": s.check.checked_at.isoformat(timespec="seconds"),
                    "concern": s.check.concern_id,
                },
            }
            for s in sampled
        ]
    if as_json:
        emit_json(items)
        return
    rows = [
        (
            str(i["id"]),
            str(i["received_at"])[:16].replace("T", " "),
            str(i["pair"]),
            str(i["sender_role"]),
            str(i["subject"]),
            "-" if i["checked"] is None else f"{i['checked']['verdict']} ({i['checked']['by']})",
        )
        for i in items
    ]
    table(("ID", "RECEIVED (UTC)", "PAIR", "FROM", "SUBJECT", "CHECKED"), rows)
    click.echo(
        f"{counts.sampled} of {counts.eligible} delivered unflagged messages sampled "
        f"(rate {rate}); checked: {counts.checked_ok} ok, {counts.checked_concern} concern"
    )


@sample_group.command("mark")
@click.argument("message_id", type=int)
@click.argument("verdict", type=click.Choice(VERDICTS))
@moderator_option
@pass_context
def sample_mark(context: Context, message_id: int, verdict: str, moderator: str) -> None:
    """Record a spot check of a sampled message: ok, or concern (opens one)."""
    from relay.delivery.notices import Notices
    from relay.safeguarding import sampling

    with context.session() as session:
        check = sampling.mark(
            session, context.config, Notices(context.config), message_id, verdict, moderator
        )
        opened = f"; opened concern {check.concern_id}" if check.concern_id else ""
        click.echo(f"message {message_id} checked: {verdict}{opened}")


# -- minors, consent, checks (subcommands of `relay participant`) ---------------------


@click.command("consent")
@click.argument("email")
@click.option("--by", "given_by", required=True, help="Who gave consent (e.g. the guardian).")
@click.option("--date", "on", default=None, help="When, YYYY-MM-DD (default: today).")
@pass_context
def participant_consent(context: Context, email: str, given_by: str, on: str | None) -> None:
    """Record a guardian's consent for a minor."""
    from relay.safeguarding import consent_checks
    from relay.store import registry

    when = consent_checks.parse_date(on, "--date") if on else None
    with context.session() as session:
        person = registry.find_participant(session, email)
        consent_checks.record_consent(person, given_by, when)
        click.echo(
            f"consent for {person.email} recorded: {person.consent_by}, {person.consent_date}"
        )


@click.command("safeguarding")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_context
def participant_safeguarding(context: Context, as_json: bool) -> None:
    """Minors and their consent, mentors and their background checks."""
    from relay.safeguarding import consent_checks
    from relay.store import registry

    require = context.config.safeguarding.require_check
    with context.session() as session:
        items = [
            {
                "email": p.email,
                "name": p.display_name,
                "role": p.role.value,
                "minor": p.minor,
                "guardian": p.guardian_email,
                "consent_by": p.consent_by,
                "consent_date": p.consent_date.isoformat() if p.consent_date else None,
                "checked_until": p.checked_until.isoformat() if p.checked_until else None,
                "standing": consent_checks.standing(p, require),
            }
            for p in registry.list_participants(session)
            if p.minor or p.role.value == "mentor"
        ]
    if as_json:
        emit_json(items)
        return
    rows = [
        (
            str(i["email"]),
            str(i["role"]) + (" (minor)" if i["minor"] else ""),
            str(i["guardian"] or "-"),
            f"{i['consent_by']}, {i['consent_date']}" if i["consent_date"] else "-",
            str(i["checked_until"] or "-"),
            str(i["standing"]),
        )
        for i in items
    ]
    table(("PARTICIPANT", "ROLE", "GUARDIAN", "CONSENT", "CHECKED UNTIL", "STANDING"), rows)


@click.command("check")
@click.argument("email")
@click.option("--until", "until", required=True, help="The check's expiry, YYYY-MM-DD.")
@pass_context
def participant_check(context: Context, email: str, until: str) -> None:
    """Record a mentor's background check; pairs paused by an expired one resume."""
    from relay.mail.addresses import pair_address
    from relay.safeguarding import consent_checks
    from relay.store import registry

    expiry = consent_checks.parse_date(until, "--until")
    with context.session() as session:
        person = registry.find_participant(session, email)
        resumed = consent_checks.record_check(session, person, expiry)
        click.echo(f"background check of {person.email} recorded until {expiry}")
        for pair in resumed:
            click.echo(f"resumed {pair_address(pair.token, context.domain)}")
