"""The sections of relay.toml that the relay itself owns, as frozen dataclasses.

One dataclass a section; a field's type says how relay.config converts and
checks it (bool, int, str, Path relative to the config file, timedelta from
"30s"/"5m"/"1h"/"5d", a Literal's choices, a tuple of strings), and its default
is the documented default. Sections owned by another package ([rules],
[matching]) have their own reader there. Imports nothing but the stdlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

TlsMode = Literal["none", "starttls", "implicit"]
InboundProtocol = Literal["smtp", "lmtp"]
TransportKind = Literal["maildir", "smtp"]
LogFormat = Literal["text", "json"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
EventLoop = Literal["uvloop", "asyncio"]


@dataclass(frozen=True)
class RelaySettings:
    domain: str
    programme_name: str = "Mentor Relay"
    notice_local_part: str = "relay"
    max_message_size: int = 10 * 1024 * 1024
    max_recipients: int = 10
    # Postfix's header_size_limit is 100 KB; no real client comes near 1,000 headers.
    max_header_count: int = 1000
    max_header_size: int = 100 * 1024  # bytes of the top-level header section
    templates: str = ""  # a folder of the operator's own notice templates
    # The operator's address: mail to postmaster@ and abuse@ goes there. Required with
    # transport = "smtp"; with "maildir" it defaults to a postmaster@<domain> folder.
    postmaster: str = ""


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///relay.db"
    connect_timeout: timedelta = timedelta(seconds=10)  # PostgreSQL: reaching the server
    statement_timeout: timedelta = timedelta(seconds=30)  # PostgreSQL: one statement
    busy_timeout: timedelta = timedelta(seconds=30)  # SQLite: waiting for another writer


@dataclass(frozen=True)
class SmtpSettings:
    enabled: bool = True
    protocol: InboundProtocol = "smtp"  # "lmtp": per-recipient replies (RFC 2033), for an MTA
    host: str = "127.0.0.1"
    port: int = 2525
    socket: str = ""  # a Unix socket path instead of host:port (LMTP only, lmtp:unix:)
    socket_mode: str = "0660"  # octal permissions of the socket
    socket_group: str = ""  # group of the socket (e.g. "postfix"); empty: the process's
    hostname: str = ""  # the name in the greeting; empty means the relay domain
    tls_cert: str = ""  # PEM certificate chain; with tls_key, STARTTLS is offered
    tls_key: str = ""
    require_starttls: bool = False  # refuse MAIL until the client has said STARTTLS
    max_connections: int = 100  # open sessions; one more gets 421 4.7.0
    max_connections_per_ip: int = 10
    # RFC 5321 4.5.3.2: at least 5 minutes for a command, 10 for the whole DATA.
    command_timeout: timedelta = timedelta(minutes=5)  # NOOP and RSET do not restart it
    data_timeout: timedelta = timedelta(minutes=10)  # from DATA to the final dot
    intake_timeout: timedelta = timedelta(seconds=60)  # RCPT check or storing one message


@dataclass(frozen=True)
class SmarthostSettings:
    host: str = "127.0.0.1"
    port: int = 25
    tls: TlsMode = "none"
    username: str = ""
    password: str = ""
    timeout: timedelta = timedelta(seconds=60)
    ca_file: str = ""
    connections: int = 4  # sessions kept open to the smarthost, each reused message after message


@dataclass(frozen=True)
class DeliverySettings:
    transport: TransportKind = "maildir"
    maildir: Path = Path("outbox")
    batch_size: int = 50
    poll_interval: timedelta = timedelta(seconds=10)
    lease: timedelta = timedelta(minutes=5)
    retry_first: timedelta = timedelta(minutes=5)
    retry_max: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(days=5)


@dataclass(frozen=True)
class ModerationSettings:
    moderators: tuple[str, ...] = ()  # addresses that get the "what waits" alert
    alert_interval: timedelta = timedelta(hours=1)
    held_notices_per_day: int = 3  # per sender, so a chatty sender is not flooded


@dataclass(frozen=True)
class ImapSettings:
    """The hosted mailbox the relay reads (relay/sources/imap.py); no host means no IMAP."""

    host: str = ""
    port: int = 0  # 0: 993 for tls = "implicit", 143 otherwise
    tls: TlsMode = "implicit"
    ca_file: str = ""  # trust this CA bundle (a private or test CA)
    user: str = ""
    password: str = ""
    mailbox: str = "INBOX"
    processed_folder: str = "Processed"
    refused_folder: str = "Refused"
    idle: bool = True  # use IDLE when the server offers it; otherwise poll
    poll_interval: timedelta = timedelta(seconds=60)
    idle_timeout: timedelta = timedelta(minutes=5)  # the longest one IDLE wait may last
    timeout: timedelta = timedelta(seconds=30)  # per IMAP command

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @property
    def effective_port(self) -> int:
        if self.port:
            return self.port
        return 993 if self.tls == "implicit" else 143


@dataclass(frozen=True)
class DkimSettings:
    selector: str = ""  # empty: outbound mail is not signed
    key_file: Path = Path("dkim.key")  # PEM private key, relative to the config file


@dataclass(frozen=True)
class DaemonSettings:
    pid_file: Path = Path("relay.pid")  # `relay status` reads it; systemd: /run/mentor-relay/
    stale_after: timedelta = timedelta(hours=1)  # `relay status` fails when mail waits longer
    stop_grace: timedelta = timedelta(seconds=30)  # for DATA and deliveries in flight on stop
    # How often the daemon checks it can write the database and the Maildir and says
    # so in the database; `relay status` is unhealthy after three missed beats.
    health_interval: timedelta = timedelta(seconds=15)
    event_loop: EventLoop = "uvloop"  # relay.ops.event_loop: "asyncio" is the way back


@dataclass(frozen=True)
class MetricsSettings:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9325


@dataclass(frozen=True)
class LoggingSettings:
    level: LogLevel = "INFO"
    format: LogFormat = "text"


DEFAULT_FOOTER = "Messages in this programme are read by its coordinators to keep everyone safe."


@dataclass(frozen=True)
class SafeguardingSettings:
    """[safeguarding]: concerns, escalation, spot checks, minors and checks (relay/safeguarding)."""

    leads: tuple[str, ...] = ()  # designated safeguarding leads: alerted at once, never batched
    concern_address: str = "concern"  # local part participants write to with a concern
    decide_within: timedelta = timedelta(hours=24)  # a hold older than this is overdue
    sample_rate: float = 0.02  # share of delivered, unflagged mail put up for a spot check
    require_check: bool = False  # mentors need a current background check to be paired
    guardian_copies: bool = False  # a minor's guardian gets a scrubbed copy of their mail
    footer: str = DEFAULT_FOOTER  # added to every forwarded message; empty: none
    check_interval: timedelta = timedelta(minutes=1)  # how often the daemon looks for overdue


@dataclass(frozen=True)
class ProgrammeSettings:
    """[programme]: the scheduler's clock and the silences it acts on (relay/programme/)."""

    time_zone: str = "UTC"  # for participants who have none of their own
    send_hour: int = 9  # local hour at which a week's items go out
    curriculum: str = ""  # the default curriculum folder; empty: the shipped one
    tick_interval: timedelta = timedelta(minutes=1)
    late_prompt_limit: timedelta = timedelta(days=3)  # later prompts are skipped, not sent
    nudge_after: timedelta = timedelta(days=14)  # one side silent while the other wrote
    quiet_pair: timedelta = timedelta(days=21)  # both silent
    focus_after: timedelta = timedelta(days=30)  # silent this long: on the focus list
    nudge_interval: timedelta = timedelta(days=7)  # at most one nudge a participant per this
    nudge_check: timedelta = timedelta(hours=1)  # how often the daemon looks for silences
    held_waiting: timedelta = timedelta(days=1)  # held mail older than this: on the focus list
