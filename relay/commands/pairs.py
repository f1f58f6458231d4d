"""`relay pair show ADDRESS`: one pair at a glance.

Registered on `relay pair` (relay.commands.people) by relay.cli.
"""

from __future__ import annotations

import click

from relay.commands.context import Context, emit_json, json_option, pass_context
from relay.commands.people import pair_json


@click.command("show")
@click.argument("address")
@json_option
@pass_context
def pair_show(context: Context, address: str, as_json: bool) -> None:
    """Both names, the state, message counts and the last message each way."""
    from relay.store import registry, transcript

    with context.session() as session:
        pair = registry.find_pair(session, address, context.domain)
        found = transcript.summary(session, pair)
        item = pair_json(pair, context.domain)
        item["messages"] = {"total": found.messages, "by_state": found.states}
        item["mentor_to_mentee"] = found.mentor_to_mentee.as_json()
        item["mentee_to_mentor"] = found.mentee_to_mentor.as_json()
    if as_json:
        emit_json(item)
        return
    ended = f" (ended {item['ended_at'][:10]})" if item["ended_at"] else ""
    click.echo(f"pair:      {item['address']}")
    click.echo(f"state:     {item['state']}{ended}{', watched' if item['watched'] else ''}")
    click.echo(f"mentor:    {item['mentor']['name']} <{item['mentor']['email']}>")
    click.echo(f"mentee:    {item['mentee']['name']} <{item['mentee']['email']}>")
    click.echo(f"created:   {item['created_at'][:10]}")
    states = ", ".join(f"{count} {state}" for state, count in found.states.items())
    click.echo(f"messages:  {found.messages}" + (f" ({states})" if states else ""))
    for label, direction in (
        ("mentor -> mentee", found.mentor_to_mentee),
        ("mentee -> mentor", found.mentee_to_mentor),
    ):
        if direction.last_id is None or direction.last_at is None:
            click.echo(f"{label}: none yet")
            continue
        click.echo(
            f"{label}: {direction.messages}, last {direction.last_at:%Y-%m-%d %H:%M} UTC "
            f"(message {direction.last_id}, {direction.last_state}: {direction.last_subject!r})"
        )
