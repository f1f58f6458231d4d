"""`relay participant` and `relay pair`: who writes to whom.

The participant commands that change someone after they were added (edit,
address, remove, show) are in relay.commands.participants; `pair show` is
in relay.commands.pairs; `relay log` in relay.commands.transcripts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from relay.commands.context import (
    Context,
    emit_json,
    json_option,
    moderator_option,
    pass_context,
    table,
)
from relay.programme.limits import END_REASONS
from relay.store.states import Role

if TYPE_CHECKING:
    from relay.store.models import Pair, Participant


@click.group("participant")
def participant_group() -> None:
    """Mentors and mentees."""


@participant_group.command("add")
@click.argument("email")
@click.option("--name", required=True, help="Display name shown to the partner.")
@click.option("--role", type=click.Choice([role.value for role in Role]), required=True)
@click.option("--also", multiple=True, help="Another address this person writes from.")
@click.option("--time-zone", default="", help="IANA time zone, e.g. Europe/London.")
@click.option("--minor", is_flag=True, help="A mentee under 18: pairs need recorded consent.")
@click.option("--guardian", default=None, help="The minor's guardian's address.")
@click.option("--checked-until", default=None, help="A mentor's background check expiry.")
@pass_context
def participant_add(
    context: Context,
    email: str,
    name: str,
    role: str,
    also: tuple[str, ...],
    time_zone: str,
    minor: bool,
    guardian: str | None,
    checked_until: str | None,
) -> None:
    """Register a participant."""
    from relay.safeguarding import consent_checks
    from relay.store import registry

    expiry = consent_checks.parse_date(checked_until, "--checked-until") if checked_until else None
    with context.session() as session:
        participant = registry.add_participant(
            session, email, name, Role(role), also, relay_domain=context.domain, time_zone=time_zone
        )
        consent_checks.set_profile(
            participant,
            minor=minor,
            guardian=registry.valid_address(guardian) if guardian else None,
            checked_until=expiry,
        )
        click.echo(f"added {participant.role} {participant.display_name} <{participant.email}>")


def participant_json(participant: Participant, pairs: int) -> dict[str, Any]:
    return {
        "email": participant.email,
        "name": participant.display_name,
        "role": participant.role.value,
        "addresses": [each.email for each in participant.addresses],
        "time_zone": participant.time_zone or None,
        "watched": participant.watched,
        "pair_count": pairs,
        "created_at": participant.created_at.isoformat(timespec="seconds"),
    }


@participant_group.command("list")
@json_option
@pass_context
def participant_list(context: Context, as_json: bool) -> None:
    """List participants."""
    from relay.store import registry

    with context.session() as session:
        counts = registry.pair_counts(session)
        items = [
            participant_json(p, counts.get(p.id, 0)) for p in registry.list_participants(session)
        ]
    if as_json:
        emit_json(items)
        return
    rows = [(i["role"], i["name"], ", ".join(i["addresses"]), str(i["pair_count"])) for i in items]
    table(("ROLE", "NAME", "ADDRESSES", "PAIRS"), rows)


# -- pairs ------------------------------------------------------------------


@click.group("pair")
def pair_group() -> None:
    """Mentor-mentee pairs and their addresses."""


@pair_group.command("create")
@click.option("--mentor", "mentor_email", required=True)
@click.option("--mentee", "mentee_email", required=True)
@click.option("--cohort", default=None, help="Put the pair in this cohort.")
@pass_context
def pair_create(context: Context, mentor_email: str, mentee_email: str, cohort: str | None) -> None:
    """Pair a mentor with a mentee, print the pair address, send introductions."""
    from relay.delivery.notices import Notices
    from relay.programme import cohorts
    from relay.store import registry
    from relay.store.states import utcnow

    notices = Notices(context.config)
    with context.session() as session:
        created = registry.create_pair(session, notices, context.domain, mentor_email, mentee_email)
        if cohort is not None:
            found = cohorts.find_cohort(session, cohort)
            cohorts.join(created.pair, found, utcnow().date(), None, context.domain)
    click.echo(created.address)


def pair_json(pair: Pair, domain: str) -> dict[str, Any]:
    from relay.mail.addresses import pair_address

    return {
        "address": pair_address(pair.token, domain),
        "state": pair.status.value,
        "mentor": {"name": pair.mentor.display_name, "email": pair.mentor.email},
        "mentee": {"name": pair.mentee.display_name, "email": pair.mentee.email},
        "watched": pair.watched,
        "created_at": pair.created_at.isoformat(timespec="seconds"),
        "ended_at": pair.ended_at.isoformat(timespec="seconds") if pair.ended_at else None,
    }


@pair_group.command("list")
@click.option("--active", is_flag=True, help="Only pairs that are still active.")
@json_option
@pass_context
def pair_list(context: Context, active: bool, as_json: bool) -> None:
    """List pairs."""
    from relay.store import registry

    with context.session() as session:
        items = [
            pair_json(p, context.domain)
            for p in registry.list_pairs(session, include_ended=not active)
        ]
    if as_json:
        emit_json(items)
        return
    rows = [
        (i["address"], i["state"], i["mentor"]["name"], i["mentee"]["name"], i["created_at"][:10])
        for i in items
    ]
    table(("ADDRESS", "STATE", "MENTOR", "MENTEE", "CREATED"), rows)


@pair_group.command("end")
@click.argument("address")
@click.option("--reason", type=click.Choice(END_REASONS), required=True)
@moderator_option
@pass_context
def pair_end(context: Context, address: str, reason: str, moderator: str) -> None:
    """End a pair: closing notice and exit check-in to both; the address refuses mail."""
    from relay.delivery.bounces import load_bounce_addresses
    from relay.delivery.notices import Notices
    from relay.mail.addresses import pair_address
    from relay.programme import ending
    from relay.store import registry
    from relay.store.states import utcnow

    config = context.config
    checkin_addresses = load_bounce_addresses(context.store, context.domain).checkin_addresses()
    with context.session() as session:
        pair = registry.find_pair(session, address, context.domain)
        ending.end(
            session, config, Notices(config), checkin_addresses, pair, reason, moderator, utcnow()
        )
        click.echo(f"ended {pair_address(pair.token, context.domain)} ({reason}, by {moderator})")


@pair_group.command("pause")
@click.argument("address")
@pass_context
def pair_pause(context: Context, address: str) -> None:
    """Pause a pair: everything either side writes is held for a moderator."""
    from relay.mail.addresses import pair_address
    from relay.store import registry

    with context.session() as session:
        pair = registry.pause_pair(session, address, context.domain)
        click.echo(f"paused {pair_address(pair.token, context.domain)}")


@pair_group.command("resume")
@click.argument("address")
@pass_context
def pair_resume(context: Context, address: str) -> None:
    """Resume a paused pair; mail held while it was paused stays held."""
    from relay.mail.addresses import pair_address
    from relay.store import registry

    with context.session() as session:
        pair = registry.resume_pair(session, address, context.domain)
        click.echo(f"resumed {pair_address(pair.token, context.domain)}")
