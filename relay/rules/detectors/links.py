"""Links in text and in HTML attributes, and the allowed-domain test."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from relay.rules.detectors.text import Found, finditer_near, positions

# Bare domains only count with a common TLD in lower case: "home.To be" (a
# missing space after a full stop) or "main.py" must not read as a link.
_TLDS = (
    "com|org|net|edu|gov|mil|int|info|biz|io|co|uk|ca|au|nz|ie|de|fr|es|nl|ch|se|dk|"
    "fi|pl|eu|jp|cn|ru|br|mx|za|app|dev|tv|ly|gg|ai|xyz|online|site|link|live|club|"
    "shop|store|blog|page|cc|ac"
)
_URL = re.compile(
    r"\b(?:(?i:https?|ftp)://|(?i:www)\.)[^\s<>\"'`]+"
    rf"|(?<![@\w.\-/])(?:(?i:[a-z0-9][a-z0-9\-]{{0,62}})\.)+(?:{_TLDS})\b(?!\.\w|-)"
    r"(?::\d{1,5})?(?:/[^\s<>\"'`]*)?"
)
_TRAILING = ".,;:!?'\"*"
_HREF_IGNORED = ("mailto:", "tel:", "sms:", "cid:", "#")


def _trim_url(url: str) -> str:
    while url and (url[-1] in _TRAILING or (url[-1] == ")" and url.count("(") < url.count(")"))):
        url = url[:-1]
    return url


def host_of(url: str) -> str:
    """The lower-case host name of a URL written with or without a scheme."""
    target = url if "://" in url[:12] or url.startswith("//") else "//" + url
    try:
        host = urlsplit(target).hostname or ""
    except ValueError:
        return ""
    return host.rstrip(".").lower()


# Each link holds "://", or a "." after "www" or before a common TLD; the
# dot is a literal, so sre finds it fast (an alternation it scans char by char).
_LINK_DOT = re.compile(rf"\.(?:(?<=(?i:www)\.)|(?:{_TLDS})\b)")


def find_links(text: str) -> list[Found]:
    """Every URL in running text; ``detail`` is its host name."""
    found: list[Found] = []
    # Every link holds one of the triggers and no white space, so only the
    # words around a trigger need the (costly, starts-anywhere) URL pattern.
    anchors = sorted((*positions(text, "://"), *(m.start() for m in _LINK_DOT.finditer(text))))
    for m in finditer_near(_URL, text, anchors):
        url = _trim_url(m.group())
        if url:
            found.append(Found(m.start(), m.start() + len(url), "link", host_of(url)))
    return found


def href_link(value: str) -> Found | None:
    """The link an HTML href points to, unless it is an address, anchor or part."""
    lowered = value.lower()
    if not value or lowered.startswith(_HREF_IGNORED):
        return None
    scheme = lowered.split(":", 1)[0] if ":" in lowered[:12] else ""
    if scheme in ("http", "https", "ftp") or lowered.startswith(("//", "www.")):
        return Found(0, len(value), "link", host_of(value))
    if scheme:
        return Found(0, len(value), "link", f"{scheme}:")
    return None  # a relative link goes nowhere once the message leaves its sender


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Whether ``host`` is one of the allowed domains or below one."""
    return any(host == d or host.endswith("." + d) for d in allowed)


# --- machine-written mail ---------------------------------------------------------
