"""The DNS records to publish for the relay domain (`relay setup dns`).

Pure: the domain, the MX host and the DKIM key's PEM in, zone-file lines
out, each record under a comment saying what it is for:

- MX: where mail for pair addresses is delivered (the Postfix in front);
- SPF: only the MX host sends mail for the domain (the relay sends through
  it, with envelope senders on the relay domain);
- DKIM: the public half of ``[dkim] key_file`` at ``<selector>._domainkey``,
  written as dkimpy's dknewkey writes it (``v=DKIM1; k=rsa; h=sha256; p=...``),
  split into 255-character strings as zone files require;
- DMARC: ``p=reject`` once outbound mail is DKIM-signed (everything the relay
  sends is then aligned twice over), ``p=none`` until then.

The public key is taken from the private key's modulus and exponent with
dkimpy's own key parser and encoded here as a SubjectPublicKeyInfo (DER), so
no openssl binary is needed.
"""

from __future__ import annotations

import base64

from dkim.crypto import UnparsableKeyError, parse_pem_private_key

from relay.errors import ConfigError

# rsaEncryption, 1.2.840.113549.1.1.1, with its NULL parameters.
_RSA_ALGORITHM = bytes.fromhex("300d06092a864886f70d0101010500")
_TXT_CHUNK = 255


def dkim_txt(private_key_pem: bytes) -> str:
    """The DKIM TXT record's value for an RSA private key in PEM."""
    try:
        key = parse_pem_private_key(private_key_pem)
    except (UnparsableKeyError, ValueError, IndexError) as error:
        raise ConfigError(f"[dkim] key_file is not an RSA private key in PEM: {error}") from None
    rsa_public = _der(0x30, _der_int(key["modulus"]) + _der_int(key["publicExponent"]))
    spki = _der(0x30, _RSA_ALGORITHM + _der(0x03, b"\x00" + rsa_public))
    return "v=DKIM1; k=rsa; h=sha256; p=" + base64.b64encode(spki).decode()


def records(domain: str, mx_host: str, dkim_selector: str = "", dkim_value: str = "") -> str:
    zone = domain.rstrip(".") + "."
    mx = mx_host.rstrip(".") + "."
    lines = [
        f"; MX: mail for {domain} (every pair address) is delivered to {mx_host}",
        f"{zone}  IN MX 10 {mx}",
        "",
        f"; SPF: only the hosts in the MX record send mail for {domain}",
        f'{zone}  IN TXT "v=spf1 mx -all"',
        "",
    ]
    if dkim_selector and dkim_value:
        lines += [
            f"; DKIM: the public key receivers check the relay's signatures with"
            f" ([dkim] selector {dkim_selector})",
            f"{dkim_selector}._domainkey.{zone}  IN TXT {_quoted(dkim_value)}",
            "",
            "; DMARC: receivers refuse mail claiming to come from"
            f" {domain} that is not signed by the relay",
            f'_dmarc.{zone}  IN TXT "v=DMARC1; p=reject; adkim=s; aspf=s"',
        ]
    else:
        lines += [
            "; DKIM: none ([dkim] selector and key_file are not set, so mail is not signed)",
            "",
            "; DMARC: report only; publish p=reject once [dkim] signs the relay's mail",
            f'_dmarc.{zone}  IN TXT "v=DMARC1; p=none"',
        ]
    return "\n".join(lines) + "\n"


def _quoted(value: str) -> str:
    chunks = [value[at : at + _TXT_CHUNK] for at in range(0, len(value), _TXT_CHUNK)]
    if len(chunks) == 1:
        return f'"{chunks[0]}"'
    return "( " + " ".join(f'"{chunk}"' for chunk in chunks) + " )"


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        length = bytes([size])
    else:
        octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(octets)]) + octets
    return bytes([tag]) + length + content


def _der_int(value: int) -> bytes:
    # Two's complement, shortest form: a leading zero byte keeps a high bit from reading as a sign.
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))
