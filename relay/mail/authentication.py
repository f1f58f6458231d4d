"""Is the From genuine? SPF, DKIM and DMARC alignment, checked here or read from a trusted MTA.

Owns the answer to one question about an incoming message: is the domain
of its From address authenticated, i.e. aligned (RFC 7489) with a passing
SPF check of the envelope sender or a passing DKIM signature? Two ways:

- ``verify``: the relay checks for itself. SPF (pyspf) for the connecting
  IP and the MAIL FROM domain (or the HELO name for a null sender), every
  DKIM signature (dkimpy), and the From domain's DMARC record (``_dmarc``
  TXT, at the From domain, else at its organisational domain) for the
  alignment modes ``adkim``/``aspf`` (relaxed by default).
- ``trust-front``: the MTA in front has checked; its Authentication-Results
  (the ones intake kept, see relay.rules.identity.strip_forged_results) are
  read: ``dmarc=pass``, or a ``dkim=pass`` whose ``header.d`` or an
  ``spf=pass`` whose ``smtp.mailfrom`` aligns with the From domain.

The organisational domain is approximated: the last two labels of the name,
or the last three under a short list of well-known two-label public
suffixes (co.uk, com.au, ...). A DMARC policy's ``p=`` does not matter here:
whatever it says, a From that is not aligned with a pass is not believed.

All DNS goes through relay.mail.resolver (configurable servers, bounded
time). A lookup that times out gives ``temperror``, which is not a pass. At
most MAX_SIGNATURES DKIM signatures are checked, and the whole check stops
looking things up after BUDGET_LOOKUPS lookup timeouts' worth of time, so a
message full of signatures pointing at silent servers cannot hold intake
past its own time limit ([smtp] intake_timeout).
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

import dkim
import spf

from relay.mail.resolver import DnsTemporaryError, Resolver

log = logging.getLogger(__name__)

_TWO_LABEL_SUFFIXES = frozenset(
    {
        "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk", "sch.uk",
        "com.au", "net.au", "org.au", "edu.au", "gov.au", "co.nz", "org.nz", "ac.nz",
        "co.jp", "ne.jp", "or.jp", "ac.jp", "com.br", "com.cn", "com.mx", "co.za", "co.in",
        "co.kr", "com.tr", "com.tw", "com.sg", "com.hk", "co.il", "com.ar",
    }
)  # fmt: skip
_METHOD = re.compile(r"^\s*(dmarc|spf|dkim)\s*=\s*([a-z]+)\b(.*)$", re.IGNORECASE | re.DOTALL)
_PROPERTY = re.compile(r"\b(header\.d|header\.i|header\.from|smtp\.mailfrom)\s*=\s*([^\s;]+)", re.I)
_COMMENT = re.compile(r"\([^()]*\)")
MAX_SIGNATURES = 3
BUDGET_LOOKUPS = 6

# pyspf looks names up through one module-level function; intake's resolver is
# handed to it through this variable (set only around a check, in that thread).
_SPF_RESOLVER: contextvars.ContextVar[Resolver | None] = contextvars.ContextVar(
    "spf_resolver", default=None
)
_PYSPF_LOOKUP = spf.DNSLookup


def _spf_lookup(name: str, qtype: str, strict: Any = True, timeout: Any = 30) -> list[Any]:
    resolver = _SPF_RESOLVER.get()
    if resolver is None:  # someone else using pyspf in this process: its own behaviour
        return list(_PYSPF_LOOKUP(name, qtype, strict, timeout))
    try:
        records = resolver.query(name, qtype)
    except DnsTemporaryError as error:
        raise spf.TempError(str(error)) from None
    answers: list[Any] = []
    for record in records:
        if qtype in ("A", "AAAA"):
            answers.append(((name, qtype), record.address))
        elif qtype == "MX":
            answers.append(((name, qtype), (record.preference, record.exchange)))
        elif qtype == "PTR":
            answers.append(((name, qtype), record.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            answers.append(((name, qtype), record.strings))
    return answers


spf.DNSLookup = _spf_lookup


@dataclass(frozen=True)
class AuthResult:
    """What was found about one message's sender; ``authenticated`` is the verdict."""

    from_domain: str
    authenticated: bool
    spf: str = "none"
    dkim: tuple[tuple[str, str], ...] = ()  # (signing domain, result) per signature
    dmarc: str = "none"
    source: str = "relay"  # "relay" (verified here) or the trusted MTA's authserv-id

    def summary(self) -> str:
        """One line for a moderator: what passed, what did not."""
        signatures = ", ".join(f"{result} ({domain or '?'})" for domain, result in self.dkim)
        checked = f"spf={self.spf} dkim={signatures or 'none'} dmarc={self.dmarc}"
        if self.source != "relay":
            checked = f"dmarc={self.dmarc} per {self.source}"
        if self.authenticated:
            return f"From {self.from_domain} authenticated ({checked})"
        return f"From {self.from_domain} is not authenticated ({checked})"


def organisational_domain(domain: str) -> str:
    labels = domain.lower().strip(".").split(".")
    if len(labels) >= 3 and ".".join(labels[-2:]) in _TWO_LABEL_SUFFIXES:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def aligned(domain: str, from_domain: str, mode: str) -> bool:
    domain, from_domain = domain.lower().strip("."), from_domain.lower().strip(".")
    if not domain or not from_domain:
        return False
    if mode == "s":
        return domain == from_domain
    return organisational_domain(domain) == organisational_domain(from_domain)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().strip("<>").lower()


class Verifier:
    """Checks SPF, DKIM and DMARC alignment itself (mode "verify")."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver

    def check(
        self, raw: bytes, from_address: str, envelope_from: str, helo: str, ip: str
    ) -> AuthResult:
        from_domain = domain_of(from_address)
        until = time.monotonic() + self.resolver.timeout * BUDGET_LOOKUPS
        spf_result, spf_domain = self._spf(envelope_from, helo, ip)
        signatures = self._dkim(raw, until)
        policy, dmarc_error = self._dmarc_policy(from_domain, until)
        dkim_aligned = any(
            result == "pass" and aligned(domain, from_domain, policy.get("adkim", "r"))
            for domain, result in signatures
        )
        spf_aligned = spf_result == "pass" and aligned(
            spf_domain, from_domain, policy.get("aspf", "r")
        )
        if dkim_aligned or spf_aligned:
            dmarc = "pass"
        elif dmarc_error:
            dmarc = "temperror"
        else:
            dmarc = "fail" if policy else "none"
        return AuthResult(
            from_domain=from_domain,
            authenticated=dkim_aligned or spf_aligned,
            spf=spf_result,
            dkim=tuple(signatures),
            dmarc=dmarc,
        )

    def _spf(self, envelope_from: str, helo: str, ip: str) -> tuple[str, str]:
        sender = envelope_from.strip("<>")
        domain = domain_of(sender) if sender else helo.lower()
        if not ip or not domain:
            return "none", domain
        token = _SPF_RESOLVER.set(self.resolver)
        try:
            query = spf.query(
                i=ip,
                s=sender or f"postmaster@{helo}",
                h=helo or domain,
                timeout=self.resolver.timeout,
                querytime=self.resolver.timeout * 2,
            )
            result = str(query.check()[0])
        except Exception:  # pyspf turns DNS trouble into results; anything else is ours
            log.warning("SPF check failed", exc_info=True)
            result = "temperror"
        finally:
            _SPF_RESOLVER.reset(token)
        return result, domain

    def _dkim_txt(self, name: bytes, timeout: int = 5) -> bytes | None:
        records = self.resolver.txt(name.decode("ascii", "replace"))
        return records[0] if records else None

    def _dkim(self, raw: bytes, until: float) -> list[tuple[str, str]]:
        count = len(re.findall(rb"(?im)^dkim-signature\s*:", raw.split(b"\r\n\r\n", 1)[0]))
        if not count:
            return []
        verifier = dkim.DKIM(raw, timeout=int(self.resolver.timeout) or 1)
        found: list[tuple[str, str]] = []
        for index in range(min(count, MAX_SIGNATURES)):
            if time.monotonic() >= until:
                found.append(("", "temperror"))
                break
            try:
                result = "pass" if verifier.verify(idx=index, dnsfunc=self._dkim_txt) else "fail"
            except DnsTemporaryError:
                result = "temperror"
            except Exception:  # dkimpy raises for malformed signatures and keys: a fail
                result = "fail"
            domain = verifier.domain.decode("ascii", "replace") if verifier.domain else ""
            found.append((domain.lower(), result))
        return found

    def _dmarc_policy(self, from_domain: str, until: float) -> tuple[dict[str, str], bool]:
        """The DMARC record's tags for a From domain, and whether DNS failed to say."""
        if not from_domain:
            return {}, False
        if time.monotonic() >= until:
            return {}, True
        organisational = organisational_domain(from_domain)
        names = [from_domain] + ([organisational] if organisational != from_domain else [])
        for name in names:
            try:
                records = self.resolver.txt(f"_dmarc.{name}")
            except DnsTemporaryError:
                return {}, True
            for record in records:
                text = record.decode("utf-8", "replace")
                if text.strip().lower().startswith("v=dmarc1"):
                    return _tags(text), False
        return {}, False


def _tags(record: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in record.split(";"):
        key, equals, value = part.partition("=")
        if equals:
            tags[key.strip().lower()] = value.strip().lower()
    return tags


def from_front(results: Iterable[str], authserv_id: str, from_address: str) -> AuthResult:
    """The verdict of the trusted MTA's Authentication-Results (mode "trust-front")."""
    from_domain = domain_of(from_address)
    dmarc = "none"
    aligned_pass = False
    for value in results:
        for resinfo in _COMMENT.sub(" ", value).split(";")[1:]:
            match = _METHOD.match(resinfo)
            if match is None:
                continue
            method, result = match.group(1).lower(), match.group(2).lower()
            properties = {k.lower(): v for k, v in _PROPERTY.findall(match.group(3))}
            if method == "dmarc":
                named = properties.get("header.from", from_domain).lower()
                dmarc = result if named == from_domain else "fail"
            elif method == "dkim" and result == "pass":
                signer = properties.get("header.d") or domain_of(properties.get("header.i", ""))
                aligned_pass |= aligned(signer, from_domain, "r")
            elif method == "spf" and result == "pass":
                aligned_pass |= aligned(
                    domain_of(properties.get("smtp.mailfrom", "")), from_domain, "r"
                )
    # The front's DMARC verdict, when it gave one, wins (it may align strictly).
    authenticated = dmarc == "pass" if dmarc != "none" else aligned_pass
    return AuthResult(
        from_domain=from_domain, authenticated=authenticated, dmarc=dmarc, source=authserv_id
    )


class AuthenticationSettings(Protocol):
    """The [rules.authentication] keys this module reads (relay.rules.settings.RulesConfig)."""

    @property
    def trusted_authserv_id(self) -> str: ...
    @property
    def nameservers(self) -> tuple[str, ...]: ...
    @property
    def dns_port(self) -> int: ...
    @property
    def dns_timeout(self) -> int: ...


class Authenticator:
    """The configured way of believing a From: verify here, trust the front MTA, or not at all."""

    @classmethod
    def configured(cls, mode: str, settings: AuthenticationSettings) -> Authenticator:
        resolver = Resolver(settings.nameservers, settings.dns_port, float(settings.dns_timeout))
        return cls(mode, settings.trusted_authserv_id, resolver)

    def __init__(
        self,
        mode: str,
        trusted_authserv_id: str = "",
        resolver: Resolver | None = None,
    ) -> None:
        self.mode = mode
        self.trusted_authserv_id = trusted_authserv_id.lower()
        self.verifier = Verifier(resolver or Resolver()) if mode == "verify" else None

    @property
    def asks_dns(self) -> bool:
        """Whether a check may wait on DNS (mode "verify"): not to be run on an event loop."""
        return self.verifier is not None

    def check(
        self,
        raw: bytes,
        message: EmailMessage,
        from_address: str,
        envelope_from: str,
        helo: str,
        ip: str,
    ) -> AuthResult | None:
        """The verdict, or None when the mode is "off" (every From is believed)."""
        if self.mode == "trust-front":
            results = [str(v) for v in message.get_all("Authentication-Results", [])]
            trusted = [v for v in results if _authserv_id(v) == self.trusted_authserv_id]
            return from_front(trusted, self.trusted_authserv_id, from_address)
        if self.verifier is not None:
            return self.verifier.check(raw, from_address, envelope_from, helo, ip)
        return None


def _authserv_id(value: str) -> str:
    return value.strip().split(";", 1)[0].split()[0].lower() if value.strip() else ""
