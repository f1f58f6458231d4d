"""`relay held`, `show`, `approve`, `reject`, `discard`, `review`, `audit` and `watch`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from relay.commands.context import (
    MESSAGE_ID,
    Context,
    emit_json,
    exit_failed,
    fail,
    json_option,
    moderator_option,
    pass_context,
    report_error,
    table,
)
from relay.durations import format_duration
from relay.store.states import ModerationVerdict

if TYPE_CHECKING:
    from relay.delivery.notices import Notices


def _pair_token(context: Context, address: str | None) -> str | None:
    if address is None:
        return None
    from relay.store import registry

    with context.session() as session:
        return registry.find_pair(session, address, context.domain).token


@click.command("held")
@click.option("--pair", "pair_filter", help="Only this pair's messages.")
@click.option("--rule", help="Only messages this rule flagged (e.g. contact, links).")
@json_option
@pass_context
def held(context: Context, pair_filter: str | None, rule: str | None, as_json: bool) -> None:
    """What waits for a moderator: overdue ones (marked \"!\") first, then oldest first."""
    from relay.mail.addresses import pair_address
    from relay.moderation.held import held_messages
    from relay.rules.settings import DEFAULT_ACTIONS
    from relay.safeguarding.overdue_held import overdue_ids
    from relay.store.states import utcnow

    if rule is not None and rule not in DEFAULT_ACTIONS:
        fail(f"no rule {rule!r}; the rules are: {', '.join(sorted(DEFAULT_ACTIONS))}")
    token = _pair_token(context, pair_filter)
    with context.reader() as reader:
        now = utcnow()
        overdue = overdue_ids(reader, context.config.safeguarding, now)
        waiting = held_messages(reader, token, rule)
    waiting.sort(key=lambda m: m.id not in overdue)  # stable: oldest first within each
    items = [
        {
            "id": m.id,
            "overdue": m.id in overdue,
            "received_at": m.received_at.isoformat(timespec="seconds"),
            "age": format_duration(now - m.received_at),
            "pair": pair_address(m.pair_token, context.domain),
            "sender_role": m.sender_role.value,
            "subject": m.subject,
            "rules": m.rules,
            "reasons": m.reasons,
        }
        for m in waiting
    ]
    if as_json:
        emit_json(items)
        return
    rows = [
        (
            str(i["id"]) + ("!" if i["overdue"] else ""),
            str(i["age"]),
            str(i["pair"]),
            str(i["sender_role"]),
            str(i["subject"]),
            str(i["reasons"]),
        )
        for i in items
    ]
    table(("ID", "AGE", "PAIR", "FROM", "SUBJECT", "REASONS"), rows)
    if any(i["overdue"] for i in items):
        within = format_duration(context.config.safeguarding.decide_within, exact=True)
        click.echo(f"! overdue: held longer than decide_within ({within})")


@click.command("show")
@click.argument("message_id", type=MESSAGE_ID)
@click.option("--color/--no-color", default=None, help="Mark flagged text in reverse video.")
@click.option("--as", "reader", default=None, help="Your name, for the access log.")
@pass_context
def show(context: Context, message_id: int, color: bool | None, reader: str | None) -> None:
    """A message as its recipient would get it, flagged text marked >>>like this<<<."""
    from relay.moderation import decisions as moderation
    from relay.moderation import display
    from relay.safeguarding import access_log
    from relay.store import transcript

    ansi = sys.stdout.isatty() if color is None else color
    with context.session() as session:
        message = moderation.get_message(session, message_id)
        access_log.record(
            session,
            access_log.reader_name(reader),
            "show",
            pair_id=message.pair_id,
            message_id=message.id,
        )
        state = transcript.state_of(session, message)
        click.echo(display.render(session, context.config, message, ansi=ansi, state=state))


def _decide(
    context: Context,
    message_ids: tuple[int, ...],
    verdict: ModerationVerdict,
    moderator: str,
    reason: str = "",
    redact: bool = False,
) -> None:
    from relay.delivery.notices import Notices

    notices = Notices(context.config)
    done = [
        _decide_one(context, notices, message_id, verdict, moderator, reason, redact)
        for message_id in message_ids
    ]
    exit_failed(not all(done))


def _decide_one(
    context: Context,
    notices: Notices,
    message_id: int,
    verdict: ModerationVerdict,
    moderator: str,
    reason: str,
    redact: bool,
) -> bool:
    """Decide one message in its own transaction and say what happened; whether it was done."""
    from relay.moderation import decisions as moderation

    with context.session() as session:
        result = moderation.decide(
            session, context.config, notices, message_id, verdict, moderator, reason, redact
        )
    if result.done:
        click.echo(result.text)
    else:
        report_error(result.text)
    return result.done


@click.command("approve")
@click.argument("message_ids", type=MESSAGE_ID, nargs=-1, required=True)
@click.option("--redact", is_flag=True, help='Replace flagged text by "[removed by moderator]".')
@click.option("--reason", default="", help="A note for the audit trail.")
@moderator_option
@pass_context
def approve(
    context: Context, message_ids: tuple[int, ...], redact: bool, reason: str, moderator: str
) -> None:
    """Let held messages through."""
    _decide(context, message_ids, ModerationVerdict.APPROVE, moderator, reason, redact)


@click.command("reject")
@click.argument("message_ids", type=MESSAGE_ID, nargs=-1, required=True)
@click.option("--reason", required=True, help="Told to the sender.")
@moderator_option
@pass_context
def reject(context: Context, message_ids: tuple[int, ...], reason: str, moderator: str) -> None:
    """Refuse held messages; the sender is told why."""
    _decide(context, message_ids, ModerationVerdict.REJECT, moderator, reason)


@click.command("discard")
@click.argument("message_ids", type=MESSAGE_ID, nargs=-1, required=True)
@click.option("--reason", default="", help="A note for the audit trail (not sent).")
@moderator_option
@pass_context
def discard(context: Context, message_ids: tuple[int, ...], reason: str, moderator: str) -> None:
    """Drop held messages silently."""
    _decide(context, message_ids, ModerationVerdict.DISCARD, moderator, reason)


_REVIEW_KEYS = {
    "a": (ModerationVerdict.APPROVE, False),
    "e": (ModerationVerdict.APPROVE, True),
    "r": (ModerationVerdict.REJECT, False),
    "d": (ModerationVerdict.DISCARD, False),
}


@click.command("review")
@click.option("--pair", "pair_filter", help="Only this pair's messages.")
@moderator_option
@pass_context
def review(context: Context, pair_filter: str | None, moderator: str) -> None:
    """Walk through held messages one at a time."""
    from relay.delivery.notices import Notices
    from relay.moderation import decisions as moderation
    from relay.moderation import display
    from relay.moderation.held import held_messages
    from relay.safeguarding import access_log

    token = _pair_token(context, pair_filter)
    with context.reader() as reader:
        waiting = [m.id for m in held_messages(reader, token)]
    if not waiting:
        click.echo("nothing is held")
        return
    notices = Notices(context.config)
    for position, message_id in enumerate(waiting, start=1):
        with context.session() as session:
            message = moderation.get_message(session, message_id)
            access_log.record(
                session, moderator, "review", pair_id=message.pair_id, message_id=message.id
            )
            click.echo(f"\n=== {position} of {len(waiting)} ===")
            click.echo(display.render(session, context.config, message, ansi=sys.stdout.isatty()))
        key = click.prompt(
            "[a]pprove, [r]eject, [d]iscard, [e]dit-redact and approve, [s]kip, [q]uit",
            type=click.Choice(["a", "r", "d", "e", "s", "q"]),
            show_choices=False,
        )
        if key == "q":
            break
        if key == "s":
            continue
        verdict, redact = _REVIEW_KEYS[key]
        reason = ""
        if verdict is ModerationVerdict.REJECT:
            reason = click.prompt("Reason (told to the sender)")
        _decide_one(context, notices, message_id, verdict, moderator, reason, redact)


@click.command("audit")
@click.option("--message", "message_id", type=MESSAGE_ID, help="Only actions on this message.")
@click.option("--reads", is_flag=True, help="The access log instead: who read what, when.")
@click.option("--pair", "pair_filter", help="With --reads: only readings of this pair.")
@json_option
@pass_context
def audit(
    context: Context, message_id: int | None, reads: bool, pair_filter: str | None, as_json: bool
) -> None:
    """Every moderator action: who, what, when, why (--reads: every reading of content)."""
    from relay.moderation import decisions as moderation

    if reads:
        _audit_reads(context, pair_filter, as_json)
        return
    if pair_filter:
        raise click.UsageError("--pair goes with --reads")
    with context.session() as session:
        items = [
            {
                "time": action.created_at.isoformat(timespec="seconds"),
                "moderator": action.moderator,
                "action": action.verdict.value + (" (redacted)" if action.redacted else ""),
                "message": action.message_id,
                "reason": action.reason,
            }
            for action in moderation.audit_trail(session, message_id)
        ]
    if as_json:
        emit_json(items)
        return
    rows = [
        (str(i["time"]), str(i["moderator"]), str(i["action"]), str(i["message"]), str(i["reason"]))
        for i in items
    ]
    table(("TIME (UTC)", "MODERATOR", "ACTION", "MESSAGE", "REASON"), rows)


def _audit_reads(context: Context, pair_filter: str | None, as_json: bool) -> None:
    from relay.safeguarding import access_log
    from relay.store import registry

    with context.session() as session:
        pair_id = None
        if pair_filter:
            pair_id = registry.find_pair(session, pair_filter, context.domain).id
        items = access_log.readings(session, context.domain, pair_id)
    if as_json:
        emit_json(items)
        return
    rows = [
        (
            str(i["time"]),
            str(i["reader"]),
            str(i["command"]),
            str(i["pair"] or "-"),
            str(i["message"] or "-"),
            f"concern {i['concern']}" if i["concern"] else str(i["detail"]),
        )
        for i in items
    ]
    table(("TIME (UTC)", "READER", "COMMAND", "PAIR", "MESSAGE", "WHAT"), rows)


@click.command("watch")
@click.argument("who", required=False)
@click.option("--off", is_flag=True, help="Stop watching.")
@json_option
@pass_context
def watch(context: Context, who: str | None, off: bool, as_json: bool) -> None:
    """Hold all mail of a participant (EMAIL) or a pair (pair ADDRESS); alone, list them."""
    from relay.mail.addresses import pair_address, token_of
    from relay.store import registry

    if who is None:
        if off:
            raise click.UsageError("--off needs the EMAIL or ADDRESS to stop watching")
        _list_watched(context, as_json)
        return
    with context.session() as session:
        if token_of(who, context.domain):
            target = registry.find_pair(session, who, context.domain)
            name = pair_address(target.token, context.domain)
            target.watched = not off
        else:
            person = registry.find_participant(session, who)
            name = person.email
            person.watched = not off
    if as_json:
        kind = "pair" if token_of(name, context.domain) else "participant"
        emit_json({"who": name, "kind": kind, "watched": not off})
        return
    click.echo(f"{'stopped watching' if off else 'watching'} {name}")


def _list_watched(context: Context, as_json: bool) -> None:
    from relay.mail.addresses import pair_address
    from relay.store import registry

    with context.session() as session:
        people = [
            {"email": p.email, "name": p.display_name, "role": p.role.value}
            for p in registry.list_participants(session)
            if p.watched
        ]
        pairs = [
            {
                "address": pair_address(p.token, context.domain),
                "mentor": p.mentor.display_name,
                "mentee": p.mentee.display_name,
                "state": p.status.value,
            }
            for p in registry.list_pairs(session)
            if p.watched
        ]
    if as_json:
        emit_json({"participants": people, "pairs": pairs})
        return
    rows = [("participant", p["email"], f"{p['name']} ({p['role']})") for p in people]
    rows += [
        ("pair", p["address"], f"{p['mentor']} and {p['mentee']}, {p['state']}") for p in pairs
    ]
    table(("WATCHED", "WHO", "NAME"), rows)
