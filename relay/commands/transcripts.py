"""`relay log` and `relay export`: reading a pair's conversation, and handing it over.

`relay log ADDRESS` lists the messages; `--full` prints the conversation as
a person reads it; `--show ID` one message exactly as received (real
addresses and all: it is the record). `relay export` writes the messages as
mail, to one mbox file or to a folder of .eml files, for records requests.
Real addresses appear in `--full` and in exports only with
`--with-addresses`.
"""

from __future__ import annotations

from pathlib import Path

import click

from relay.commands.context import (
    MESSAGE_ID,
    Context,
    counted,
    emit_json,
    fail,
    json_option,
    pass_context,
    printable,
    table,
)

_READER = click.option("--as", "reader", default=None, help="Your name, for the access log.")
_WITH_ADDRESSES = click.option(
    "--with-addresses",
    is_flag=True,
    help="Show the participants' real addresses (default: the pair address stands for them).",
)


@click.command("log")
@click.argument("address")
@click.option("--show", "show_id", type=MESSAGE_ID, help="Print message ID as it was received.")
@click.option("--full", is_flag=True, help="The whole conversation, as a person reads it.")
@_WITH_ADDRESSES
@_READER
@json_option
@pass_context
def log_command(
    context: Context,
    address: str,
    show_id: int | None,
    full: bool,
    with_addresses: bool,
    reader: str | None,
    as_json: bool,
) -> None:
    """A pair's transcript, oldest first: one line per message, or --full (reading is logged)."""
    from relay.commands import readable
    from relay.mail.addresses import pair_address
    from relay.safeguarding import access_log
    from relay.store import registry, transcript

    if show_id is not None and full:
        raise click.UsageError("--show and --full do not go together")
    who = access_log.reader_name(reader)
    with context.session() as session:
        pair = registry.find_pair(session, address, context.domain)
        if show_id is not None:
            message = transcript.message_in_pair(session, pair, show_id)
            access_log.record(session, who, "log --show", pair_id=pair.id, message_id=message.id)
            if as_json:
                emit_json(
                    {
                        "id": message.id,
                        "state": transcript.state_of(session, message),
                        "raw": message.raw.decode("utf-8", "replace"),
                    }
                )
            else:
                click.echo(printable(message.raw))
            return
        access_log.record(
            session,
            who,
            "log --full" if full else "log",
            pair_id=pair.id,
            detail="conversation" if full else "transcript",
        )
        if full:
            click.echo(
                readable.full_text(session, context.config, pair, with_addresses=with_addresses)
            )
            return
        lines = transcript.transcript(session, pair)
        if as_json:
            emit_json(
                {
                    "pair": pair_address(pair.token, context.domain),
                    "messages": [line.as_json() for line in lines],
                }
            )
            return
        rows = [
            (
                str(line.message_id),
                line.received_at.strftime("%Y-%m-%d %H:%M"),
                line.sender_role,
                line.subject,
                line.state,
            )
            for line in lines
        ]
    table(("ID", "TIME (UTC)", "FROM", "SUBJECT", "STATE"), rows)


@click.command("export")
@click.argument("address")
@click.option("--mbox", "mbox_file", type=click.Path(dir_okay=False), help="Write one mbox file.")
@click.option(
    "--eml", "eml_dir", type=click.Path(file_okay=False), help="Write one .eml file a message."
)
@_WITH_ADDRESSES
@_READER
@pass_context
def export_command(
    context: Context,
    address: str,
    mbox_file: str | None,
    eml_dir: str | None,
    with_addresses: bool,
    reader: str | None,
) -> None:
    """Write a pair's messages as mail, oldest first, for a records request.

    Without --with-addresses each message is written as the partner received
    it (or would have); with it, exactly as it was received.
    """
    import mailbox

    from relay.commands import readable
    from relay.safeguarding import access_log
    from relay.store import registry, transcript

    if bool(mbox_file) == bool(eml_dir):
        raise click.UsageError("give --mbox FILE or --eml DIR (one of the two)")
    target = Path(mbox_file or eml_dir or "")
    if mbox_file and target.exists():
        fail(f"{target} already exists; give a new file name")
    if eml_dir and target.exists() and any(target.iterdir()):
        fail(f"{target} is not empty; give a new or empty folder")
    with context.session() as session:
        pair = registry.find_pair(session, address, context.domain)
        written: list[tuple[int, bytes]] = []
        purged = 0
        for line in transcript.transcript(session, pair):
            if line.message.purged_at is not None or not line.message.raw:
                purged += 1
                continue
            data = readable.export_bytes(
                context.config, line.message, line.state, with_addresses=with_addresses
            )
            written.append((line.message_id, data))
        access_log.record(
            session,
            access_log.reader_name(reader),
            "export",
            pair_id=pair.id,
            detail=f"{len(written)} messages to {target.name}"
            + (" with addresses" if with_addresses else ""),
        )
    if mbox_file:
        box = mailbox.mbox(target, create=True)
        try:
            for _, data in written:
                box.add(data)
            box.flush()
        finally:
            box.close()
    else:
        target.mkdir(parents=True, exist_ok=True)
        for message_id, data in written:
            (target / f"message-{message_id:06d}.eml").write_bytes(data)
    click.echo(f"{counted(len(written), 'message')} written to {target}")
    if purged:
        click.echo(
            f"note: {counted(purged, 'message')} not exported: the text was purged (retention)",
            err=True,
        )
