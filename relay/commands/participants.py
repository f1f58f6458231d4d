"""`relay participant show`, `edit`, `address add|remove` and `remove`: people over time.

Registered on `relay participant` (relay.commands.people) by relay.cli.
"""

from __future__ import annotations

import click

from relay.commands.context import Context, emit_json, json_option, pass_context
from relay.commands.people import participant_json
from relay.store.states import Role


@click.command("show")
@click.argument("email")
@json_option
@pass_context
def participant_show(context: Context, email: str, as_json: bool) -> None:
    """One participant: name, role, addresses, time zone, and their pairs."""
    from relay.mail.addresses import pair_address
    from relay.store import registry

    with context.session() as session:
        person = registry.find_participant(session, email)
        pairs = registry.pairs_of(session, person)
        item = participant_json(person, len(pairs))
        item["pairs"] = [
            {
                "address": pair_address(pair.token, context.domain),
                "state": pair.status.value,
                "partner": pair.partner_of(person.id).display_name,
            }
            for pair in pairs
        ]
    if as_json:
        emit_json(item)
        return
    click.echo(f"{item['name']} ({item['role']})")
    click.echo(f"addresses:  {', '.join(item['addresses'])}")
    click.echo(f"time zone:  {item['time_zone'] or '-'}")
    click.echo(f"watched:    {'yes' if item['watched'] else 'no'}")
    click.echo(f"added:      {item['created_at'][:10]}")
    if not item["pairs"]:
        click.echo("pairs:      (none)")
    for number, pair in enumerate(item["pairs"]):
        label = "pairs:" if number == 0 else ""
        click.echo(f"{label:<11} {pair['address']}  {pair['state']}  with {pair['partner']}")


@click.command("edit")
@click.argument("email")
@click.option("--name", help="A new display name (what the partner sees).")
@click.option("--role", type=click.Choice([role.value for role in Role]))
@click.option("--time-zone", help="IANA time zone, e.g. Europe/London ('' clears it).")
@pass_context
def participant_edit(
    context: Context, email: str, name: str | None, role: str | None, time_zone: str | None
) -> None:
    """Change a participant's name, role or time zone."""
    from relay.store import registry

    if name is None and role is None and time_zone is None:
        raise click.UsageError("give at least one of --name, --role, --time-zone")
    with context.session() as session:
        person = registry.edit_participant(
            session,
            email,
            name=name,
            role=Role(role) if role else None,
            time_zone=time_zone,
        )
        zone = f", time zone {person.time_zone}" if person.time_zone else ""
        click.echo(f"{person.email}: {person.role} {person.display_name}{zone}")


@click.group("address")
def address_group() -> None:
    """The other addresses a participant writes from."""


@address_group.command("add")
@click.argument("email")
@click.argument("address")
@pass_context
def address_add(context: Context, email: str, address: str) -> None:
    """Let EMAIL's participant also write from ADDRESS."""
    from relay.store import registry

    with context.session() as session:
        person = registry.add_address(session, email, address, context.domain)
        click.echo(f"{person.email}: writes from {', '.join(a.email for a in person.addresses)}")


@address_group.command("remove")
@click.argument("email")
@click.argument("address")
@pass_context
def address_remove(context: Context, email: str, address: str) -> None:
    """Stop accepting mail for EMAIL's participant from ADDRESS (not their main address)."""
    from relay.store import registry

    with context.session() as session:
        person = registry.remove_address(session, email, address)
        click.echo(f"{person.email}: writes from {', '.join(a.email for a in person.addresses)}")


@click.command("remove")
@click.argument("email")
@pass_context
def participant_remove(context: Context, email: str) -> None:
    """Delete a participant who is in no pair (a mistaken registration, say)."""
    from relay.store import registry

    with context.session() as session:
        person = registry.remove_participant(session, email, context.domain)
        click.echo(f"removed {person.role} {person.display_name} <{person.email}>")
