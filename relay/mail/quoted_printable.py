"""A text body in quoted-printable: the stdlib's encoding, written faster.

``EmailMessage.set_content(text, cte="quoted-printable")`` encodes with
``email.quoprimime.body_encode``, which quotes by ``str.translate`` through
a 256-entry Python list: every character of the body is a Python-level
lookup, about 1 ms per 50 KB, once per rewritten part of every forward (the
footer rewrites the text of most letters, and clients send non-ASCII
letters in quoted-printable). `body` gives the same string: the bytes to
quote are found in C (one ``bytes.translate`` marking them, one split), each
replaced from a table, and the lines broken exactly as ``body_encode``
breaks them (its loop, kept as it is). Text with many bytes to quote goes
to ``body_encode`` itself.
"""

from __future__ import annotations

from email import quoprimime

# quoprimime's _QUOPRI_BODY_ENCODE_MAP leaves these bytes as they are (tab, line ends,
# printable ASCII but "="); every other byte becomes "=XX".
_SAFE = b"\t\n\r" + bytes(range(32, 127)).replace(b"=", b"")
_MARKED = bytes.maketrans(
    bytes(range(256)), bytes(byte if byte in _SAFE else ord("=") for byte in range(256))
)
_QUOTED = [b"=%02X" % byte for byte in range(256)]
# Past this share of bytes to quote, quoting them one by one in Python costs more than the
# stdlib's translate (mostly non-ASCII text is rarely quoted-printable: see relay.mail.parts).
_MOST_TO_QUOTE = 16


def body(data: bytes, max_line_length: int) -> str:
    """What set_content writes as the payload for these encoded text bytes in quoted-printable.

    That is ``quoprimime.body_encode(b"\\n".join(lines) + b"\\n" decoded as latin-1,
    max_line_length)`` with ``lines = data.splitlines()``.
    """
    normal = b"\n".join(data.splitlines()) + b"\n"
    # Every byte to quote is marked "=" (itself one to quote), so the pieces between
    # marks are the bytes left as they are, in order, one byte to quote after each.
    pieces = normal.translate(_MARKED).split(b"=")
    if len(pieces) * _MOST_TO_QUOTE > len(normal):
        return quoprimime.body_encode(normal.decode("latin-1"), max_line_length)
    out: list[bytes] = []
    at = 0
    for piece in pieces[:-1]:
        at += len(piece)
        out += (piece, _QUOTED[normal[at]])
        at += 1
    out.append(pieces[-1])
    return _break_lines(b"".join(out).decode("ascii"), max_line_length)


def _break_lines(quoted: str, max_line_length: int, eol: str = "\n") -> str:
    """body_encode's line breaking of an already quoted body (soft breaks, end white space)."""
    if max_line_length < 4:
        raise ValueError("maxlinelen must be at least 4")
    soft_break = "=" + eol
    room_for_equals = max_line_length - 1
    encoded: list[str] = []
    append = encoded.append
    for line in quoted.splitlines():
        start = 0
        last_start = len(line) - 1 - max_line_length
        while start <= last_start:
            stop = start + room_for_equals
            if line[stop - 2] == "=":  # never split an escape sequence
                append(line[start : stop - 1])
                start = stop - 2
            elif line[stop - 1] == "=":
                append(line[start:stop])
                start = stop - 1
            else:
                append(line[start:stop] + "=")
                start = stop
        if line and line[-1] in " \t":  # white space at a line's end is quoted or protected
            room = start - last_start
            if room >= 3:
                end = _quote_one(line[-1])
            elif room == 2:
                end = line[-1] + soft_break
            else:
                end = soft_break + _quote_one(line[-1])
            append(line[start:-1] + end)
        else:
            append(line[start:])
    if quoted and quoted[-1] in "\r\n":
        append("")
    return eol.join(encoded)


def _quote_one(character: str) -> str:
    return f"={ord(character):02X}"
