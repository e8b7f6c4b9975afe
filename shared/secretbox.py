"""Authenticated encryption for secrets at rest (cluster tokens, cloud keys, webhook secrets).

AES-256-GCM with a 96-bit random nonce. The stored form is
``v1.<key id>.<base64url(nonce | ciphertext+tag)>``: the key id lets an old
key keep decrypting after rotation (``MAE_OLD_SECRET_KEYS``), and the caller's
``context`` (e.g. ``"cluster:prod-1:token"``) is bound in as associated data,
so a ciphertext copied onto another row does not decrypt there.
"""
from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nameko.extensions import DependencyProvider


class SecretBoxError(Exception):
    """The secret cannot be decrypted: wrong key, wrong context or tampered."""


def generate_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _decode_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except Exception as exc:  # binascii.Error
        raise SecretBoxError("secret key is not valid base64") from exc
    if len(key) != 32:
        raise SecretBoxError("secret key must be 32 bytes (base64 of 32 random bytes)")
    return key


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"mae-secretbox" + key).hexdigest()[:8]


class SecretBox:
    def __init__(self, key: str, old_keys: list[str] | tuple[str, ...] = ()):
        primary = _decode_key(key)
        self._primary_id = _key_id(primary)
        self._keys = {self._primary_id: AESGCM(primary)}
        for text in old_keys:
            old = _decode_key(text)
            self._keys.setdefault(_key_id(old), AESGCM(old))

    @classmethod
    def from_config(cls, config: dict) -> "SecretBox":
        key = config.get("SECRET_KEY") or os.environ.get("MAE_SECRET_KEY")
        if not key:
            raise SecretBoxError("MAE_SECRET_KEY is not set; secrets cannot be stored")
        old = config.get("OLD_SECRET_KEYS") or ""
        return cls(key, [k for k in str(old).split(",") if k.strip()])

    def encrypt(self, plaintext: str, context: str = "") -> str:
        nonce = os.urandom(12)
        sealed = self._keys[self._primary_id].encrypt(nonce, plaintext.encode(), context.encode())
        return "v1.%s.%s" % (self._primary_id, base64.urlsafe_b64encode(nonce + sealed).decode())

    def decrypt(self, token: str, context: str = "") -> str:
        try:
            version, key_id, body = token.split(".", 2)
            raw = base64.urlsafe_b64decode(body.encode())
        except (ValueError, AttributeError) as exc:
            raise SecretBoxError("not a sealed secret") from exc
        if version != "v1" or key_id not in self._keys or len(raw) < 12 + 16:
            raise SecretBoxError("sealed with an unknown key or format")
        try:
            return self._keys[key_id].decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag as exc:
            raise SecretBoxError("secret was tampered with or sealed for another context") from exc



class Secrets(DependencyProvider):
    """Hands a service its ``SecretBox``."""

    def setup(self):
        self.box = SecretBox.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.box
