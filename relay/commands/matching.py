"""`relay match` and `relay match apply`: the front door of the matching package."""

from __future__ import annotations

import sys
import warnings

import click

from relay.commands.context import Context, counted, fail, pass_context

PROGRESS_BAR_FROM = 2000  # mentees; smaller cohorts finish before a bar would help


@click.group("match", invoke_without_command=True)
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
    # numpy, scipy and OR-Tools load here, not when any other command starts.
    from matching.match import match as propose
    from matching.profiles import ProfileError, UnknownColumnWarning, load_mentees, load_mentors
    from matching.proposals import write_proposals
    from relay.store import match_apply as matchmaking

    context: Context = ctx.obj
    if context.config.matching_problem:
        fail(context.config.matching_problem)
    settings = context.config.matching
    with context.session() as session:
        exclude = matchmaking.existing_pairs(session)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnknownColumnWarning)
            mentor_list = load_mentors(mentors)
            mentee_list = load_mentees(mentees)
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

            result = propose(
                mentor_list,
                mentee_list,
                settings,
                method="stable" if method == "stable" else "optimal",
                exclude=exclude,
                progress=progress,
            )
        write_proposals(out, result)
    except (ProfileError, OSError) as error:
        raise click.ClickException(str(error)) from None
    summary = result.summary
    click.echo(
        f"{summary.matched} matched, {summary.unmatched} unmatched, "
        f"mean score {summary.mean_score:.3f}, {counted(summary.blocking_pairs, 'blocking pair')} "
        f"({summary.method})"
    )
    for unmatched in result.unmatched:
        click.echo(f"unmatched: {unmatched.mentee_email}: {unmatched.reason}")
    click.echo(f"proposals written to {out}")


@match.command("apply")
@click.argument("proposals", type=click.Path(exists=True, dir_okay=False))
@click.option("--cohort", default=None, help="Put the new pairs in this cohort.")
@click.option("--mentors", type=click.Path(exists=True, dir_okay=False), help="mentors.csv")
@click.option("--mentees", type=click.Path(exists=True, dir_okay=False), help="mentees.csv")
@pass_context
def match_apply(
    context: Context,
    proposals: str,
    cohort: str | None,
    mentors: str | None,
    mentees: str | None,
) -> None:
    """Create the participants and pairs in a proposals file and send introductions.

    With --mentors and --mentees (the profiles matched), every address must be in
    them, empty names are filled in, and time zones are taken from them.
    """
    from matching.profiles import ProfileError, load_mentees, load_mentors
    from matching.proposals import ProposalError, read_proposals
    from relay.delivery.notices import Notices
    from relay.programme import cohorts
    from relay.store import match_apply as matchmaking
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
    notices = Notices(context.config)
    refused: list[str] = []
    with context.session() as session:
        created = matchmaking.apply_proposals(
            session, notices, context.domain, rows, proposals, refused, zones
        )
        if cohort is not None:
            found = cohorts.find_cohort(session, cohort)
            for new in created:
                cohorts.join(new.pair, found, utcnow().date(), None, context.domain)
        lines = [
            f"{new.address}  {new.pair.mentor.email} -> {new.pair.mentee.email}" for new in created
        ]
    if lines:
        click.echo("\n".join(lines))
    for problem in refused:
        click.echo(f"not created: {problem}")
    click.echo(
        f"{counted(len(created), 'pair')} created"
        + (f", {len(refused)} refused" if refused else "")
    )
