"""`relay queue`, `relay queue list` and `relay queue retry`: the outbox for operators.

The two that read run relay.ops.outbox's SQL text on `Context.reader()`, so
they start without SQLAlchemy where the database allows (relay.store.plain).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from relay.commands.context import (
    OUTBOX_ID,
    Context,
    counted,
    emit_json,
    exit_failed,
    json_option,
    pass_context,
    report_error,
    table,
)
from relay.durations import format_duration
from relay.store.states import DeliveryStatus, OutboxKind, utcnow

if TYPE_CHECKING:
    from relay.ops.outbox import OutboxRow

_STATES = [state.value for state in DeliveryStatus]
_ERROR_WIDTH = 60


@click.group("queue", invoke_without_command=True)
@json_option
@pass_context
@click.pass_context
def queue_group(ctx: click.Context, context: Context, as_json: bool) -> None:
    """Outbound mail: counts by state and the oldest still waiting."""
    if ctx.invoked_subcommand is not None:
        return
    from relay.ops import outbox

    with context.reader() as reader:
        counts = outbox.counts(reader)
        oldest = outbox.oldest_waiting(reader)
    if as_json:
        emit_json(
            {
                "counts": {state.value: counts[state] for state in DeliveryStatus},
                "oldest_waiting": None if oldest is None else _row_json(oldest),
            }
        )
        return
    table(("STATE", "COUNT"), [(state.value, str(counts[state])) for state in DeliveryStatus])
    if oldest is None:
        click.echo("nothing waiting")
    else:
        waited = format_duration(utcnow() - oldest.created_at)
        click.echo(
            f"oldest waiting: outbox {oldest.id}, {waited} old, "
            f"{oldest.status.value}, next attempt {_next_attempt(oldest)}"
        )


@queue_group.command("list")
@click.option(
    "--state",
    "states",
    type=click.Choice(_STATES),
    multiple=True,
    help="Only rows in this state (repeatable; default: all but delivered).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Show at most this many rows.",
)
@json_option
@pass_context
def queue_list(context: Context, states: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Outbound mail, oldest first, with its last error and next attempt."""
    from relay.ops import outbox

    wanted = [DeliveryStatus(state) for state in states] or list(outbox.NOT_DELIVERED)
    with context.reader() as reader:
        rows, total = outbox.rows_in(reader, wanted, limit)
    if as_json:
        emit_json({"total": total, "entries": [_row_json(row) for row in rows]})
        return
    now = utcnow()
    shown = [
        (
            str(row.id),
            row.status.value,
            _kind(row),
            row.recipient,
            str(row.attempts),
            format_duration(now - row.created_at),
            _next_attempt(row),
            _short(row.last_error or ""),
        )
        for row in rows
    ]
    table(("ID", "STATE", "KIND", "TO", "TRIES", "AGE", "NEXT", "LAST ERROR"), shown)
    if total > len(shown):
        click.echo(f"... {total - len(shown)} more (use --limit)")


@queue_group.command("retry")
@click.argument("outbox_ids", type=OUTBOX_ID, nargs=-1)
@click.option("--all-failed", is_flag=True, help="Retry every failed row.")
@pass_context
def queue_retry(context: Context, outbox_ids: tuple[int, ...], all_failed: bool) -> None:
    """Send failed or deferred mail again now, with a fresh retry schedule.

    A running `relay serve` picks the rows up at its next poll.
    """
    if bool(outbox_ids) == all_failed:
        raise click.UsageError("give outbox IDs or --all-failed (one of the two)")
    from relay.ops import queue

    if all_failed:
        with context.session() as session:
            count = queue.retry_all_failed(session)
        click.echo(f"{counted(count, 'failed entry', 'failed entries')} will be retried")
        return
    with context.session() as session:
        results = queue.retry(session, outbox_ids)
    for result in results:
        if result.done:
            click.echo(result.text)
        else:
            report_error(result.text)
    exit_failed(not all(result.done for result in results))


def _row_json(row: OutboxRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "state": row.status.value,
        "kind": row.kind.value,
        "notice": row.notice,
        "message": row.message_id,
        "to": row.recipient,
        "tries": row.attempts,
        "created_at": row.created_at.isoformat(timespec="seconds"),
        "next_attempt_at": row.next_attempt_at.isoformat(timespec="seconds")
        if row.status in (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)
        else None,
        "last_error": row.last_error,
    }


def _kind(row: OutboxRow) -> str:
    if row.kind is OutboxKind.FORWARD:
        return f"message {row.message_id}"
    return f"notice {row.notice or ''}".rstrip()


def _next_attempt(row: OutboxRow) -> str:
    if row.status is DeliveryStatus.SENDING:
        return "sending now"
    if row.status not in (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED):
        return "-"
    now = utcnow()
    if row.next_attempt_at <= now:
        return "now"
    return "in " + format_duration(row.next_attempt_at - now)


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _ERROR_WIDTH else flat[: _ERROR_WIDTH - 3] + "..."
