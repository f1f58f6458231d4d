"""Postfix settings for Postfix in front of the relay and behind it (`relay setup postfix`).

Pure: relay.toml's settings in, text out. Four blocks, each headed by a
comment line naming the file it belongs in:

- main.cf: the relay domain in ``relay_domains`` and a transport map for it,
  plus the recipient limit of the transport to the relay ([relay]
  max_recipients), so Postfix never offers more recipients than the relay
  takes;
- master.cf: ``mentor-relay``, the transport to the relay (Postfix's smtp
  client, or its lmtp client for ``[smtp] protocol = "lmtp"``), not chrooted
  so a Unix socket outside Postfix's queue folder can be reached; and, when
  the relay's smarthost is not port 25, a loopback listener for the relay's
  outbound mail that skips the checks meant for the internet (milters, sender
  restrictions) and relays only for mynetworks;
- the transport map: the relay domain -> mentor-relay:<where the relay listens>;
- relay.toml: the relay's side of the same settings, to check against.

tests/test_postfix.py configures a real Postfix with exactly these blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.config import Config

TRANSPORT = "mentor-relay"
TRANSPORT_FILE = "mentor-relay-transport"
DEFAULT_LMTP_SOCKET = "/run/mentor-relay/lmtp.sock"
HEADER = "# ---- {name}: {what} ----"


@dataclass(frozen=True)
class Snippets:
    main_cf: str
    master_cf: str
    transport_path: str
    transport_map: str
    relay_toml: str

    def blocks(self, postfix_dir: str) -> list[tuple[str, str, str]]:
        """(file name, what to do with it, text) for each block, in the order to apply them."""
        return [
            (f"{postfix_dir}/main.cf", "add these lines", self.main_cf),
            (f"{postfix_dir}/master.cf", "add these lines", self.master_cf),
            (
                self.transport_path,
                "a new file (texthash: no postmap; `postfix reload` after a change)",
                self.transport_map,
            ),
            ("relay.toml", "the relay's side of these settings", self.relay_toml),
        ]


def snippets(
    config: Config, lmtp: bool | None = None, postfix_dir: str = "/etc/postfix"
) -> Snippets:
    """The settings for config's relay; lmtp None means as [smtp] protocol says."""
    smtp, smarthost, domain = config.smtp, config.smarthost, config.relay.domain
    use_lmtp = smtp.protocol == "lmtp" if lmtp is None else lmtp
    socket = smtp.socket or (DEFAULT_LMTP_SOCKET if smtp.protocol != "lmtp" else "")
    if use_lmtp and socket:
        nexthop, client, listen = (
            f"unix:{socket}",
            "lmtp",
            f'protocol = "lmtp"\nsocket = "{socket}"\n'
            f'socket_group = "{smtp.socket_group or "postfix"}"',
        )
    elif use_lmtp:
        nexthop, client, listen = (
            f"inet:[{smtp.host}]:{smtp.port}",
            "lmtp",
            f'protocol = "lmtp"\nhost = "{smtp.host}"\nport = {smtp.port}',
        )
    else:
        nexthop, client, listen = (
            f"[{smtp.host}]:{smtp.port}",
            "smtp",
            f'protocol = "smtp"\nhost = "{smtp.host}"\nport = {smtp.port}',
        )
    transport_path = f"{postfix_dir}/{TRANSPORT_FILE}"
    main_cf = "\n".join(
        [
            f"# mentor-relay: Postfix takes mail for {domain} and hands it to the relay.",
            "# If relay_domains or transport_maps is set already, add to it instead.",
            f"relay_domains = {domain}",
            f"transport_maps = texthash:{transport_path}",
            "# The relay takes at most [relay] max_recipients recipients per message.",
            f"{TRANSPORT}_destination_recipient_limit = {config.relay.max_recipients}",
        ]
    )
    master_lines = [
        f"# mentor-relay: the transport to the relay ({client.upper()} to {nexthop}).",
        f"{TRANSPORT} unix  -       -       n       -       -       {client}",
        f"  -o syslog_name=postfix/{TRANSPORT}",
    ]
    if smarthost.port != 25:
        master_lines += [
            "# mentor-relay's outbound mail ([smarthost] in relay.toml): loopback, no",
            "# checks meant for mail from the internet, relaying for mynetworks only.",
            f"{smarthost.host}:{smarthost.port} inet  n       -       n       -       -"
            "       smtpd",
            f"  -o syslog_name=postfix/{TRANSPORT}-out",
            "  -o smtpd_client_restrictions=permit_mynetworks,reject",
            "  -o smtpd_helo_restrictions=",
            "  -o smtpd_sender_restrictions=",
            "  -o smtpd_relay_restrictions=permit_mynetworks,reject",
            "  -o smtpd_recipient_restrictions=",
            "  -o smtpd_milters=",
        ]
    transport_map = "\n".join(
        [
            f"# mentor-relay: mail for {domain} goes to the relay.",
            f"{domain}  {TRANSPORT}:{nexthop}",
        ]
    )
    relay_toml = "\n".join(
        [
            "[smtp]",
            listen,
            "",
            "[delivery]",
            'transport = "smtp"',
            "",
            "[smarthost]",
            f'host = "{smarthost.host}"',
            f"port = {smarthost.port}",
        ]
    )
    return Snippets(main_cf, "\n".join(master_lines), transport_path, transport_map, relay_toml)


def render(found: Snippets, postfix_dir: str = "/etc/postfix") -> str:
    parts = [
        HEADER.format(name=name, what=what) + "\n" + text + "\n"
        for name, what, text in found.blocks(postfix_dir)
    ]
    return "\n".join(parts)


def parse(text: str) -> dict[str, str]:
    """render()'s output back into {file name: text}, for whoever applies it by program."""
    found: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if line.startswith("# ---- ") and line.endswith(" ----") and ": " in line:
            name = line[len("# ---- ") :].split(": ", 1)[0]
            found[name] = ""
        elif name:
            found[name] += line + "\n"
    return {key: value.strip("\n") + "\n" for key, value in found.items()}
