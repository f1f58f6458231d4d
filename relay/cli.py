"""The `relay` command line: a thin click layer over the modules below.

Each command parses its arguments, calls one function, and prints. Errors
the relay raises on purpose (RelayError) become "Error: ..." and exit
status 1; a bad argument is click's usage error (exit status 2).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any

import click
from sqlalchemy.orm import Session

import matching
from relay import db, display, matchmaking, moderation, registry, service, transcript
from relay.addresses import pair_address, token_of
from relay.config import Config, describe, load_config
from relay.errors import RelayError
from relay.models import ModerationVerdict, Role
from relay.notices import Notices


@dataclass
class Context:
    config_path: str | None
    _config: Config | None = field(default=None)
    _store: db.Store | None = field(default=None)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def store(self) -> db.Store:
        if self._store is None:
            self._store = db.open_store(self.config.database.url)
        return self._store

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.store.session() as session:
            yield session

    @property
    def domain(self) -> str:
        return self.config.relay.domain

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()


class RelayGroup(click.Group):
    """Turns the relay's own errors into a clear message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RelayError as error:
            raise click.ClickException(str(error)) from None


pass_context = click.make_pass_decorator(Context)
PROGRESS_BAR_FROM = 2000  # mentees; smaller cohorts finish before a bar would help


@click.group(cls=RelayGroup)
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="RELAY_CONFIG",
    help="The relay.toml to use (default: $RELAY_CONFIG, then ./relay.toml).",
)
@click.version_option(package_name="mentor-relay")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """mentor-relay: pseudonymous, moderated email for mentoring programmes."""
    context = Context(config_path)
    ctx.obj = context
    ctx.call_on_close(context.close)


@cli.command("check-config")
@pass_context
def check_config(context: Context) -> None:
    """Print the effective settings (secrets masked)."""
    click.echo(describe(context.config))


# -- database ---------------------------------------------------------------


@cli.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_context
def db_upgrade(context: Context, revision: str) -> None:
    """Bring the database schema up to date (creating it if needed)."""
    store = db.Store(context.config.database.url)
    try:
        db.upgrade(store, revision)
        click.echo(f"database at revision {db.current_revision(store)}")
    finally:
        store.dispose()


@db_group.command("current")
@pass_context
def db_current(context: Context) -> None:
    """Show the schema revision of the database and of this relay."""
    store = db.Store(context.config.database.url)
    try:
        click.echo(f"database: {db.current_revision(store) or 'empty'}")
        click.echo(f"relay:    {db.head_revision(store)}")
    finally:
        store.dispose()


# -- participants -----------------------------------------------------------


@cli.group("participant")
def participant_group() -> None:
    """Mentors and mentees."""


@participant_group.command("add")
@click.argument("email")
@click.option("--name", required=True, help="Display name shown to the partner.")
@click.option("--role", type=click.Choice([role.value for role in Role]), required=True)
@click.option("--also", multiple=True, help="Another address this person writes from.")
@pass_context
def participant_add(
    context: Context, email: str, name: str, role: str, also: tuple[str, ...]
) -> None:
    """Register a participant."""
    with context.session() as session:
        participant = registry.add_participant(session, email, name, Role(role), also)
        click.echo(f"added {participant.role} {participant.display_name} <{participant.email}>")


@participant_group.command("list")
@pass_context
def participant_list(context: Context) -> None:
    """List participants."""
    with context.session() as session:
        rows = [
            (p.role.value, p.display_name, ", ".join(a.email for a in p.addresses))
            for p in registry.list_participants(session)
        ]
    _table(("ROLE", "NAME", "ADDRESSES"), rows)


# -- pairs ------------------------------------------------------------------


@cli.group("pair")
def pair_group() -> None:
    """Mentor-mentee pairs and their addresses."""


@pair_group.command("create")
@click.option("--mentor", "mentor_email", required=True)
@click.option("--mentee", "mentee_email", required=True)
@pass_context
def pair_create(context: Context, mentor_email: str, mentee_email: str) -> None:
    """Pair a mentor with a mentee, print the pair address, send introductions."""
    notices = Notices(context.config)
    with context.session() as session:
        created = registry.create_pair(session, notices, context.domain, mentor_email, mentee_email)
    click.echo(created.address)


@pair_group.command("list")
@click.option("--active", is_flag=True, help="Only pairs that are still active.")
@pass_context
def pair_list(context: Context, active: bool) -> None:
    """List pairs."""
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
    _table(("ADDRESS", "STATUS", "MENTOR", "MENTEE", "CREATED"), rows)


@pair_group.command("end")
@click.argument("address")
@pass_context
def pair_end(context: Context, address: str) -> None:
    """End a pair: its address refuses mail from now on."""
    with context.session() as session:
        pair = registry.end_pair(session, address, context.domain)
        click.echo(f"ended {pair_address(pair.token, context.domain)}")


# -- transcript -------------------------------------------------------------


@cli.command("log")
@click.argument("address")
@click.option("--show", "show_id", type=int, help="Print message ID as it was received.")
@pass_context
def log_command(context: Context, address: str, show_id: int | None) -> None:
    """A pair's transcript, oldest first."""
    with context.session() as session:
        pair = registry.find_pair(session, address, context.domain)
        if show_id is not None:
            raw = transcript.message_in_pair(session, pair, show_id).raw
            click.echo(_printable(raw))
            return
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
    _table(("ID", "TIME (UTC)", "FROM", "SUBJECT", "STATUS"), rows)


# -- moderation -------------------------------------------------------------


def _moderator_option(function: Any) -> Any:
    return click.option(
        "--as",
        "moderator",
        default=getpass.getuser,
        show_default="your login name",
        help="The moderator's name, for the audit trail.",
    )(function)


def _pair_token(context: Context, address: str | None) -> str | None:
    if address is None:
        return None
    with context.session() as session:
        return registry.find_pair(session, address, context.domain).token


@cli.command("held")
@click.option("--pair", "pair_filter", help="Only this pair's messages.")
@click.option("--rule", help="Only messages this rule flagged (e.g. contact, links).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_context
def held(context: Context, pair_filter: str | None, rule: str | None, as_json: bool) -> None:
    """What waits for a moderator, oldest first."""
    token = _pair_token(context, pair_filter)
    with context.session() as session:
        items = [
            {
                "id": m.id,
                "received_at": m.received_at.isoformat(),
                "age": moderation.age(m.received_at),
                "pair": pair_address(m.pair.token, context.domain),
                "sender_role": m.sender.role.value,
                "subject": m.subject,
                "rules": sorted({hit.rule for hit in moderation.hits_of(m)}),
                "reasons": moderation.reasons_of(m),
            }
            for m in moderation.held_messages(session, token, rule)
        ]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    rows = [
        (
            str(i["id"]),
            str(i["age"]),
            str(i["pair"]),
            str(i["sender_role"]),
            str(i["subject"]),
            str(i["reasons"]),
        )
        for i in items
    ]
    _table(("ID", "AGE", "PAIR", "FROM", "SUBJECT", "REASONS"), rows)


@cli.command("show")
@click.argument("message_id", type=int)
@click.option("--color/--no-color", default=None, help="Mark flagged text in reverse video.")
@pass_context
def show(context: Context, message_id: int, color: bool | None) -> None:
    """A message as its recipient would get it, flagged text marked >>>like this<<<."""
    ansi = sys.stdout.isatty() if color is None else color
    with context.session() as session:
        message = moderation.get_message(session, message_id)
        click.echo(display.render(session, context.config, message, ansi=ansi))


def _decide(
    context: Context,
    message_ids: tuple[int, ...],
    verdict: ModerationVerdict,
    moderator: str,
    reason: str = "",
    redact: bool = False,
) -> None:
    notices = Notices(context.config)
    failed = False
    for message_id in message_ids:
        with context.session() as session:
            result = moderation.decide(
                session, context.config, notices, message_id, verdict, moderator, reason, redact
            )
        click.echo(result.text)
        failed = failed or not result.done
    if failed:
        sys.exit(1)


@cli.command("approve")
@click.argument("message_ids", type=int, nargs=-1, required=True)
@click.option("--redact", is_flag=True, help='Replace flagged text by "[removed by moderator]".')
@click.option("--reason", default="", help="A note for the audit trail.")
@_moderator_option
@pass_context
def approve(
    context: Context, message_ids: tuple[int, ...], redact: bool, reason: str, moderator: str
) -> None:
    """Let held messages through."""
    _decide(context, message_ids, ModerationVerdict.APPROVE, moderator, reason, redact)


@cli.command("reject")
@click.argument("message_ids", type=int, nargs=-1, required=True)
@click.option("--reason", required=True, help="Told to the sender.")
@_moderator_option
@pass_context
def reject(context: Context, message_ids: tuple[int, ...], reason: str, moderator: str) -> None:
    """Refuse held messages; the sender is told why."""
    _decide(context, message_ids, ModerationVerdict.REJECT, moderator, reason)


@cli.command("discard")
@click.argument("message_ids", type=int, nargs=-1, required=True)
@click.option("--reason", default="", help="A note for the audit trail (not sent).")
@_moderator_option
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


@cli.command("review")
@click.option("--pair", "pair_filter", help="Only this pair's messages.")
@_moderator_option
@pass_context
def review(context: Context, pair_filter: str | None, moderator: str) -> None:
    """Walk through held messages one at a time."""
    token = _pair_token(context, pair_filter)
    with context.session() as session:
        waiting = [m.id for m in moderation.held_messages(session, token)]
    if not waiting:
        click.echo("nothing is held")
        return
    notices = Notices(context.config)
    for position, message_id in enumerate(waiting, start=1):
        with context.session() as session:
            message = moderation.get_message(session, message_id)
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
        with context.session() as session:
            result = moderation.decide(
                session, context.config, notices, message_id, verdict, moderator, reason, redact
            )
        click.echo(result.text)


@cli.command("audit")
@click.option("--message", "message_id", type=int, help="Only actions on this message.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_context
def audit(context: Context, message_id: int | None, as_json: bool) -> None:
    """Every moderator action: who, what, when, why."""
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
        click.echo(json.dumps(items, indent=2))
        return
    rows = [
        (str(i["time"]), str(i["moderator"]), str(i["action"]), str(i["message"]), str(i["reason"]))
        for i in items
    ]
    _table(("TIME (UTC)", "MODERATOR", "ACTION", "MESSAGE", "REASON"), rows)


@cli.command("watch")
@click.argument("who")
@click.option("--off", is_flag=True, help="Stop watching.")
@pass_context
def watch(context: Context, who: str, off: bool) -> None:
    """Hold all mail of a participant (EMAIL) or a pair (pair ADDRESS)."""
    with context.session() as session:
        if token_of(who, context.domain):
            target = registry.find_pair(session, who, context.domain)
            name = pair_address(target.token, context.domain)
            target.watched = not off
        else:
            person = registry.find_participant(session, who)
            name = person.email
            person.watched = not off
    click.echo(f"{'stopped watching' if off else 'watching'} {name}")


# -- matching ---------------------------------------------------------------


@cli.group("match", invoke_without_command=True)
@click.option("--mentors", type=click.Path(exists=True, dir_okay=False), help="mentors.csv")
@click.option("--mentees", type=click.Path(exists=True, dir_okay=False), help="mentees.csv")
@click.option(
    "--method", type=click.Choice(["optimal", "stable"]), default="optimal", show_default=True
)
@click.option("--out", type=click.Path(dir_okay=False), default="proposals.csv", show_default=True)
@click.pass_context
def match(
    ctx: click.Context, mentors: str | None, mentees: str | None, method: str, out: str
) -> None:
    """Propose a mentor for every mentee; `relay match apply FILE` makes the pairs."""
    if ctx.invoked_subcommand is not None:
        return
    if not mentors or not mentees:
        raise click.UsageError("--mentors and --mentees are required")
    context: Context = ctx.obj
    settings = context.config.matching
    with context.session() as session:
        exclude = matchmaking.existing_pairs(session)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", matching.UnknownColumnWarning)
            mentor_list = matching.load_mentors(mentors)
            mentee_list = matching.load_mentees(mentees)
        for warning in caught:
            click.echo(f"warning: {warning.message}", err=True)
        with click.progressbar(
            length=len(mentee_list),
            label="scoring",
            file=sys.stderr,
            hidden=len(mentee_list) < PROGRESS_BAR_FROM,
        ) as bar:
            done = 0

            def progress(scored: int, total: int) -> None:
                nonlocal done
                bar.update(scored - done)
                done = scored

            result = matching.match(
                mentor_list,
                mentee_list,
                settings,
                method="stable" if method == "stable" else "optimal",
                exclude=exclude,
                progress=progress,
            )
        matching.write_proposals(out, result)
    except (matching.ProfileError, OSError) as error:
        raise click.ClickException(str(error)) from None
    summary = result.summary
    click.echo(
        f"{summary.matched} matched, {summary.unmatched} unmatched, "
        f"mean score {summary.mean_score:.3f}, {summary.blocking_pairs} blocking pairs "
        f"({summary.method})"
    )
    for unmatched in result.unmatched:
        click.echo(f"unmatched: {unmatched.mentee_email}: {unmatched.reason}")
    click.echo(f"proposals written to {out}")


@match.command("apply")
@click.argument("proposals", type=click.Path(exists=True, dir_okay=False))
@pass_context
def match_apply(context: Context, proposals: str) -> None:
    """Create the participants and pairs in a proposals file and send introductions."""
    try:
        rows = matching.read_proposals(proposals)
    except (matching.ProposalError, OSError) as error:
        raise click.ClickException(str(error)) from None
    notices = Notices(context.config)
    with context.session() as session:
        created = matchmaking.apply_proposals(session, notices, context.domain, rows, proposals)
        lines = [
            f"{new.address}  {new.pair.mentor.email} -> {new.pair.mentee.email}" for new in created
        ]
    click.echo("\n".join(lines))
    click.echo(f"{len(created)} pairs created")


# -- daemon -----------------------------------------------------------------


@cli.command("serve")
@click.option("--log-level", default=None, help="Override [logging] level.")
@pass_context
def serve(context: Context, log_level: str | None) -> None:
    """Run the SMTP server and the delivery worker until SIGTERM or SIGINT."""
    config = context.config
    logging.basicConfig(
        level=(log_level or config.logging.level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aiosmtpd logs every envelope address at INFO; addresses stay out of our logs.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(service.serve(config))


# -- output helpers ---------------------------------------------------------


def _table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    if not rows:
        click.echo("(none)")
        return
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    for row in (headers, *rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def _printable(raw: bytes) -> str:
    message = message_from_bytes(raw, policy=policy.default)
    return message.as_string()
