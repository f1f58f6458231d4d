"""Messages as real clients write them, and a one-call way to run the rules."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from relay.mail.text import MailView
from relay.rules.base import Hit, RuleContext
from relay.rules.engine import build_rules, run_rules
from relay.rules.settings import RulesConfig

PAIR = "k7m2q9@relay.example.org"
CONTEXT = RuleContext(
    pair_address=PAIR,
    relay_domain="relay.example.org",
    sender_role="mentee",
    messages_from_sender_in_pair=10,
    sender_messages_last_hour=1,
)


def parse(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def plain(body: str, subject: str = "Coursework", charset: str = "utf-8") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Sam Jones <sam.jones@example.net>"
    msg["To"] = PAIR
    msg["Subject"] = subject
    msg.set_content(body, charset=charset)
    return parse(msg.as_bytes())


def check(
    msg: EmailMessage, config: RulesConfig | None = None, context: RuleContext = CONTEXT
) -> list[Hit]:
    return run_rules(build_rules(config), MailView.from_message(msg), context)


def rules_hit(msg: EmailMessage, config: RulesConfig | None = None) -> set[str]:
    return {hit.rule for hit in check(msg, config)}


def flagged(hits: list[Hit]) -> list[str]:
    return [span.text for hit in hits for span in hit.spans]


# A Gmail-style multipart/alternative reply; the HTML part is quoted-printable.
GMAIL_QP_HTML = b"""\
MIME-Version: 1.0
Date: Tue, 7 May 2024 16:02:11 +0100
Message-ID: <CAK3x=abc123@mail.gmail.com>
Subject: Re: Work experience
From: Jess Patel <jess.patel.1998@gmail.com>
To: k7m2q9@relay.example.org
Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f6"

--000000000000a1b2c3d4e5f6
Content-Type: text/plain; charset="UTF-8"

Thanks for the advice about the interview!

--000000000000a1b2c3d4e5f6
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

<div dir=3D"ltr">Thanks for the advice about the interview!<div>If it&#39;s=
 easier, ring me on <b>07700</b>&nbsp;900=
123 after school.</div></div>

--000000000000a1b2c3d4e5f6--
"""

# Thunderbird-style plain text in base64 with a handle in it.
THUNDERBIRD_BASE64 = b"""\
Message-ID: <5f1e2d3c-aaaa-bbbb-cccc-0123456789ab@example.net>
Date: Wed, 8 May 2024 19:45:00 +0100
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
Content-Language: en-GB
To: k7m2q9@relay.example.org
From: Sam Jones <sam.jones@example.net>
Subject: Weekend
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: base64

""" + __import__("base64").encodebytes(
    "Had a great week 😀 — find me on Insta, I'm @sam.j_2008\n".encode()
)

# Outlook-style ISO-8859-1 quoted-printable with an accented name and a phone.
OUTLOOK_LATIN1 = b"""\
From: =?iso-8859-1?Q?Ren=E9e_Dubois?= <renee@example.fr>
To: "k7m2q9@relay.example.org" <k7m2q9@relay.example.org>
Subject: =?iso-8859-1?Q?R=E9union?=
Date: Thu, 9 May 2024 08:15:00 +0000
Message-ID: <AM0PR01MB1234@EURPRD01.prod.outlook.com>
Content-Language: fr-FR
MIME-Version: 1.0
Content-Type: text/plain; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable

Tr=E8s bien, appelez-moi au 06 12 34 56 78 apr=E8s les cours.
"""
