"""`relay match offer`, `relay offers` and `relay offers cancel`: match offers by email.

`relay match offer` makes a round of offers (matching.offers picks the mentors,
relay.offers stores them and sends the letters); `relay offers` shows where each
stands. numpy, scipy and the database library are imported inside the commands.
"""

from __future__ import annotations

import dataclasses
import getpass
import warnings
from typing import TYPE_CHECKING, Any, TypeVar

import click

from relay.commands.context import Context, counted, emit_json, fail, pass_context, table
from relay.store.states import OfferState, Role

if TYPE_CHECKING:
    from matching.profiles import Profile
    from relay.offers.flow import Desk
    from relay.store.match_round import RoundState

P = TypeVar("P", bound="Profile")

OFFER_ID_MAX = 2**63 - 1


class OfferId(click.ParamType[int]):
    """An offer's id as `relay offers` shows it (a random 63-bit number)."""

    name = "id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value).strip()
        if not text.isdigit():
            self.fail(f"{value!r} is not an offer id (a whole number)", param, ctx)
        number = int(text)
        if not 1 <= number <= OFFER_ID_MAX:
            raise click.ClickException(f"no offer {number}")
        return number


@click.command("offer")
@click.option("--mentors", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--mentees", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option(
    "--choices",
    type=click.IntRange(1, 10),
    default=3,
    show_default=True,
    help="Mentors offered to each mentee.",
)
@click.option("--cohort", default=None, help="Put the pairs made from these offers in this cohort.")
@pass_context
def match_offer(
    context: Context, mentors: str, mentees: str, choices: int, cohort: str | None
) -> None:
    """Email each waiting mentee their best mentors to choose from (the MentorNet loop).

    Mentees already paired, or with an open offer, sit the round out; a mentor's
    places are their capacity less their open pairs and the places open offers hold.
    """
    from matching.offers import make_offers
    from matching.profiles import ProfileError, UnknownColumnWarning, load_mentees, load_mentors
    from relay.commands.matching import _this_round
    from relay.offers import making
    from relay.offers.places import held_places
    from relay.programme import cohorts
    from relay.store import match_round
    from relay.store.states import utcnow

    config = context.config
    if config.matching_problem:
        fail(config.matching_problem)
    # What the round may use is read before the files; it is read again under the
    # places lock when the offers are stored (relay.offers.making), so a round running
    # at the same time never makes both count one place. Reading takes no write lock.
    with context.store.read_session() as session:
        cohort_id = cohorts.find_cohort(session, cohort).id if cohort else None
        state = match_round.round_state(session, context.domain)
        held = held_places(session)
        offered = making.mentees_with_open_offers(session)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnknownColumnWarning)
            mentor_list, mentee_list = load_mentors(mentors), load_mentees(mentees)
    except (ProfileError, OSError) as error:
        raise click.ClickException(str(error)) from None
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    capacity_of = {m.email: m.capacity for m in mentor_list}
    mentor_list = _in_role(state, mentor_list, Role.MENTOR)
    mentee_list = _in_role(state, mentee_list, Role.MENTEE)
    exclude = match_round.exclusions(state, [p.email for p in (*mentor_list, *mentee_list)])
    mentee_list, mentor_list = _this_round(state, mentee_list, mentor_list)
    waiting = []
    for mentee in mentee_list:
        person = state.people.get(mentee.email)
        if person is not None and person.participant_id in offered:
            click.echo(f"already offered: {mentee.email}")
        else:
            waiting.append(mentee)
    ids = state.ids_of([m.email for m in mentor_list])
    mentor_list = [  # places open offers hold are not free this round
        dataclasses.replace(m, capacity=max(0, m.capacity - held[ids.get(m.email, 0)]))
        for m in mentor_list
    ]
    result = make_offers(mentor_list, waiting, config.matching, choices, exclude)
    click.echo(f"{counted(len(result.offers), 'offer')} computed; storing them")
    desk = _desk(context)
    now = utcnow()
    letter_of = making.write_letters(desk, state, result.offers, now)  # before the write lock
    with context.session() as session:
        stored = making.store_offers(
            session, desk, result.offers, letter_of, capacity_of, cohort_id, now
        )
    for offer_id, offer in stored.made:
        names = ", ".join(c.mentor.name for c in offer.candidates)
        click.echo(f"offer {offer_id}: {offer.mentee.email}: {names}")
    for unmatched in result.unmatched:
        click.echo(f"no offer: {unmatched.mentee_email}: {unmatched.reason}")
    for unplaced in stored.unplaced:
        click.echo(f"not placed: {unplaced.email}: {unplaced.reason}")
    left = len(result.unmatched) + len(stored.unplaced)
    click.echo(
        f"{counted(len(stored.made), 'offer')} sent"
        + (f", {left} mentees without one" if left else "")
    )


def _desk(context: Context) -> Desk:
    """Settings, templates and the signed offer addresses, for the steps that send mail."""
    from relay.delivery.bounces import load_bounce_addresses
    from relay.delivery.notices import Notices
    from relay.offers.flow import Desk

    addresses = load_bounce_addresses(context.store, context.domain).offer_addresses()
    return Desk(context.config, Notices(context.config), addresses)


def _in_role(state: RoundState, people: list[P], role: Role) -> list[P]:
    """Those not registered in the other role (they are named and left out)."""
    kept = []
    for person in people:
        known = state.people.get(person.email)
        if known is not None and known.role is not role:
            click.echo(f"left out: {person.email} is registered as a {known.role}", err=True)
        else:
            kept.append(person)
    return kept


@click.group("offers", invoke_without_command=True)
@click.option(
    "--state",
    type=click.Choice([s.value for s in OfferState]),
    default=None,
    help="Only offers in this state.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (JSON).")
@click.pass_context
def offers_group(ctx: click.Context, state: str | None, as_json: bool) -> None:
    """Where every match offer stands; declined and expired ones need a coordinator."""
    if ctx.invoked_subcommand is not None:
        return
    from relay.offers.listing import offer_lines

    context: Context = ctx.obj
    with context.session() as session:
        lines = offer_lines(session, context.domain, OfferState(state) if state else None)
        shown = [line.to_json() for line in lines]
    if as_json:
        emit_json(shown)
        return
    rows = []
    for each in shown:
        names = "; ".join(f"{c['rank']}. {c['mentor']} ({c['state']})" for c in each["choices"])
        now = each["waiting_on"] and f"{each['waiting_on']} by {each['expires_at']}"
        rows.append(
            (
                str(each["id"]),
                each["mentee"],
                each["state"],
                now or each["pair"] or each["reason"],
                names,
            )
        )
    table(("OFFER", "MENTEE", "STATE", "NOW", "CHOICES"), rows)


@offers_group.command("cancel")
@click.argument("offer_id", type=OfferId())
@click.option("--as", "by", default=getpass.getuser, show_default="your login name")
@pass_context
def offers_cancel(context: Context, offer_id: int, by: str) -> None:
    """Withdraw an open offer and tell the mentee (and an invited mentor) by mail.

    Replies to it are then answered "moved on".
    """
    from relay.offers import flow
    from relay.store.states import utcnow

    desk = _desk(context)
    with context.session() as session:
        if not flow.cancel(session, desk, offer_id, by, utcnow()):
            fail(f"no open offer {offer_id}")
    click.echo(f"offer {offer_id} cancelled")
