"""`relay set-aside`: mail for a pair whose From names no participant of it.

Such mail got the same 250 as any other (no address oracle), so it is kept for
moderators instead of being dropped; reading one is logged like any reading
of message content.
"""

from __future__ import annotations

import click

from relay.commands.context import MESSAGE_ID, Context, emit_json, json_option, pass_context, table
from relay.durations import format_duration


@click.command("set-aside")
@click.option("--show", "show_id", type=MESSAGE_ID, help="Print this one as it was received.")
@click.option("--limit", default=50, show_default=True, help="The newest this many.")
@click.option("--as", "reader", default=None, help="Your name, for the access log (--show).")
@json_option
@pass_context
def set_aside(
    context: Context, show_id: int | None, limit: int, reader: str | None, as_json: bool
) -> None:
    """Mail for a pair whose From names no participant of it (kept, never relayed)."""
    from relay.commands.context import printable
    from relay.errors import NotFoundError
    from relay.mail.addresses import pair_address
    from relay.safeguarding import access_log
    from relay.store.models import SetAside
    from relay.store.set_aside import list_set_aside
    from relay.store.states import utcnow

    with context.session() as session:
        if show_id is not None:
            row = session.get(SetAside, show_id)
            if row is None:
                raise NotFoundError(f"no set-aside mail with id {show_id}")
            access_log.record(
                session,
                access_log.reader_name(reader),
                "set-aside --show",
                pair_id=row.pair_id,
                detail=f"set-aside mail {row.id}",
            )
            click.echo(printable(row.raw))
            return
        now = utcnow()
        items = [
            {
                "id": row.id,
                "received_at": row.received_at.isoformat(timespec="seconds"),
                "age": format_duration(now - row.received_at),
                "pair": pair_address(row.pair.token, context.domain),
                "from": row.from_address,
                "outcome": row.outcome,
                "reason": row.reason,
            }
            for row in list_set_aside(session, limit)
        ]
    if as_json:
        emit_json(items)
        return
    keys = ("id", "age", "pair", "from", "outcome", "reason")
    table(tuple(key.upper() for key in keys), [tuple(str(i[k]) for k in keys) for i in items])
