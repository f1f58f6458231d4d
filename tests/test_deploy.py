"""`relay setup postfix` and `relay setup dns`, and that docs/postfix.md shows what they print."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from relay.cli import cli
from relay.ops import postfix
from tests.tlskeys import dkim_txt_record, rsa_key, write_private_key

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "postfix.md"


def run(config: Path, *arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-c", str(config), *arguments])
    return result.exit_code, result.output


def code_blocks(text: str, language: str | None = None) -> list[str]:
    """The fenced blocks of a Markdown text (of one language, if given), in order."""
    blocks: list[str] = []
    current: list[str] | None = None
    current_language = ""
    for line in text.splitlines(keepends=True):
        if line.startswith("```") and current is None:
            current, current_language = [], line[3:].strip()
        elif line.startswith("```"):
            if language is None or current_language == language:
                blocks.append("".join(current or []))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def docs_config(folder: Path) -> Path:
    path = folder / "relay.toml"
    path.write_text(code_blocks(DOCS.read_text(), "toml")[0])
    return path


def shown_output(command: str) -> str:
    """The output the docs page shows under `$ relay -c ... COMMAND`."""
    for block in code_blocks(DOCS.read_text()):
        first, _, rest = block.partition("\n")
        if first.startswith("$ relay") and first.endswith(command):
            return rest
    raise AssertionError(f"docs/postfix.md shows no `{command}`")


def test_docs_show_what_setup_postfix_prints(tmp_path: Path):
    code, output = run(docs_config(tmp_path), "setup", "postfix")
    assert code == 0
    assert output == shown_output("setup postfix")


def test_docs_show_what_setup_dns_prints_but_the_key(tmp_path: Path):
    config = docs_config(tmp_path)
    write_private_key(rsa_key(), tmp_path / "dkim.key")
    code, output = run(config, "setup", "dns", "--mx", "mx.example.org")
    assert code == 0
    without_key = [line for line in output.splitlines() if "_domainkey" not in line]
    shown = shown_output("setup dns --mx mx.example.org").splitlines()
    assert without_key == [line for line in shown if "_domainkey" not in line]


def test_docs_show_the_shipped_drop_in():
    drop_in = (ROOT / "contrib" / "mentor-relay-postfix.conf").read_text()
    assert code_blocks(DOCS.read_text(), "ini") == [drop_in]


def test_unit_and_drop_in_pass_systemd_analyze(tmp_path: Path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (.ci/run installs systemd)"
    shutil.copy(ROOT / "contrib" / "mentor-relay.service", tmp_path)
    (tmp_path / "mentor-relay.service.d").mkdir()
    shutil.copy(
        ROOT / "contrib" / "mentor-relay-postfix.conf",
        tmp_path / "mentor-relay.service.d" / "postfix.conf",
    )
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / "mentor-relay.service")],
        env=os.environ | {"SYSTEMD_UNIT_PATH": f"{tmp_path}:"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        # The relay is not installed under /opt here; anything else is a fault in the files.
        if line.strip() and "/opt/mentor-relay/bin/relay is not executable" not in line
    ]
    assert complaints == []


def write(folder: Path, body: str) -> Path:
    path = folder / "relay.toml"
    path.write_text('[relay]\ndomain = "relay.example.org"\nmax_recipients = 7\n' + body)
    return path


def test_setup_postfix_smtp_by_default(tmp_path: Path):
    code, output = run(write(tmp_path, ""), "setup", "postfix", "--postfix-dir", "/srv/pf/")
    assert code == 0
    blocks = postfix.parse(output)
    assert list(blocks) == [
        "/srv/pf/main.cf",
        "/srv/pf/master.cf",
        "/srv/pf/mentor-relay-transport",
        "relay.toml",
    ]
    assert "transport_maps = texthash:/srv/pf/mentor-relay-transport\n" in blocks["/srv/pf/main.cf"]
    assert "mentor-relay_destination_recipient_limit = 7\n" in blocks["/srv/pf/main.cf"]
    assert (
        "mentor-relay unix  -       -       n       -       -       smtp\n"
        in (blocks["/srv/pf/master.cf"])
    )
    # The smarthost is port 25 by default: Postfix's own MX listener; no second one.
    assert " inet " not in blocks["/srv/pf/master.cf"]
    assert blocks["/srv/pf/mentor-relay-transport"].endswith(
        "relay.example.org  mentor-relay:[127.0.0.1]:2525\n"
    )
    assert 'protocol = "smtp"\nhost = "127.0.0.1"\nport = 2525' in blocks["relay.toml"]


def test_setup_postfix_lmtp_over_tcp_and_a_socket(tmp_path: Path):
    config = write(tmp_path, '[smtp]\nprotocol = "lmtp"\nport = 2424\n[smarthost]\nport = 10025\n')
    blocks = postfix.parse(run(config, "setup", "postfix")[1])
    assert blocks["/etc/postfix/mentor-relay-transport"].endswith(
        "relay.example.org  mentor-relay:inet:[127.0.0.1]:2424\n"
    )
    assert "127.0.0.1:10025 inet  n" in blocks["/etc/postfix/master.cf"]
    # --lmtp on an SMTP relay: the default socket, and the relay.toml lines to match.
    blocks = postfix.parse(run(write(tmp_path, ""), "setup", "postfix", "--lmtp")[1])
    assert blocks["/etc/postfix/mentor-relay-transport"].endswith(
        "mentor-relay:unix:/run/mentor-relay/lmtp.sock\n"
    )
    assert (
        'socket = "/run/mentor-relay/lmtp.sock"\nsocket_group = "postfix"' in (blocks["relay.toml"])
    )


def test_setup_dns_prints_the_public_half_of_the_key(tmp_path: Path):
    key = rsa_key()
    write_private_key(key, tmp_path / "dkim.pem")
    config = write(tmp_path, '[dkim]\nselector = "s1"\nkey_file = "dkim.pem"\n')
    code, output = run(config, "setup", "dns")
    assert code == 0
    line = next(line for line in output.splitlines() if line.startswith("s1._domainkey."))
    value = "".join(re.findall(r'"([^"]*)"', line))
    expected_key = dkim_txt_record(key).decode().split("p=")[1]
    assert value == f"v=DKIM1; k=rsa; h=sha256; p={expected_key}"
    assert all(len(part) <= 255 for part in re.findall(r'"([^"]*)"', line))
    assert "relay.example.org.  IN MX 10 relay.example.org." in output
    assert '"v=DMARC1; p=reject; adkim=s; aspf=s"' in output
    assert sum(line.startswith("; ") for line in output.splitlines()) == 4


def test_setup_dns_without_dkim_and_with_a_bad_key(tmp_path: Path):
    code, output = run(write(tmp_path, ""), "setup", "dns", "--mx", "mx.example.org")
    assert code == 0
    assert "IN MX 10 mx.example.org." in output
    assert '"v=DMARC1; p=none"' in output
    assert "_domainkey" not in output
    missing = write(tmp_path, '[dkim]\nselector = "s1"\nkey_file = "nothere.pem"\n')
    code, output = run(missing, "setup", "dns")
    assert code == 1
    assert output.startswith("Error: [dkim] key_file ") and "cannot read" in output
    (tmp_path / "bad.pem").write_text("not a key")
    bad = write(tmp_path, '[dkim]\nselector = "s1"\nkey_file = "bad.pem"\n')
    code, output = run(bad, "setup", "dns")
    assert code == 1
    assert output.startswith("Error: [dkim] key_file is not an RSA private key")
    assert "Traceback" not in output
