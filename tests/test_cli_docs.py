"""What the docs promise about the command line: every command listed, completion, README facts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
from click.testing import CliRunner

from relay.cli import cli
from relay.mail.addresses import display_address

ROOT = Path(__file__).parent.parent
CLI_DOC = (ROOT / "docs" / "cli.md").read_text()


def command_paths(group: click.Group, prefix: str = "relay") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from command_paths(command, path)


def documented_commands() -> set[str]:
    """Command paths named in code spans: `relay participant address add|remove EMAIL ADDRESS`."""
    found = set()
    for span in re.findall(r"`(relay [^`]*)`", CLI_DOC):
        paths = [""]
        for word in span.split():
            if not re.fullmatch(r"[a-z][\w-]*(\|[a-z][\w-]*)*", word):
                break
            paths = [f"{path} {choice}".strip() for path in paths for choice in word.split("|")]
            found.update(paths)
    return found


def test_docs_list_every_command_and_its_options():
    documented = documented_commands()
    missing = []
    for path, command in command_paths(cli):
        if path not in documented:
            missing.append(path)
        for parameter in command.params:
            opts = parameter.opts if isinstance(parameter, click.Option) else ()
            if opts and not any(re.search(rf"(?<![\w-]){opt}\b", CLI_DOC) for opt in opts):
                missing.append(f"{path} {opts[0]}")
    assert missing == []


def test_docs_show_the_json_shape_of_every_json_command():
    with_json = [
        path
        for path, command in command_paths(cli)
        if any("--json" in getattr(p, "opts", ()) for p in command.params)
    ]
    assert set(with_json) >= {
        "relay participant list",
        "relay participant show",
        "relay pair list",
        "relay pair show",
        "relay log",
        "relay held",
        "relay watch",
        "relay queue",
        "relay queue list",
        "relay status",
    }
    sections = re.split(r"\n(?=#{2,3} )", CLI_DOC)
    paragraphs = CLI_DOC.split("\n\n")
    for path in with_json:
        short = path.removeprefix("relay ")
        own = [part for part in sections if part.startswith(f"### `{path}")]
        described = any("JSON" in part for part in own) or any(
            "JSON" in paragraph and f"`{short}`" in paragraph for paragraph in paragraphs
        )
        assert described, path


def test_shell_completion_completes_subcommands():
    result = CliRunner().invoke(
        cli,
        [],
        prog_name="relay",
        env={
            "_RELAY_COMPLETE": "bash_complete",
            "COMP_WORDS": "relay participant a",
            "COMP_CWORD": "2",
        },
    )
    assert result.output.split() == ["plain,add", "plain,address"]
    assert "_RELAY_COMPLETE=bash_source relay" in CLI_DOC


def test_readme_from_header_is_the_one_the_relay_writes():
    sent = display_address("Ana via Mentor Relay", "7hk2qvmx9c4rt@relay.localhost")
    readme = (ROOT / "README.md").read_text()
    assert f"`From: {sent}`" in readme


def test_gitignore_keeps_what_serve_writes_next_to_relay_toml():
    ignored = (ROOT / ".gitignore").read_text().split()
    for written in ("relay.db", "relay.pid", "outbox/"):
        assert written in ignored or f"/{written}" in ignored
