"""`relay match` and `relay match apply`: the front door of the matching package.

A round of matching knows the database: mentees who are paired sit it out, mentors'
places shrink by their current pairs, and two people who were ever paired are never
proposed again (`--ignore-existing` for a fresh start). numpy, scipy and OR-Tools are
imported inside `relay match` only, so no other command pays for them.
"""

from __future__ import annotations

import dataclasses
import gc
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import click

from relay.commands.context import Context, counted, fail, pass_context
from relay.errors import RelayError
from relay.store.states import PairStatus

if TYPE_CHECKING:
    from matching.profiles import Mentee, Mentor
    from relay.store.match_round import RoundState

PROGRESS_BAR_FROM = 2000  # mentees; smaller cohorts finish before a bar would help
BLOCKING_PAIRS = (
    "a blocking pair is a mentor and a mentee who would both rather be with each other "
    "than with whom they got"
)


@click.group("match", invoke_without_command=True)
@click.option("--mentors", type=click.Path(exists=True, dir_okay=False), help="mentors.csv")
@click.option("--mentees", type=click.Path(exists=True, dir_okay=False), help="mentees.csv")
@click.option(
    "--method", type=click.Choice(["optimal", "stable"]), default="optimal", show_default=True
)
@click.option("--out", type=click.Path(dir_okay=False), default="proposals.csv", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option(
    "--ignore-existing",
    is_flag=True,
    help="Match as if the database held no pairs (a fresh programme).",
)
@click.option(
    "--rematch",
    "rematch",
    multiple=True,
    metavar="ADDRESS",
    help="Propose a new mentor for the mentee of this ended pair (repeatable).",
)
@click.pass_context
def match(
    ctx: click.Context,
    mentors: str | None,
    mentees: str | None,
    method: str,
    out: str,
    force: bool,
    ignore_existing: bool,
    rematch: tuple[str, ...],
) -> None:
    """Propose a mentor for every mentee; `relay match apply FILE` makes the pairs."""
    if ctx.invoked_subcommand is not None:
        return
    if not mentors or not mentees:
        raise click.UsageError("--mentors and --mentees are required")
    if Path(out).exists() and not force:
        raise click.ClickException(f"{out} exists; use --force to overwrite it")
    from matching.match import match as propose
    from matching.profiles import ProfileError, UnknownColumnWarning, load_mentees, load_mentors
    from matching.proposals import write_proposals
    from relay.store import match_round

    if gc.isenabled():
        # A round builds some 100,000 small objects (profiles, database rows) that all
        # live to the end; the cyclic collector walked them over and over (reading a
        # database of 30,000 pairs took twice as long). Reference counting still frees.
        gc.disable()
        ctx.call_on_close(gc.enable)
    context: Context = ctx.obj
    if context.config.matching_problem:
        fail(context.config.matching_problem)
    settings = context.config.matching
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnknownColumnWarning)
            mentor_list = load_mentors(mentors)
            mentee_list = load_mentees(mentees)
    except (ProfileError, OSError) as error:
        raise click.ClickException(str(error)) from None
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    capacities = {m.email: m.capacity for m in mentor_list}
    with context.session() as session:
        state = match_round.round_state(session, context.domain)
    emails = [p.email for p in (*mentor_list, *mentee_list)]
    exclude = match_round.exclusions(state, emails)
    if rematch:
        mentee_list = _rematched_mentees(state, mentee_list, rematch, context.domain)
    elif not ignore_existing:
        mentee_list, mentor_list = _this_round(state, mentee_list, mentor_list)
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

        result = propose(
            mentor_list,
            mentee_list,
            settings,
            method="stable" if method == "stable" else "optimal",
            exclude=exclude,
            progress=progress,
        )
    try:
        write_proposals(out, result, capacities=capacities)
    except OSError as error:
        raise click.ClickException(f"cannot write {out}: {error.strerror}") from None
    summary = result.summary
    click.echo(
        f"{summary.matched} matched, {summary.unmatched} unmatched, "
        f"mean score {summary.mean_score:.3f} ({summary.method})"
    )
    if summary.method == "stable":
        click.echo(f"{counted(summary.blocking_pairs, 'blocking pair')} ({BLOCKING_PAIRS})")
    for unmatched in result.unmatched:
        click.echo(f"unmatched: {unmatched.mentee_email}: {unmatched.reason}")
    click.echo(f"proposals written to {out}")


def _this_round(
    state: RoundState, mentees: list[Mentee], mentors: list[Mentor]
) -> tuple[list[Mentee], list[Mentor]]:
    """Paired mentees sit the round out; mentors keep only their free places."""
    paired = state.open_by_mentee
    load = state.load
    waiting = []
    for mentee in mentees:
        person = state.people.get(mentee.email)
        if person is not None and person.participant_id in paired:
            pair = state.open_pair_of_mentee(mentee.email)
            click.echo(f"already paired: {mentee.email} ({pair.address if pair else ''})")
        else:
            waiting.append(mentee)
    with_places = []
    for mentor in mentors:
        person = state.people.get(mentor.email)
        taken = load[person.participant_id] if person is not None else 0
        with_places.append(dataclasses.replace(mentor, capacity=max(0, mentor.capacity - taken)))
    return waiting, with_places


def _rematched_mentees(
    state: RoundState,
    mentees: list[Mentee],
    addresses: tuple[str, ...],
    domain: str,
) -> list[Mentee]:
    """The mentees of the given ended pairs, from the profiles file."""
    by_address = {pair.address: pair for pair in state.pairs}
    profile_of = {
        state.people[m.email].participant_id: m for m in mentees if m.email in state.people
    }
    chosen = []
    for address in addresses:
        pair = by_address.get(address.strip().lower())
        if pair is None:
            raise click.ClickException(f"no pair with the address {address}")
        if pair.state != PairStatus.ENDED:
            raise click.ClickException(f"{address} is {pair.state}: end it before re-matching")
        mentee = profile_of.get(pair.mentee_id)
        if mentee is None:
            raise click.ClickException(f"the mentee of {address} is not in the mentees file")
        if state.open_pair_of_mentee(mentee.email) is not None:
            raise click.ClickException(f"the mentee of {address} already has a new pair")
        chosen.append(mentee)
    return chosen


@match.command("apply")
@click.argument("proposals", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Show what would be created; change nothing.")
@click.option("--skip-bad", is_flag=True, help="Apply the good rows, list the bad ones.")
@click.option("--cohort", default=None, help="Put the new pairs in this cohort.")
@click.option("--mentors", type=click.Path(exists=True, dir_okay=False), help="mentors.csv")
@click.option("--mentees", type=click.Path(exists=True, dir_okay=False), help="mentees.csv")
@pass_context
def match_apply(
    context: Context,
    proposals: str,
    dry_run: bool,
    skip_bad: bool,
    cohort: str | None,
    mentors: str | None,
    mentees: str | None,
) -> None:
    """Create the participants and pairs in a proposals file and send introductions.

    The whole file is checked first: a mentee twice, a mentor over capacity (counting
    current pairs), a participant registered with another role or name, two people who
    were paired before. Any problem applies nothing, unless --skip-bad. With --mentors
    and --mentees (the profiles matched), every address must be in them, empty names
    are filled in, and time zones are taken from them.
    """
    from matching.profiles import ProfileError, load_mentees, load_mentors
    from matching.proposals import ProposalError, read_proposals
    from relay.delivery.notices import Notices
    from relay.programme import cohorts
    from relay.store import match_apply as matchmaking
    from relay.store import match_round
    from relay.store.states import utcnow

    if bool(mentors) != bool(mentees):
        raise click.UsageError("--mentors and --mentees go together")
    zones: dict[str, str] = {}
    try:
        if mentors and mentees:
            mentor_list, mentee_list = load_mentors(mentors), load_mentees(mentees)
            rows = read_proposals(proposals, mentor_list, mentee_list)
            zones = matchmaking.profile_time_zones(
                [(p.email, p.time_zone) for p in [*mentor_list, *mentee_list]]
            )
        else:
            rows = read_proposals(proposals)
    except (ProposalError, ProfileError, OSError) as error:
        raise click.ClickException(str(error)) from None
    name = proposals  # as given, so the coordinator sees the file they named
    capacity_of = {r.mentor_email: r.mentor_capacity for r in rows if r.mentor_capacity}
    with context.session() as session:
        state = match_round.round_state(session, context.domain)
        problems = match_round.check_proposals(state, rows, capacity_of)
        for problem in problems:
            click.echo(f"{name} line {problem.line}: {problem.text}", err=True)
        if problems and not skip_bad:
            raise click.ClickException(
                f"{counted(len(problems), 'problem')} in {name}; nothing was applied"
            )
        bad_lines = {problem.line for problem in problems}
        good = [row for row in rows if row.line not in bad_lines]
        if dry_run:
            for row in good:
                click.echo(
                    f"would pair {row.mentor_email} -> {row.mentee_email} (line {row.line}); "
                    f"introductions to both"
                )
            click.echo(f"{counted(len(good), 'pair')} would be created (dry run)")
            return
        refused: list[str] = []  # rows the safeguarding gates stop (consent, checks)
        try:
            created = matchmaking.apply_proposals(
                session, Notices(context.config), context.domain, good, name, refused, zones
            )
            if cohort is not None:
                found = cohorts.find_cohort(session, cohort)
                for new in created:
                    cohorts.join(new.pair, found, utcnow().date(), None, context.domain)
        except RelayError as error:
            raise click.ClickException(str(error)) from None
        lines = [
            f"{new.address}  {new.pair.mentor.email} -> {new.pair.mentee.email}" for new in created
        ]
    if lines:
        click.echo("\n".join(lines))
    for why in refused:
        click.echo(f"not created: {why}")
    click.echo(
        f"{counted(len(created), 'pair')} created"
        + (f", {len(refused)} refused" if refused else "")
    )
    if problems:
        click.echo(f"skipped {counted(len(bad_lines), 'line')} with problems", err=True)
