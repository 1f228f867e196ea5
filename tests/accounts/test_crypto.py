"""AES-256-GCM with versioned keys."""

from __future__ import annotations

import base64
import stat

import pytest

from cpsync.accounts.crypto import (
    DecryptionError,
    KeyConfigError,
    generate_key_spec,
    load_keyring,
    load_secret_key,
    parse_keys,
)
from cpsync.settings import Settings


def test_round_trip_and_fresh_nonces() -> None:
    ring = parse_keys(generate_key_spec("a"))
    first = ring.encrypt("refresh-token", "p")
    second = ring.encrypt("refresh-token", "p")
    assert first != second
    assert first.startswith("v1.a.")
    assert ring.decrypt(first, "p") == "refresh-token"


def test_purpose_is_bound() -> None:
    ring = parse_keys(generate_key_spec("a"))
    sealed = ring.encrypt("x", "oauth_links.refresh_token_encrypted")
    with pytest.raises(DecryptionError):
        ring.decrypt(sealed, "feed_tokens.token_encrypted")


def test_tampering_is_detected() -> None:
    ring = parse_keys(generate_key_spec("a"))
    sealed = ring.encrypt("secret", "p")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(DecryptionError):
        ring.decrypt(flipped, "p")
    with pytest.raises(DecryptionError):
        ring.decrypt("v1.a.short", "p")


def test_old_keys_still_read_and_rotate_moves_to_the_newest() -> None:
    old = generate_key_spec("old")
    sealed = parse_keys(old).encrypt("secret", "p")
    ring = parse_keys(f"{generate_key_spec('new')},{old}")
    assert ring.decrypt(sealed, "p") == "secret"
    rotated = ring.rotate(sealed, "p")
    assert rotated is not None
    assert ring.key_id_of(rotated) == "new"
    assert ring.decrypt(rotated, "p") == "secret"
    assert ring.rotate(rotated, "p") is None
    with pytest.raises(DecryptionError):
        parse_keys(generate_key_spec("new")).decrypt(sealed, "p")


@pytest.mark.parametrize(
    "spec",
    [
        "k1:changeme",
        "k1:" + base64.b64encode(b"\x00" * 32).decode(),
        "k1:" + base64.b64encode(b"short").decode(),
        "k1:not base64!",
        "no-colon",
        "bad id!:" + base64.b64encode(bytes(range(32))).decode(),
        # Two keys under one id; fixed bytes so the test's id is the same in every process.
        "same:"
        + base64.b64encode(bytes(range(32))).decode()
        + ",same:"
        + base64.b64encode(bytes(range(1, 33))).decode(),
        "",
    ],
)
def test_bad_key_settings_are_refused(spec: str) -> None:
    with pytest.raises(KeyConfigError):
        parse_keys(spec)


def test_development_keys_are_generated_once_with_private_permissions(tmp_path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    first = load_keyring(settings)
    again = load_keyring(settings)
    assert first == again
    mode = stat.S_IMODE((tmp_path / "data" / "secret.key").stat().st_mode)
    assert mode == 0o600
    assert load_secret_key(settings) == load_secret_key(settings)


def test_placeholder_secret_key_is_refused_even_past_the_settings_check(tmp_path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    with pytest.raises(KeyConfigError, match="CPSYNC_SECRET_KEY is too weak"):
        load_secret_key(settings.model_copy(update={"secret_key": "changeme"}))
