"""Tokens: random, shown once, stored only as a SHA-256 hash (made by the auth service,
recognised and hashed by the gateway too, hence in ``shared``).

``mae_s_…`` is a session token (from an OAuth login), ``mae_p_…`` a personal
access token. 32 random bytes make guessing hopeless, so a fast hash is the
right one (a slow password hash would only slow every request).
"""
from __future__ import annotations

import hashlib
import secrets

KINDS = {"session": "s", "personal": "p"}


def new_token(kind: str) -> str:
    return f"mae_{KINDS[kind]}_{secrets.token_urlsafe(32)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(token: str) -> str:
    """Enough of the token to recognise it in a list, too little to use it."""
    return token[:10]


def looks_like_token(token: str) -> bool:
    return isinstance(token, str) and token.startswith("mae_") and 20 < len(token) < 200
