"""``REDIS_URL``'s Sentinel form (shared/redis.py): what it names, and clear errors."""
from __future__ import annotations

import pytest

from shared.outbound.guard import infrastructure
from shared.redis import SentinelUrl, endpoints


def test_a_sentinel_url_names_the_sentinels_the_master_and_the_database():
    url = SentinelUrl("redis+sentinel://:s%40cret@10.0.0.1:26380,[fd00::2]:26381,sentinel-3/mae-cache/2"
                      "?sentinel_password=sp")
    assert url.sentinels == [("10.0.0.1", 26380), ("fd00::2", 26381), ("sentinel-3", 26379)]
    assert (url.master, url.db, url.username, url.password) == ("mae-cache", 2, None, "s@cret")
    assert url.sentinel_auth == {"password": "sp"}
    plain = SentinelUrl("redis+sentinel://a:1/mae")
    assert (plain.db, plain.password, plain.sentinel_auth) == (0, None, {})


@pytest.mark.parametrize("bad, says", [
    ("redis+sentinel://a:1/", "<master-name>"),
    ("redis+sentinel:///mae/0", "<master-name>"),
    ("redis+sentinel://a:1/mae/zero", "<master-name>"),
    ("redis+sentinel://a:1/mae/0/extra", "<master-name>"),
    ("redis+sentinel://a:port/mae", "'a:port' is not host:port"),
])
def test_a_malformed_sentinel_url_is_refused_with_a_readable_message(bad, says):
    with pytest.raises(ValueError, match="REDIS_URL") as raised:
        SentinelUrl(bad)
    assert says in str(raised.value)


def test_every_sentinel_is_infrastructure_the_outbound_guard_refuses():
    assert endpoints("redis://cache.internal:6380/0") == [("cache.internal", 6380)]
    found = {(e.host, e.port) for e in infrastructure(
        {"REDIS_URL": "redis+sentinel://S1.internal:26379,s2.internal:26379/mae/0"})}
    assert found == {("s1.internal", 26379), ("s2.internal", 26379)}
