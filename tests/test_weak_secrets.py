"""Weak configured secrets are refused at start-up with a message that says how to make a
good one; generated secrets pass; `cpsync users create` never takes the password as an
argument."""

from __future__ import annotations

import base64
import os
import random
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cpsync.accounts.crypto import (
    KeyConfigError,
    generate_key_spec,
    load_keyring,
    load_secret_key,
    parse_keys,
)
from cpsync.accounts.passwords import verify_password
from cpsync.cli import app as cli
from cpsync.secret_strength import bits_per_symbol, repeats_a_pattern, text_weakness
from cpsync.settings import Settings

CPSYNC = Path(sys.executable).with_name("cpsync")
runner = CliRunner()
WEAK_TEXT = [
    "a" * 32,  # one character
    "x",  # one character, short
    "changeme",  # a placeholder
    "password" * 4,  # a word repeated
    "0123456789abcdef" * 2,  # a pattern repeated
    "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccc",  # long enough, three characters
    secrets.token_urlsafe(16),  # random but 22 characters
]


def _eight_distinct_bytes() -> bytes:
    """32 bytes drawn from 8 values, in no repeating order: passed the old check."""
    key = bytes(random.Random(8).choices(range(1, 9), k=32))
    assert len(set(key)) == 8
    assert not repeats_a_pattern(key)
    return key


def _cpsync(args: list[str], data_dir: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPSYNC_")}
    env["CPSYNC_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [CPSYNC, *args],
        env=env,
        cwd=data_dir.parent,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("variable", ["secret_key", "cron_secret"])
@pytest.mark.parametrize("value", WEAK_TEXT, ids=[f"weak{i}" for i in range(len(WEAK_TEXT))])
def test_weak_text_secrets_are_refused_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, **{variable: value})  # type: ignore[arg-type]
    message = str(refused.value)
    assert f"CPSYNC_{variable.upper()} is too weak" in message
    assert "secrets.token_urlsafe(32)" in message


@pytest.mark.parametrize(
    "key",
    [
        _eight_distinct_bytes(),
        bytes(range(16)) * 2,  # 16 distinct bytes, but a pattern repeated
        b"\x00" * 31 + b"\x01",
    ],
    ids=["eight-distinct-bytes", "a-pattern-repeated", "one-byte-differs"],
)
def test_weak_encryption_keys_are_refused_naming_the_variable(key: bytes) -> None:
    with pytest.raises(KeyConfigError) as refused:
        parse_keys("k1:" + base64.b64encode(key).decode())
    assert "CPSYNC_ENCRYPTION_KEYS: key 'k1' is too weak" in refused.value.message
    assert "cpsync keys generate" in refused.value.message


def test_generated_secrets_pass(tmp_path: Path) -> None:
    for _ in range(300):
        parse_keys(generate_key_spec())
        Settings(
            _env_file=None,
            secret_key=secrets.token_urlsafe(32),
            cron_secret=secrets.token_hex(16),
        )
    # The defaults: nothing configured, both generated into the data dir.
    defaults = Settings(_env_file=None, data_dir=tmp_path)
    assert load_keyring(defaults).newest_id == "local"
    assert len(load_secret_key(defaults)) >= 32


def test_the_estimate() -> None:
    assert bits_per_symbol("a" * 32) == 0
    assert bits_per_symbol("ab" * 16) == 1
    assert bits_per_symbol(bytes(range(32))) == 5
    assert repeats_a_pattern("abcabcabc")
    assert not repeats_a_pattern("abcabcabd")
    assert text_weakness(secrets.token_urlsafe(32)) is None


def test_a_weak_secret_stops_a_command_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CPSYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CPSYNC_SECRET_KEY", "a" * 32)
    weak_key = runner.invoke(cli, ["migrate"])
    assert weak_key.exit_code == 2
    assert "CPSYNC_SECRET_KEY is too weak: it repeats a shorter pattern" in weak_key.output
    assert "secrets.token_urlsafe(32)" in weak_key.output
    monkeypatch.delenv("CPSYNC_SECRET_KEY")
    spec = "k1:" + base64.b64encode(_eight_distinct_bytes()).decode()
    monkeypatch.setenv("CPSYNC_ENCRYPTION_KEYS", spec)
    weak_keys = runner.invoke(cli, ["migrate"])
    assert weak_keys.exit_code == 2
    assert "CPSYNC_ENCRYPTION_KEYS: key 'k1' is too weak" in weak_keys.output
    assert "cpsync keys generate" in weak_keys.output


def test_users_create_reads_the_password_from_stdin(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    created = _cpsync(
        ["users", "create", "--email", "Root@Example.org", "--admin", "--password-stdin"],
        data_dir,
        stdin="a long password with spaces\n",
    )
    assert created.returncode == 0, created.stderr
    assert "created admin root@example.org" in created.stdout
    with sqlite3.connect(data_dir / "cpsync.db") as connection:
        (stored,) = connection.execute(
            "SELECT password_hash FROM users WHERE email = 'root@example.org'"
        ).fetchone()
    assert verify_password(stored, "a long password with spaces")


def test_users_create_takes_no_password_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CPSYNC_DATA_DIR", str(tmp_path / "data"))
    empty = runner.invoke(
        cli, ["users", "create", "--email", "b@example.org", "--password-stdin"], input=""
    )
    assert empty.exit_code == 2
    assert "no password on standard input" in empty.output
    argument = ["users", "create", "--email", "c@example.org", "--password", "a long password"]
    on_the_command_line = runner.invoke(cli, argument)
    assert on_the_command_line.exit_code == 2
    assert "No such option: --password" in on_the_command_line.output
