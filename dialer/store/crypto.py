"""Data keys: phone numbers and names encrypted at rest, and a keyed hash to find them.

Each encrypted column holds text `v1:<key id>:<base64(nonce || ciphertext || tag)>`:
AES-256-GCM, a random 12-byte nonce per value, and the column's name (`leads.e164`) as
associated data, so a value copied into another column does not decrypt. Lookups, unique
constraints and joins use `lookup_hash` instead: HMAC-SHA256 of the E.164 number (hex).

Where the keys come from (`DataKeys.from_environment`):

- `DIALER_DATA_KEYS`: comma-separated `id:base64key` entries of 32-byte keys. The first
  encrypts; every one decrypts. To rotate: put a new key first, run `reencrypt` (every
  value moves to it), then drop the old entry.
- `DIALER_HASH_KEY`: base64 of 32 bytes, the lookup hash's key. It cannot be rotated in
  place: the database refuses a hash key it was not written with (`key_check`).
- neither set (the embedded default): the key file `$DIALER_KEY_FILE`, by default
  `$XDG_CONFIG_HOME/dialer/keys.json` (`~/.config/...`), made with fresh random keys on
  first use (mode 0600) with a warning that production should set the variables. Its
  `data_keys` and `hash_key` have the variables' syntax, so they can be moved there.

Errors name the variable or file, never key material; a value that does not decrypt
names its column and key id, never the value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dialer.errors import ConfigError, StoreError

logger = logging.getLogger(__name__)

DATA_KEYS_ENV = "DIALER_DATA_KEYS"
HASH_KEY_ENV = "DIALER_HASH_KEY"
KEY_FILE_ENV = "DIALER_KEY_FILE"
KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT = "v1"
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_FINGERPRINT_MESSAGE = b"dialer key fingerprint v1"


def default_key_file(environ: Mapping[str, str] | None = None) -> Path:
    """`$DIALER_KEY_FILE`, else `keys.json` in the user's dialer configuration folder."""
    env = os.environ if environ is None else environ
    explicit = env.get(KEY_FILE_ENV)
    if explicit:
        return Path(explicit)
    config = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "dialer" / "keys.json"


class DataKeys:
    """The keys that seal stored phone numbers and names, and key their lookup hash.

    - `encrypt(column, text)` gives a new random-nonce ciphertext under the current key
      (the first data key) each time; `decrypt(column, stored)` opens one under any key
      it knows, for the same column only;
    - `decrypt` raises StoreError (not retryable) for a value that is not in the `v1`
      form, names a key it does not know, was altered, or belongs to another column;
    - `lookup_hash(e164)` is deterministic (64 hex characters) for a given hash key;
    - nothing here logs, and no message or repr carries key material or a value.
    """

    __slots__ = ("_ciphers", "_current", "_fingerprints", "_hash")

    def __init__(self, data_keys: Sequence[tuple[str, bytes]], hash_key: bytes) -> None:
        if not data_keys:
            raise ConfigError("at least one data key is needed")
        ids = [key_id for key_id, _ in data_keys]
        if len(set(ids)) != len(ids):
            raise ConfigError("data key ids must be unique")
        for key_id, key in data_keys:
            if not _KEY_ID.fullmatch(key_id) or len(key) != KEY_BYTES:
                raise ConfigError(f"a data key needs an id of letters, digits, '.', '_' or "
                                  f"'-' and {KEY_BYTES} bytes")
        if len(hash_key) != KEY_BYTES:
            raise ConfigError(f"the hash key must be {KEY_BYTES} bytes")
        self._current = ids[0]
        self._ciphers = {key_id: AESGCM(key) for key_id, key in data_keys}
        self._hash = hmac.new(hash_key, digestmod=hashlib.sha256)
        self._fingerprints = {f"data:{key_id}": _fingerprint(key) for key_id, key in data_keys}
        self._fingerprints["hash"] = _fingerprint(hash_key)

    @classmethod
    def generate(cls, key_id: str = "k1") -> DataKeys:
        """Fresh random keys, held in memory only (tests, throwaway stores)."""
        return cls([(key_id, secrets.token_bytes(KEY_BYTES))], secrets.token_bytes(KEY_BYTES))

    @classmethod
    def parse(cls, data_keys: str, hash_key: str, *, data_source: str = DATA_KEYS_ENV,
              hash_source: str = HASH_KEY_ENV) -> DataKeys:
        """Keys from the variables' text; ConfigError naming `data_source` or
        `hash_source` (never the text) if either is malformed."""
        return cls(_parse_data_keys(data_keys, data_source), _decode_key(hash_key, hash_source))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> DataKeys:
        """Keys from `DIALER_DATA_KEYS` and `DIALER_HASH_KEY`, or, when neither is set,
        from the key file (made on first use). ConfigError when only one is set or
        either is malformed."""
        env = os.environ if environ is None else environ
        data, hashed = env.get(DATA_KEYS_ENV, "").strip(), env.get(HASH_KEY_ENV, "").strip()
        if data and hashed:
            return cls.parse(data, hashed)
        if data or hashed:
            given, missing = (DATA_KEYS_ENV, HASH_KEY_ENV) if data else (HASH_KEY_ENV,
                                                                          DATA_KEYS_ENV)
            raise ConfigError(f"{given} is set but {missing} is not: set both, or neither "
                              f"to use the key file")
        return load_key_file(default_key_file(env))

    @property
    def current_id(self) -> str:
        """The id of the key new values are encrypted under."""
        return self._current

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every data key's id, the current one first."""
        return tuple(self._ciphers)

    def fingerprints(self) -> dict[str, str]:
        """`hash` and `data:<id>` -> a one-way digest of that key (safe to store), so a
        database can tell that it is given the keys it was written with."""
        return dict(self._fingerprints)

    def encrypt(self, column: str, text: str) -> str:
        """`text` sealed for `column` under the current key."""
        return self.encrypter(column)(text)

    def encrypter(self, column: str) -> Callable[[str], str]:
        """`encrypt` for one column, with its key and associated data bound (bulk use)."""
        seal = self._ciphers[self._current].encrypt
        associated = column.encode()
        prefix = f"{FORMAT}:{self._current}:"
        urandom, b64encode = os.urandom, base64.b64encode

        def encrypt(text: str) -> str:
            nonce = urandom(NONCE_BYTES)
            return prefix + b64encode(nonce + seal(nonce, text.encode(), associated)).decode()

        return encrypt

    def decrypt(self, column: str, stored: str) -> str:
        """The text sealed in `stored` for `column`; StoreError if it cannot be opened."""
        key_id, blob = _split(column, stored)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise StoreError(f"a stored {column} value is encrypted under data key {key_id!r}, "
                             f"which is not configured (known: {', '.join(self._ciphers)}); "
                             f"add it to {DATA_KEYS_ENV}")
        try:
            raw = base64.b64decode(blob, validate=True)
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], column.encode()).decode()
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise StoreError(f"a stored {column} value does not decrypt under data key "
                             f"{key_id!r}: the key is wrong, or the value was altered or "
                             f"moved from another column") from exc

    def lookup_hash(self, e164: str) -> str:
        """The keyed hash (HMAC-SHA256, hex) that stands for `e164` in lookups."""
        digest = self._hash.copy()
        digest.update(e164.encode())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return f"DataKeys(current={self._current!r}, keys={list(self._ciphers)!r})"


def key_id_of(column: str, stored: str) -> str:
    """The id of the key `stored` is encrypted under (StoreError if not `v1` form)."""
    return _split(column, stored)[0]


def _split(column: str, stored: str) -> tuple[str, str]:
    version, _, rest = stored.partition(":")
    key_id, _, blob = rest.partition(":")
    if version != FORMAT or not blob or not _KEY_ID.fullmatch(key_id):
        raise StoreError(f"a stored {column} value is not an encrypted value "
                         f"({FORMAT}:<key id>:...); is the database migrated?")
    return key_id, blob


def _fingerprint(key: bytes) -> str:
    return hmac.new(key, _FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()


def _parse_data_keys(text: str, source: str) -> list[tuple[str, bytes]]:
    entries = [entry.strip() for entry in text.split(",")]
    keys: list[tuple[str, bytes]] = []
    for number, entry in enumerate(entries, start=1):
        key_id, colon, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not colon or not _KEY_ID.fullmatch(key_id):
            raise ConfigError(f"{source}: entry {number} is not `id:base64key` (an id of "
                              f"letters, digits, '.', '_' or '-', at most 32)")
        if key_id in dict(keys):
            raise ConfigError(f"{source}: key id {key_id!r} appears twice")
        keys.append((key_id, _decode_key(encoded, f"{source}: key {key_id!r}")))
    return keys


def _decode_key(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{source} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{source} must be {KEY_BYTES} bytes (base64 of "
                          f"{KEY_BYTES} random bytes), got {len(key)}")
    return key


def new_key_text() -> str:
    """A fresh 32-byte key in base64, as the variables take it."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def load_key_file(path: Path) -> DataKeys:
    """The keys in the key file at `path`, made with fresh keys if it does not exist."""
    if not path.exists():
        _create_key_file(path)
    if path.stat().st_mode & 0o077:
        logger.warning("key file %s is readable by other users; chmod 600 it", path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"key file {path} cannot be read as JSON "
                          f"({type(exc).__name__})") from None
    if not isinstance(document, dict) or not all(
            isinstance(document.get(name), str) for name in ("data_keys", "hash_key")):
        raise ConfigError(f"key file {path} needs text fields `data_keys` and `hash_key`")
    logger.info("data keys from key file %s", path)
    return DataKeys.parse(document["data_keys"], document["hash_key"],
                          data_source=f"key file {path}: data_keys",
                          hash_source=f"key file {path}: hash_key")


def _create_key_file(path: Path) -> None:
    """Write fresh keys to `path` (mode 0600) unless another process wins the race."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    document = {"data_keys": f"k1:{new_key_text()}", "hash_key": new_key_text()}
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
        os.link(draft, path)  # atomic; fails if a concurrent process made it first
    except FileExistsError:
        return
    finally:
        draft.unlink(missing_ok=True)
    logger.warning("generated new data keys in %s; in production, set %s and %s from the "
                   "environment instead (and keep a copy: without the keys the stored "
                   "numbers and names are lost)", path, DATA_KEYS_ENV, HASH_KEY_ENV)
