"""`relay setup postfix` and `relay setup dns`: what to paste into Postfix and into DNS.

Thin: relay.ops.postfix and relay.ops.dns_records write the text from the
configuration; these commands only read the key file and print.
"""

from __future__ import annotations

import click

from relay.commands.context import Context, pass_context
from relay.errors import ConfigError


@click.group("setup")
def setup_group() -> None:
    """Settings to paste into the mail server and DNS around the relay."""


@setup_group.command("postfix")
@click.option(
    "--lmtp/--smtp",
    "lmtp",
    default=None,
    help="Hand mail to the relay over LMTP (a Unix socket unless [smtp] says host/port) "
    "or SMTP. Default: as [smtp] protocol says.",
)
@click.option(
    "--postfix-dir",
    default="/etc/postfix",
    show_default=True,
    help="Postfix's configuration folder (where the transport map goes).",
)
@pass_context
def setup_postfix(context: Context, lmtp: bool | None, postfix_dir: str) -> None:
    """Print the main.cf and master.cf lines and the transport map for the relay domain."""
    from relay.ops import postfix

    folder = postfix_dir.rstrip("/") or "/"
    click.echo(postfix.render(postfix.snippets(context.config, lmtp, folder), folder), nl=False)


@setup_group.command("dns")
@click.option(
    "--mx",
    "mx_host",
    default="",
    help="The host name of the Postfix in front (default: [smtp] hostname, else the domain).",
)
@pass_context
def setup_dns(context: Context, mx_host: str) -> None:
    """Print the MX, SPF, DKIM and DMARC records to publish for the relay domain."""
    from relay.ops import dns_records

    config = context.config
    dkim_value = ""
    if config.dkim.selector:
        try:
            pem = config.dkim.key_file.read_bytes()
        except OSError as error:
            raise ConfigError(
                f"[dkim] key_file {config.dkim.key_file}: cannot read: {error.strerror}"
            ) from None
        dkim_value = dns_records.dkim_txt(pem)
    mx = mx_host or config.smtp.hostname or config.relay.domain
    click.echo(
        dns_records.records(config.relay.domain, mx, config.dkim.selector, dkim_value), nl=False
    )
