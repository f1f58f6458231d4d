"""HTML as a participant may receive it: active content out, remote loads found.

Owns the one reading of an HTML body that both the rules and the outbound
copy rely on, done by nh3 (the Ammonia sanitizer, MIT) with an allow-list of
tags, attributes and URL schemes rather than by patterns:

- active content never passes: script, style and template elements with
  their content, iframe, object, embed, form and its controls, meta (a
  refresh), link, base, event handler attributes (on*), and any URL whose
  scheme is not http, https, mailto, tel or cid (javascript:, data:, vbscript:
  ...); a relative URL goes too (there is no page it could be relative to);
- what a mail client loads by itself when the message is opened (an
  ``<img src="https://...">`` tracking pixel, a CSS ``url(...)`` in a style
  attribute) is a *remote reference*: the links rule reports each one, and
  ``strip_remote`` removes them from the copy that is sent.

Everything a reader sees (text, links, tables, inline pictures by cid:) stays.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import nh3

_DROPPED_WITH_CONTENT = {"script", "style", "template", "title", "noscript", "textarea", "select"}
_TAGS = (set(nh3.ALLOWED_TAGS) | {"font", "tfoot", "u"}) - _DROPPED_WITH_CONTENT
_LAYOUT_ATTRIBUTES = {
    "style",
    "class",
    "dir",
    "lang",
    "title",
    "align",
    "valign",
    "width",
    "height",
    "bgcolor",
    "color",
    "border",
    "cellpadding",
    "cellspacing",
    "face",
    "size",
}
_ATTRIBUTES = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()} | {
    "*": _LAYOUT_ATTRIBUTES,
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height", "align", "border"},
}
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}
_CSS_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)""", re.IGNORECASE | re.DOTALL)
_CSS_ACTIVE = re.compile(r"expression\s*\(|javascript:|behavior\s*:|-moz-binding", re.IGNORECASE)
_LOADED_BY_ITSELF = {("img", "src")}


def is_remote(url: str) -> bool:
    """Whether a client fetches this URL from the network (not cid:, not a data: URI)."""
    stripped = url.strip()
    return stripped.startswith("//") or urlsplit(stripped).scheme.lower() in ("http", "https")


def remote_host(url: str) -> str:
    stripped = url.strip()
    host = urlsplit(stripped if not stripped.startswith("//") else "http:" + stripped).hostname
    return host or "unknown host"


class _Reading:
    """One pass of nh3 over a body, remembering the remote references it kept or removed."""

    def __init__(self, strip_remote: bool) -> None:
        self.strip_remote = strip_remote
        self.remote: list[str] = []

    def attribute(self, tag: str, name: str, value: str) -> str | None:
        if name == "style":
            if _CSS_ACTIVE.search(value):
                return None
            urls = [m.group(2) for m in _CSS_URL.finditer(value)]
            if any(not is_remote(url) and ":" in url for url in urls):
                return None  # data: and other schemes inside CSS: the style goes
            remote = [url for url in urls if is_remote(url)]
            self.remote.extend(remote)
            return None if remote and self.strip_remote else value
        if (tag, name) in _LOADED_BY_ITSELF and is_remote(value):
            self.remote.append(value)
            return None if self.strip_remote else value
        return value

    def clean(self, source: str) -> str:
        return nh3.clean(
            source,
            tags=_TAGS,
            clean_content_tags=_DROPPED_WITH_CONTENT,
            attributes=_ATTRIBUTES,
            attribute_filter=self.attribute,
            url_schemes=_URL_SCHEMES,
            url_relative="deny",
            strip_comments=True,
            link_rel="noopener noreferrer",
        )


def clean(source: str, *, strip_remote: bool = False) -> str:
    """The body with active content removed (and remote references, with strip_remote)."""
    return _Reading(strip_remote).clean(source)


def remote_references(source: str) -> list[str]:
    """The URLs a client would load by itself from the cleaned body, in order."""
    reading = _Reading(strip_remote=False)
    reading.clean(source)
    return reading.remote
