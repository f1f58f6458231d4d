"""`relay cohort`, `relay tick`, `relay schedule`, `relay checkins`, `relay focus`, `pair renew`.

Only click and light modules at the top (`relay --help` loads no database or
template library); each command imports what it needs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import click

from relay.commands.context import Context, emit_json, pass_context, table
from relay.errors import ConflictError
from relay.programme.limits import MAX_WEEKS
from relay.store.states import utcnow


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConflictError(f"not a date (YYYY-MM-DD): {text!r}") from None


def parse_moment(text: str | None) -> datetime:
    if text is None:
        return utcnow()
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    except ValueError:
        raise ConflictError(f'not a time ("YYYY-MM-DD HH:MM", UTC): {text!r}') from None


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


@click.group("cohort")
def cohort_group() -> None:
    """Cohorts: pairs that run one curriculum for a number of weeks."""


@cohort_group.command("create")
@click.argument("name")
@click.option("--start", required=True, help="The first day of week 1, YYYY-MM-DD.")
@click.option("--weeks", type=click.IntRange(1, MAX_WEEKS), default=34, show_default=True)
@click.option(
    "--curriculum",
    type=click.Path(file_okay=False),
    default="",
    help="A curriculum folder (default: [programme] curriculum, else the shipped one).",
)
@pass_context
def cohort_create(context: Context, name: str, start: str, weeks: int, curriculum: str) -> None:
    """Create a cohort (its curriculum is checked first)."""
    from relay.programme import cohorts

    with context.session() as session:
        cohort = cohorts.create_cohort(
            session, context.config, name, parse_day(start), weeks, curriculum
        )
        click.echo(f"created cohort {cohort.name}: {weeks} weeks from {cohort.start_on}")


@cohort_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def cohort_list(context: Context, as_json: bool) -> None:
    """List cohorts with their pairs by state."""
    from relay.programme import cohorts

    with context.session() as session:
        found = cohorts.summaries(session, utcnow().date())
    if as_json:
        emit_json([each.to_json() for each in found])
        return
    rows = [
        (
            each.cohort.name,
            each.cohort.start_on.isoformat(),
            str(each.cohort.weeks),
            str(each.current_week) if 1 <= each.current_week <= each.cohort.weeks else "-",
            " ".join(f"{status}={count}" for status, count in sorted(each.pairs.items())),
        )
        for each in found
    ]
    table(("COHORT", "START", "WEEKS", "WEEK NOW", "PAIRS"), rows)


@cohort_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def cohort_show(context: Context, name: str, as_json: bool) -> None:
    """A cohort and its pairs."""
    from relay.mail.addresses import pair_address
    from relay.programme import cohorts

    today = utcnow().date()
    with context.session() as session:
        cohort = cohorts.find_cohort(session, name)
        summary = next(s for s in cohorts.summaries(session, today) if s.cohort.id == cohort.id)
        pairs = [
            {
                "pair": pair_address(pair.token, context.domain),
                "status": pair.status.value,
                "mentor": pair.mentor.display_name,
                "mentee": pair.mentee.display_name,
                "started_on": pair.started_on.isoformat() if pair.started_on else None,
                "weeks": pair.weeks,
                "ended_reason": pair.ended_reason,
                "ended_by": pair.ended_by,
                "next_item_at": pair.next_item_at.isoformat() if pair.next_item_at else None,
            }
            for pair in cohorts.pairs_of(session, cohort)
        ]
    if as_json:
        emit_json(summary.to_json() | {"pair_list": pairs})
        return
    shown = summary.to_json()
    if not 1 <= summary.current_week <= cohort.weeks:
        shown["current_week"] = "-"
    for key in ("name", "start", "weeks", "curriculum", "current_week"):
        click.echo(f"{key}: {shown[key]}")
    rows = [
        (
            str(p["pair"]),
            str(p["status"]) + (f" ({p['ended_reason']})" if p["ended_reason"] else ""),
            str(p["mentor"]),
            str(p["mentee"]),
            str(p["started_on"]),
        )
        for p in pairs
    ]
    table(("PAIR", "STATUS", "MENTOR", "MENTEE", "WEEK 1"), rows)


@cohort_group.command("add")
@click.argument("name")
@click.argument("addresses", nargs=-1, required=True)
@click.option(
    "--start",
    default=None,
    help="The pairs' own week 1 (default: today, or the cohort's start if that is later).",
)
@pass_context
def cohort_add(context: Context, name: str, addresses: tuple[str, ...], start: str | None) -> None:
    """Put pairs in a cohort; each runs the curriculum from its own week 1."""
    from relay.mail.addresses import pair_address
    from relay.programme import cohorts
    from relay.store import registry

    given = parse_day(start) if start else None
    with context.session() as session:
        cohort = cohorts.find_cohort(session, name)
        for address in addresses:
            pair = registry.find_pair(session, address, context.domain)
            cohorts.join(pair, cohort, utcnow().date(), given, context.domain)
            click.echo(
                f"{pair_address(pair.token, context.domain)} joins {cohort.name}, "
                f"week 1 from {pair.started_on}"
            )


@click.command("renew")
@click.argument("address")
@click.option("--weeks", type=click.IntRange(1, MAX_WEEKS), required=True)
@pass_context
def pair_renew(context: Context, address: str, weeks: int) -> None:
    """Continue a pair (completed or running) for more weeks, with the same address."""
    from relay.mail.addresses import pair_address
    from relay.programme import ending
    from relay.store import registry

    with context.session() as session:
        pair = registry.find_pair(session, address, context.domain)
        ending.renew(pair, weeks, utcnow(), context.domain)
        click.echo(
            f"renewed {pair_address(pair.token, context.domain)}: {pair.weeks} weeks "
            f"from {pair.started_on}"
        )


@click.command("tick")
@click.option("--at", "at", default=None, help='Run as of "YYYY-MM-DD HH:MM" (UTC).')
@pass_context
def tick_command(context: Context, at: str | None) -> None:
    """Run the programme scheduler once: queue what is due, send nudges."""
    from relay.delivery.notices import Notices
    from relay.programme.scheduler import make_scheduler

    now = parse_moment(at)
    scheduler = make_scheduler(context.store, context.config, Notices(context.config), True)
    report = scheduler.tick(now)
    click.echo(f"tick at {_when(now)}: {report}")


@click.command("schedule")
@click.option("--cohort", default=None)
@click.option("--due", is_flag=True, help="Only what is due and not yet sent.")
@click.option("--at", "at", default=None, help='As of "YYYY-MM-DD HH:MM" (UTC).')
@click.option("--json", "as_json", is_flag=True)
@pass_context
def schedule_command(
    context: Context, cohort: str | None, due: bool, at: str | None, as_json: bool
) -> None:
    """What the programme will send when, and what it sent."""
    from relay.programme import cohorts, listing
    from relay.programme.curricula import Curricula

    now = parse_moment(at)
    with context.session() as session:
        if cohort is not None:
            cohorts.find_cohort(session, cohort)
        lines = listing.schedule(session, context.config, Curricula(), now, cohort, due)
    if as_json:
        emit_json([line.to_json() for line in lines])
        return
    rows = [
        (
            _when(line.due_at),
            line.pair,
            line.to,
            str(line.week),
            line.kind,
            line.item,
            line.status + (f" {_when(line.done_at)}" if line.done_at else ""),
        )
        for line in lines
    ]
    table(("DUE (UTC)", "PAIR", "TO", "WEEK", "KIND", "ITEM", "STATUS"), rows)


@click.command("checkins")
@click.option("--cohort", default=None)
@click.option("--low", is_flag=True, help="Only scores of 1-2 and flagged comments.")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def checkins_command(context: Context, cohort: str | None, low: bool, as_json: bool) -> None:
    """Check-ins sent and their answers."""
    from relay.programme import cohorts, listing

    with context.session() as session:
        if cohort is not None:
            cohorts.find_cohort(session, cohort)
        lines = listing.checkins(session, context.config, cohort, low)
    if as_json:
        emit_json([line.to_json() for line in lines])
        return
    rows = [
        (
            line.pair,
            line.role,
            line.name,
            str(line.week),
            _when(line.sent_at),
            line.shown_score + (" flagged" if line.flagged else ""),
            " ".join(line.comment.split())[:60],
        )
        for line in lines
    ]
    table(("PAIR", "ROLE", "NAME", "WEEK", "SENT (UTC)", "SCORE", "COMMENT"), rows)


@click.command("focus")
@click.option("--cohort", default=None)
@click.option("--at", "at", default=None, help='As of "YYYY-MM-DD HH:MM" (UTC).')
@click.option("--json", "as_json", is_flag=True)
@pass_context
def focus_command(context: Context, cohort: str | None, at: str | None, as_json: bool) -> None:
    """The pairs that need a coordinator now, most urgent first."""
    from relay.programme import cohorts, focus

    now = parse_moment(at)
    with context.session() as session:
        if cohort is not None:
            cohorts.find_cohort(session, cohort)
        found = focus.focus_list(session, context.config, now, cohort)
    if as_json:
        emit_json([pair.to_json() for pair in found])
        return
    rows = [
        (pair.address, pair.cohort, reason.what, reason.since.strftime("%Y-%m-%d"), reason.detail)
        for pair in found
        for reason in pair.reasons
    ]
    table(("PAIR", "COHORT", "REASON", "SINCE", "DETAIL"), rows)


@click.command("reminders")
@click.argument("email")
@click.argument("state", type=click.Choice(["on", "off"]))
@pass_context
def participant_reminders(context: Context, email: str, state: str) -> None:
    """Switch a participant's prompts and nudges on or off (List-Unsubscribe sets off)."""
    from relay.store import registry

    with context.session() as session:
        participant = registry.find_participant(session, email)
        participant.reminders_off = state == "off"
        click.echo(f"reminders {state} for {participant.display_name} <{participant.email}>")
