"""`relay participant`, `relay pair`, `relay log` and `relay watch`: who writes to whom."""

from __future__ import annotations

import click

from relay.commands.context import Context, pass_context, printable, table
from relay.store.states import Role


@click.group("participant")
def participant_group() -> None:
    """Mentors and mentees."""


@participant_group.command("add")
@click.argument("email")
@click.option("--name", required=True, help="Display name shown to the partner.")
@click.option("--role", type=click.Choice([role.value for role in Role]), required=True)
@click.option("--also", multiple=True, help="Another address this person writes from.")
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
    minor: bool,
    guardian: str | None,
    checked_until: str | None,
) -> None:
    """Register a participant."""
    from relay.safeguarding import consent_checks
    from relay.store import registry

    expiry = consent_checks.parse_date(checked_until, "--checked-until") if checked_until else None
    with context.session() as session:
        participant = registry.add_participant(session, email, name, Role(role), also)
        consent_checks.set_profile(
            participant,
            minor=minor,
            guardian=registry.valid_address(guardian) if guardian else None,
            checked_until=expiry,
        )
        click.echo(f"added {participant.role} {participant.display_name} <{participant.email}>")


@participant_group.command("list")
@pass_context
def participant_list(context: Context) -> None:
    """List participants."""
    from relay.store import registry

    with context.session() as session:
        rows = [
            (p.role.value, p.display_name, ", ".join(a.email for a in p.addresses))
            for p in registry.list_participants(session)
        ]
    table(("ROLE", "NAME", "ADDRESSES"), rows)


# -- pairs ------------------------------------------------------------------


@click.group("pair")
def pair_group() -> None:
    """Mentor-mentee pairs and their addresses."""


@pair_group.command("create")
@click.option("--mentor", "mentor_email", required=True)
@click.option("--mentee", "mentee_email", required=True)
@pass_context
def pair_create(context: Context, mentor_email: str, mentee_email: str) -> None:
    """Pair a mentor with a mentee, print the pair address, send introductions."""
    from relay.delivery.notices import Notices
    from relay.store import registry

    notices = Notices(context.config)
    with context.session() as session:
        created = registry.create_pair(session, notices, context.domain, mentor_email, mentee_email)
    click.echo(created.address)


@pair_group.command("list")
@click.option("--active", is_flag=True, help="Only pairs that are still active.")
@pass_context
def pair_list(context: Context, active: bool) -> None:
    """List pairs."""
    from relay.mail.addresses import pair_address
    from relay.store import registry

    with context.session() as session:
        rows = [
            (
                pair_address(p.token, context.domain),
                p.status.value,
                p.mentor.display_name,
                p.mentee.display_name,
                p.created_at.strftime("%Y-%m-%d"),
            )
            for p in registry.list_pairs(session, include_ended=not active)
        ]
    table(("ADDRESS", "STATUS", "MENTOR", "MENTEE", "CREATED"), rows)


@pair_group.command("end")
@click.argument("address")
@pass_context
def pair_end(context: Context, address: str) -> None:
    """End a pair: its address refuses mail from now on."""
    from relay.mail.addresses import pair_address
    from relay.store import registry

    with context.session() as session:
        pair = registry.end_pair(session, address, context.domain)
        click.echo(f"ended {pair_address(pair.token, context.domain)}")


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


# -- transcript -------------------------------------------------------------


@click.command("log")
@click.argument("address")
@click.option("--show", "show_id", type=int, help="Print message ID as it was received.")
@click.option("--as", "reader", default=None, help="Your name, for the access log.")
@pass_context
def log_command(context: Context, address: str, show_id: int | None, reader: str | None) -> None:
    """A pair's transcript, oldest first (the reading is logged)."""
    from relay.safeguarding import access_log
    from relay.store import registry, transcript

    who = access_log.reader_name(reader)
    with context.session() as session:
        pair = registry.find_pair(session, address, context.domain)
        if show_id is not None:
            raw = transcript.message_in_pair(session, pair, show_id).raw
            access_log.record(session, who, "log --show", pair_id=pair.id, message_id=show_id)
            click.echo(printable(raw))
            return
        access_log.record(session, who, "log", pair_id=pair.id, detail="transcript")
        rows = [
            (
                str(line.message_id),
                line.received_at.strftime("%Y-%m-%d %H:%M"),
                line.sender_role,
                line.subject,
                line.status,
            )
            for line in transcript.transcript(session, pair)
        ]
    table(("ID", "TIME (UTC)", "FROM", "SUBJECT", "STATUS"), rows)
