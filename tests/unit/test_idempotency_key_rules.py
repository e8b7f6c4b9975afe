"""Idempotency-Key values and request fingerprints (pure; services/deploy/domain/request_keys.py).

Recalling and remembering keys on MariaDB is tested in tests/service/test_idempotency_store.py.
"""
from __future__ import annotations

import uuid

import pytest

from services.deploy.domain import request_keys
from shared.errors import Invalid


@pytest.mark.parametrize("key", [str(uuid.uuid4()), "a", "~" * 255, "wave-7", "!#$%&'*+-.^_`|~0aZ"])
def test_visible_ascii_keys_up_to_255_characters_are_taken_as_sent(key):
    assert request_keys.check_key(key) == key


def test_no_key_means_an_ordinary_request():
    assert request_keys.check_key(None) is None


@pytest.mark.parametrize("key", ["", " ", "two words", "x" * 256, "tab\there", "line\n", "clé", "\x7f", 42,
                                 b"bytes", ["k"]])
def test_any_other_key_is_refused_naming_the_header(key):
    with pytest.raises(Invalid) as caught:
        request_keys.check_key(key)
    assert caught.value.details == {"field": "Idempotency-Key"}


def test_a_fingerprint_is_the_request_whatever_the_order_of_its_parts():
    a = request_keys.fingerprint(app="shop", service="web", version="v1", clusters=["test", "prod"])
    b = request_keys.fingerprint(clusters=["test", "prod"], version="v1", service="web", app="shop")
    assert a == b and len(a) == 64 and int(a, 16) >= 0


def test_any_difference_in_the_request_is_another_fingerprint():
    base = dict(app="shop", service="web", version="v1", clusters=["test", "prod"])
    prints = {request_keys.fingerprint(**base)}
    for change in ({"version": "v2"}, {"clusters": ["prod", "test"]}, {"clusters": ["test"]},
                   {"app": "shop2"}, {"extra": None}):
        prints.add(request_keys.fingerprint(**{**base, **change}))
    assert len(prints) == 6
    # Values JSON cannot hold are written as text, consistently.
    assert request_keys.fingerprint(at=uuid.UUID(int=1)) == request_keys.fingerprint(at=str(uuid.UUID(int=1)))
