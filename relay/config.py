"""relay.toml -> frozen dataclasses.

Owns the configuration: which file is read (``--config``, then
``RELAY_CONFIG``, then ./relay.toml), how each value is checked, how
``RELAY_<SECTION>_<KEY>`` environment variables override it (the way to keep
secrets such as the database URL or the smarthost password out of the file),
and how relative paths are resolved (against the config file's folder, so the
relay behaves the same from any working directory).

An unknown key, a wrong type or a missing required value is a ConfigError
naming the key and the file.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import typing
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from matching.settings import MatchSettings, SettingsError
from relay.durations import parse_duration
from relay.errors import ConfigError
from relay.rules.settings import RulesConfig
from relay.settings import (
    DaemonSettings,
    DatabaseSettings,
    DeliverySettings,
    DkimSettings,
    ImapSettings,
    LoggingSettings,
    MetricsSettings,
    ModerationSettings,
    ProgrammeSettings,
    RelaySettings,
    SafeguardingSettings,
    SmarthostSettings,
    SmtpSettings,
)

DEFAULT_CONFIG_NAME = "relay.toml"


@dataclass(frozen=True)
class Config:
    source: Path
    relay: RelaySettings
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    smarthost: SmarthostSettings = field(default_factory=SmarthostSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    moderation: ModerationSettings = field(default_factory=ModerationSettings)
    imap: ImapSettings = field(default_factory=ImapSettings)
    dkim: DkimSettings = field(default_factory=DkimSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    safeguarding: SafeguardingSettings = field(default_factory=SafeguardingSettings)
    programme: ProgrammeSettings = field(default_factory=ProgrammeSettings)
    rules: RulesConfig = field(default_factory=RulesConfig)
    matching: MatchSettings = field(default_factory=MatchSettings)
    # Why [matching] could not be used ('' if it could): only `relay match` and
    # `check-config` fail on it; the relay itself runs (and warns) without it.
    matching_problem: str = ""
    # [matching] offer_expires: how long a mentee has to choose, and a mentor to answer
    # an invitation (relay/offers); read here, as matching/ knows nothing of mail.
    offer_expires: timedelta = timedelta(days=3)

    @property
    def notice_address(self) -> str:
        return f"{self.relay.notice_local_part}@{self.relay.domain}"

    @property
    def postmaster_address(self) -> str:
        """Where mail to postmaster@ and abuse@ goes (a Maildir folder by that name at worst)."""
        return self.relay.postmaster or f"postmaster@{self.relay.domain}"

    @property
    def authentication_mode(self) -> str:
        """How a From is believed: "verify", "trust-front" or "off" (see docs/privacy.md).

        Unset, it is "verify" when [smtp] speaks SMTP beyond loopback (the relay
        faces the internet and no one else checks); on loopback or over LMTP, where
        a front MTA hands mail over, "trust-front" if that MTA is named, else "off"
        as before.
        """
        if "authentication" in self.rules.disabled:
            return "off"
        if self.rules.authentication_mode:
            return self.rules.authentication_mode
        facing_the_internet = (
            self.smtp.enabled
            and self.smtp.protocol == "smtp"  # LMTP is only ever spoken to an MTA in front
            and not self.smtp.socket
            and not is_loopback(self.smtp.host)
        )
        if facing_the_internet:
            return "verify"
        return "trust-front" if self.rules.trusted_authserv_id else "off"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name, "" or 0.0.0.0-like wildcard: assume reachable from outside


SECTIONS: dict[str, type[Any]] = {
    "relay": RelaySettings,
    "database": DatabaseSettings,
    "smtp": SmtpSettings,
    "smarthost": SmarthostSettings,
    "delivery": DeliverySettings,
    "moderation": ModerationSettings,
    "imap": ImapSettings,
    "dkim": DkimSettings,
    "daemon": DaemonSettings,
    "metrics": MetricsSettings,
    "logging": LoggingSettings,
    "safeguarding": SafeguardingSettings,
    "programme": ProgrammeSettings,
}
# Sections whose contents another module owns and checks.
DELEGATED_SECTIONS = frozenset({"rules", "matching"})


def find_config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """The file to read: the --config option, then RELAY_CONFIG, then ./relay.toml."""
    chosen = explicit or os.environ.get("RELAY_CONFIG") or DEFAULT_CONFIG_NAME
    return Path(chosen).expanduser().resolve()


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    source = find_config_path(path)
    try:
        with source.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{source}: configuration file not found") from None
    except OSError as error:
        raise ConfigError(f"{source}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML: {error}") from None
    return config_from_mapping(document, source, os.environ)


def config_from_mapping(
    document: Mapping[str, Any], source: Path, environ: Mapping[str, str]
) -> Config:
    for section in document:
        if section not in SECTIONS and section not in DELEGATED_SECTIONS:
            raise ConfigError(f"{source}: unknown section [{section}]")
    built: dict[str, Any] = {}
    for section, settings_type in SECTIONS.items():
        table = document.get(section, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table")
        merged = dict(table) | _environment_overrides(section, settings_type, environ)
        built[section] = _build_section(section, settings_type, merged, source)
    built["database"] = DatabaseSettings(url=_anchor_sqlite_url(built["database"].url, source))
    for section in DELEGATED_SECTIONS:
        if not isinstance(document.get(section, {}), Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table")
    rules = RulesConfig.from_mapping(document.get("rules", {}), str(source), source.parent)
    matching_problem = ""
    matching_table = dict(document.get("matching", {}))
    offer_expires = parse_duration(
        matching_table.pop("offer_expires", "3d"), f"{source}: [matching] offer_expires"
    )
    if offer_expires <= timedelta(0):
        raise ConfigError(f"{source}: [matching] offer_expires must be more than 0")
    try:
        matching = MatchSettings.from_mapping(matching_table, str(source))
    except SettingsError as error:
        matching, matching_problem = MatchSettings(), str(error)
    _check_imap(document, built["imap"], source)
    _check_tls(built["smtp"], source)
    _check_listener(built["smtp"], source)
    _check_safeguarding(built["safeguarding"], source)
    _check_postmaster(built["relay"], built["delivery"], source)
    _check_programme(built["programme"], source)
    return Config(
        source=source,
        rules=rules,
        matching=matching,
        matching_problem=matching_problem,
        offer_expires=offer_expires,
        **built,
    )


def _check_listener(smtp: SmtpSettings, source: Path) -> None:
    if smtp.socket and smtp.protocol != "lmtp":
        raise ConfigError(
            f'{source}: [smtp] socket needs protocol = "lmtp" (SMTP listens on host and port)'
        )
    if smtp.socket and not Path(smtp.socket).is_absolute():
        raise ConfigError(f"{source}: [smtp] socket must be an absolute path, got {smtp.socket!r}")
    if not re.fullmatch(r"0?[0-7]{3}", smtp.socket_mode):
        raise ConfigError(
            f'{source}: [smtp] socket_mode: expected octal permissions such as "0660", '
            f"got {smtp.socket_mode!r}"
        )


def _check_tls(smtp: SmtpSettings, source: Path) -> None:
    if bool(smtp.tls_cert) != bool(smtp.tls_key):
        raise ConfigError(f"{source}: [smtp] tls_cert and tls_key go together")
    if smtp.require_starttls and not smtp.tls_cert:
        raise ConfigError(f"{source}: [smtp] require_starttls needs tls_cert and tls_key")


def _check_safeguarding(settings: SafeguardingSettings, source: Path) -> None:
    if not 0.0 <= settings.sample_rate <= 1.0:
        raise ConfigError(f"{source}: [safeguarding] sample_rate must be between 0 and 1")
    local = settings.concern_address
    if not local or "@" in local or not local.replace("-", "").replace(".", "").isalnum():
        raise ConfigError(
            f"{source}: [safeguarding] concern_address must be a local part such as 'concern'"
        )


def _check_postmaster(relay: RelaySettings, delivery: DeliverySettings, source: Path) -> None:
    address = relay.postmaster.strip()
    if not address and delivery.transport == "smtp":
        raise ConfigError(
            f'{source}: [relay] postmaster is required with transport = "smtp" '
            "(the operator's address for mail to postmaster@ and abuse@)"
        )
    local, at, domain = address.rpartition("@")
    if address and (not at or not local or "." not in domain or " " in address):
        raise ConfigError(f"{source}: [relay] postmaster: not an email address: {address!r}")
    if address and domain.lower() == relay.domain.lower():
        raise ConfigError(
            f"{source}: [relay] postmaster must be outside the relay domain {relay.domain}"
        )


def _check_programme(programme: ProgrammeSettings, source: Path) -> None:
    try:
        zoneinfo.ZoneInfo(programme.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{source}: [programme] time_zone: unknown time zone {programme.time_zone!r}"
        ) from None
    if not 0 <= programme.send_hour <= 23:
        raise ConfigError(f"{source}: [programme] send_hour must be 0 to 23")


def _check_imap(document: Mapping[str, Any], imap: ImapSettings, source: Path) -> None:
    """An [imap] section is a promise to read a mailbox: it needs a host and a login."""
    if "imap" not in document and not imap.enabled:
        return
    for key in ("host", "user"):
        if not getattr(imap, key):
            raise ConfigError(f"{source}: [imap] {key} is required when [imap] is set")
    if imap.processed_folder == imap.mailbox or imap.refused_folder == imap.mailbox:
        raise ConfigError(
            f"{source}: [imap] processed_folder and refused_folder must differ from mailbox"
        )


def _anchor_sqlite_url(url: str, source: Path) -> str:
    """A relative SQLite path means relative to the config file, not the cwd."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix or url.startswith(prefix + "/"):
        return url
    relative, _, query = url[len(prefix) :].partition("?")
    if relative == ":memory:":
        return url
    anchored = prefix + str((source.parent / relative).resolve())
    return anchored + ("?" + query if query else "")


def _environment_overrides(
    section: str, settings_type: type[Any], environ: Mapping[str, str]
) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in dataclasses.fields(settings_type):
        variable = f"RELAY_{section}_{item.name}".upper()
        if variable in environ:
            overrides[item.name] = _EnvText(environ[variable], variable)
    return overrides


@dataclass(frozen=True)
class _EnvText:
    """A raw string from the environment, converted to the field's type later."""

    text: str
    variable: str


def _build_section(
    section: str, settings_type: type[Any], table: Mapping[str, Any], source: Path
) -> Any:
    hints = typing.get_type_hints(settings_type)
    known = {item.name: item for item in dataclasses.fields(settings_type)}
    for key in table:
        if key not in known:
            raise ConfigError(f"{source}: unknown key '{key}' in [{section}]")
    values: dict[str, Any] = {}
    for name, item in known.items():
        where = f"{source}: [{section}] {name}"
        if name in table:
            raw = table[name]
            if isinstance(raw, _EnvText):
                where = f"{raw.variable} (environment)"
                raw = _from_environment_text(raw.text, hints[name], where)
            values[name] = _convert(raw, hints[name], where, source.parent)
        elif item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: [{section}] {name} is required")
        elif hints[name] is Path:
            assert isinstance(item.default, Path)
            values[name] = (source.parent / item.default).resolve()
    return settings_type(**values)


def _from_environment_text(text: str, hint: Any, where: str) -> Any:
    if hint is bool:
        lowered = text.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{where}: expected true or false, got {text!r}")
    if hint is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{where}: expected a whole number, got {text!r}") from None
    if hint is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {text!r}") from None
    if typing.get_origin(hint) in (tuple, list):
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _convert(raw: Any, hint: Any, where: str, base: Path) -> Any:
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(raw, bool):
            raise ConfigError(f"{where}: expected true or false, got {raw!r}")
        return raw
    if hint is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ConfigError(f"{where}: expected a whole number, got {raw!r}")
        return raw
    if hint is float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {raw!r}")
        return float(raw)
    if hint is str:
        if not isinstance(raw, str):
            raise ConfigError(f"{where}: expected a string, got {raw!r}")
        return raw
    if hint is Path:
        if not isinstance(raw, str) or not raw:
            raise ConfigError(f"{where}: expected a path, got {raw!r}")
        return (base / Path(raw).expanduser()).resolve()
    if hint is timedelta:
        return parse_duration(raw, where)
    if origin is Literal:
        choices = typing.get_args(hint)
        if raw not in choices:
            listed = ", ".join(repr(choice) for choice in choices)
            raise ConfigError(f"{where}: expected one of {listed}, got {raw!r}")
        return raw
    if origin is tuple:
        if not isinstance(raw, list) or not all(isinstance(each, str) for each in raw):
            raise ConfigError(f"{where}: expected a list of strings, got {raw!r}")
        return tuple(raw)
    raise TypeError(f"no converter for {hint!r} ({where})")  # a bug in a settings class
