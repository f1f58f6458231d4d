"""relay.toml: a broken file is an error that names the key and the file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from relay.commands.setup import describe
from relay.config import load_config
from relay.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "relay.toml"
    path.write_text(text)
    return path


def test_shipped_relay_toml_is_valid():
    """Only that it loads: an operator may edit its values (port, domain ...) before serving."""
    shipped = Path(__file__).parent.parent / "relay.toml"
    config = load_config(shipped)
    assert config.relay.domain
    assert not config.matching_problem
    assert describe(config).startswith("# effective settings from")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[relay]\ndomain = "x.test"\ncolour = "red"\n', "unknown key 'colour' in [relay]"),
        ('[relay]\ndomain = "x.test"\n[smpt]\nport = 25\n', "unknown section [smpt]"),
        ("[relay]\nprogramme_name = 'P'\n", "[relay] domain is required"),
        (
            '[relay]\ndomain = "x.test"\n[smtp]\nport = "twenty"\n',
            "[smtp] port: expected a whole number",
        ),
        (
            '[relay]\ndomain = "x.test"\n[smarthost]\ntls = "maybe"\n',
            "[smarthost] tls: expected one of",
        ),
        (
            '[relay]\ndomain = "x.test"\n[delivery]\nretry_first = "soon"\n',
            "retry_first: expected a duration",
        ),
        (
            '[relay]\ndomain = "x.test"\n[smtp]\nenabled = "yes"\n',
            "[smtp] enabled: expected true or false",
        ),
        ("[relay\n", "not valid TOML"),
    ],
)
def test_broken_config_names_key_and_file(tmp_path: Path, text: str, message: str):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.toml")


def test_environment_overrides_and_masking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path, '[relay]\ndomain = "x.test"\n[delivery]\nretry_first = "2m"\n')
    monkeypatch.setenv("RELAY_DATABASE_URL", "postgresql+psycopg://relay:s3cret@db.internal/relay")
    monkeypatch.setenv("RELAY_SMARTHOST_PASSWORD", "hunter2")
    monkeypatch.setenv("RELAY_SMTP_PORT", "2626")
    config = load_config(path)
    assert config.database.url.endswith("relay:s3cret@db.internal/relay")
    assert config.smarthost.password == "hunter2"
    assert config.smtp.port == 2626
    assert config.delivery.retry_first == timedelta(minutes=2)
    shown = describe(config)
    assert "s3cret" not in shown and "hunter2" not in shown
    assert "postgresql+psycopg://relay:***@db.internal/relay" in shown


def test_bad_environment_value_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path, '[relay]\ndomain = "x.test"\n')
    monkeypatch.setenv("RELAY_SMTP_PORT", "lots")
    with pytest.raises(ConfigError, match="RELAY_SMTP_PORT"):
        load_config(path)


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path, '[relay]\ndomain = "env.test"\n')
    monkeypatch.setenv("RELAY_CONFIG", str(path))
    monkeypatch.chdir(tmp_path.parent)
    assert load_config(None).relay.domain == "env.test"


def test_relative_paths_follow_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path, '[relay]\ndomain = "x.test"\n[delivery]\nmaildir = "mail/out"\n')
    monkeypatch.chdir("/")
    config = load_config(path)
    assert config.delivery.maildir == tmp_path / "mail" / "out"
    assert config.database.url == f"sqlite:///{tmp_path / 'relay.db'}"
