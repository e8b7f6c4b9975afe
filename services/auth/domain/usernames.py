"""Usernames: what a person is called in MAE, never who they are.

Who someone is comes from their identity at a login provider (provider + subject,
``auth_identities``). The username is only a label chosen for them at their first
login, from what the provider suggests:

* ``canonical``: the suggestion folded to lower-case ASCII letters, digits, ``.``,
  ``_`` and ``-`` (accents and compatibility forms fold to their base letter, so
  ``ADMİN``, ``Ａｄｍｉｎ`` and ``Admin`` all become ``admin``; anything else becomes
  ``-``). Names are compared exactly (binary collation) — the folding happens once,
  here, not silently in the database.
* ``key``: the same folding without the ASCII restriction, stored in a unique column,
  so that no two people ever have names that differ only in case or accents (older
  accounts were named before the canonical form existed).
* When the name is taken, or is one nobody may take by logging in (``admin``,
  ``root``, the bootstrap account's name…), a visible suffix is added: ``alice``,
  ``alice-2``, ``alice-3``.
"""
from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable, Iterator

MAX_LENGTH = 64
FALLBACK = "user"
# Names no login may get as they are: they would pass for the platform or its administrator.
RESERVED = frozenset({"admin", "administrator", "root", "system", "mae", "superuser", "operator"})
_NOT_ALLOWED = re.compile(r"[^a-z0-9._-]+")
_DASHES = re.compile(r"-{2,}")
_EDGES = "._-"


def key(name: str) -> str:
    """The uniqueness key: NFKD, combining marks dropped, case-folded, NFKC."""
    decomposed = unicodedata.normalize("NFKD", name or "")
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFKC", bare.casefold())[:MAX_LENGTH]


def canonical(suggestion: str) -> str:
    """The suggestion as a username: lower-case ASCII letters, digits, ``.``, ``_``, ``-``.
    Empty when nothing of it is left."""
    folded = key(unicodedata.normalize("NFKC", suggestion or ""))
    ascii_only = _DASHES.sub("-", _NOT_ALLOWED.sub("-", folded))
    return ascii_only.strip(_EDGES)[:MAX_LENGTH].strip(_EDGES)


def choose(suggestions: Iterable[str]) -> str:
    """The first suggestion (claims in order of preference) that leaves a name, else ``user``."""
    for suggestion in suggestions:
        name = canonical(suggestion or "")
        if name:
            return name
    return FALLBACK


def with_suffix(base: str, n: int) -> str:
    suffix = f"-{n}"
    return base[:MAX_LENGTH - len(suffix)].rstrip(_EDGES) + suffix


def candidates(base: str, reserved: Iterable[str] = ()) -> Iterator[str]:
    """``base`` (unless reserved), then ``base-2``, ``base-3``…; random after many."""
    taboo = {key(r) for r in RESERVED | set(reserved)}
    if key(base) not in taboo:
        yield base
    for n in range(2, 1000):
        candidate = with_suffix(base, n)
        if key(candidate) not in taboo:
            yield candidate
    while True:
        yield with_suffix(base, secrets.randbelow(10**9))
