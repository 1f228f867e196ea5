"""Secrets at rest: AES-256-GCM under versioned keys, and the app's own secret key.

A ciphertext is `v1.<key id>.<base64url(nonce || ciphertext || tag)>`: the key id travels
with the value, so any key in the ring can still read it, and `KeyRing.rotate` re-encrypts
it under the newest key. The associated data names the column a value belongs to, so a
value copied into another column does not decrypt.

Keys come from `CPSYNC_ENCRYPTION_KEYS` (`id:base64key,...`, newest first). Without it, a
key is generated once into `{data_dir}/secret.key` (mode 0600): fine for one machine,
not for several processes on different hosts.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cpsync.errors import CpsyncError
from cpsync.secret_strength import PLACEHOLDERS, check_text_secret, key_weakness
from cpsync.settings import Settings

_VERSION = "v1"
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_NONCE_BYTES = 12


class KeyConfigError(CpsyncError):
    """The configured keys are missing, malformed or obviously placeholders."""


class DecryptionError(CpsyncError):
    """No key in the ring reads this value, or it was tampered with."""


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyConfigError("at least one encryption key is needed")

    @property
    def newest_id(self) -> str:
        return self.keys[0][0]

    def encrypt(self, plaintext: str, purpose: str) -> str:
        key_id, key = self.keys[0]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), purpose.encode())
        return f"{_VERSION}.{key_id}.{_b64(nonce + sealed)}"

    def decrypt(self, token: str, purpose: str) -> str:
        key_id, blob = _split(token)
        key = dict(self.keys).get(key_id)
        if key is None:
            raise DecryptionError(f"no key {key_id!r} in CPSYNC_ENCRYPTION_KEYS")
        try:
            plain = AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], purpose.encode())
        except InvalidTag as exc:
            raise DecryptionError("ciphertext does not authenticate") from exc
        return plain.decode()

    def key_id_of(self, token: str) -> str:
        return _split(token)[0]

    def rotate(self, token: str, purpose: str) -> str | None:
        """The value under the newest key, or None when it already is."""
        if self.key_id_of(token) == self.newest_id:
            return None
        return self.encrypt(self.decrypt(token, purpose), purpose)


def _split(token: str) -> tuple[str, bytes]:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _VERSION:
        raise DecryptionError("not a cpsync ciphertext")
    try:
        blob = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except (binascii.Error, ValueError) as exc:
        raise DecryptionError("ciphertext is not base64") from exc
    if len(blob) < _NONCE_BYTES + 16:
        raise DecryptionError("ciphertext too short")
    return parts[1], blob


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def generate_key_spec(key_id: str | None = None) -> str:
    """A new `id:base64key` entry for `CPSYNC_ENCRYPTION_KEYS`."""
    return f"{key_id or 'k' + secrets.token_hex(3)}:{base64.b64encode(os.urandom(32)).decode()}"


def parse_keys(spec: str) -> KeyRing:
    keys: list[tuple[str, bytes]] = []
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        key_id, sep, encoded = entry.partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise KeyConfigError(
                "each encryption key must be `id:base64key` (id: letters, digits, - _)"
            )
        keys.append((key_id, _decode_key(key_id, encoded)))
    if len({key_id for key_id, _ in keys}) != len(keys):
        raise KeyConfigError("encryption key ids must be unique")
    return KeyRing(tuple(keys))


def _decode_key(key_id: str, encoded: str) -> bytes:
    if encoded.strip().lower() in PLACEHOLDERS:
        raise _key_error(key_id, "is a placeholder")
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _key_error(key_id, "is not base64") from exc
    if len(key) != 32:
        raise _key_error(key_id, f"must be 32 bytes, not {len(key)}")
    weakness = key_weakness(key)
    if weakness is not None:
        raise _key_error(key_id, f"is too weak: {weakness}")
    return key


def _key_error(key_id: str, problem: str) -> KeyConfigError:
    return KeyConfigError(
        f"CPSYNC_ENCRYPTION_KEYS: key {key_id!r} {problem}. "
        "Generate a key with `cpsync keys generate` and put it first."
    )


def load_keyring(settings: Settings) -> KeyRing:
    if settings.encryption_keys.strip():
        return parse_keys(settings.encryption_keys)
    path = settings.data_dir / "secret.key"
    return parse_keys(_read_or_create(path, generate_key_spec("local")))


def load_secret_key(settings: Settings) -> bytes:
    """The key that signs cookies and derives CSRF tokens."""
    configured = settings.secret_key.strip()
    if configured:
        # Settings refuse a weak value already; this covers settings built by model_copy.
        try:
            check_text_secret("CPSYNC_SECRET_KEY", configured)
        except ValueError as exc:
            raise KeyConfigError(str(exc)) from exc
        return configured.encode()
    path = settings.data_dir / "session.key"
    return _read_or_create(path, secrets.token_urlsafe(48)).encode()


def _read_or_create(path: Path, fresh: str) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    # The data folder holds the keys and the database: its owner's only.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it first; use theirs.
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(fresh + "\n")
    return fresh
