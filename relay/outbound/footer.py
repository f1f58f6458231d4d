"""The safeguarding footer on forwarded mail: a pure function.

Owns adding [safeguarding] footer (by default: messages are read by the
programme's coordinators to keep everyone safe) to the first plain-text and
the first HTML body part of an outbound message, so that participants are
told, on every message, that their mail is monitored. Attachments are never
touched. Parts are read and rewritten with relay.mail.parts, like scrubbing.
"""

from __future__ import annotations

import html
import re
from email.message import EmailMessage

from relay.mail.parts import decode_text, replace_text

_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def add_footer(message: EmailMessage, footer: str) -> None:
    footer = footer.strip()
    if not footer:
        return
    done: set[str] = set()
    for part in message.walk():
        content_type = part.get_content_type()
        if part.is_multipart() or content_type not in ("text/plain", "text/html"):
            continue
        if content_type in done or part.get_content_disposition() == "attachment":
            continue
        text = decode_text(part)
        if content_type == "text/plain":
            new = text.rstrip("\r\n") + "\n\n-- \n" + footer + "\n"
        else:
            note = f'<p style="color:#666;font-size:small">{html.escape(footer)}</p>'
            found = _BODY_END.search(text)
            new = text[: found.start()] + note + text[found.start() :] if found else text + note
        # The one way a part's text is rewritten (as scrubbing and redaction do): its
        # Content-* headers stay, its charset stays when the text fits.
        replace_text(part, new)
        done.add(content_type)
