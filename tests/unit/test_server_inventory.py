"""Field rules of the inventory and reading ECS answers: pure functions."""
from datetime import datetime

import pytest
from alibabacloud_ecs20140526 import models

from services.server.domain import inventory
from services.server.domain.providers import instance_from_sdk, parse_aliyun_time
from shared.errors import Invalid
from tests.fakes.aliyun_ecs import instance


def test_clean_normalises_and_defaults():
    values = inventory.clean({"name": " web-1 ", "ip": "10.0.0.1", "memory_gb": 8,
                              "expires_at": "2033-03-10T08:00:00+08:00"}, partial=False)
    assert values["name"] == "web-1" and values["provider"] == "manual"
    assert values["memory_gb"] == 8.0
    assert values["expires_at"] == datetime(2033, 3, 10, 0, 0)  # stored as UTC


@pytest.mark.parametrize("data, field", [
    ({"ip": "10.0.0.1"}, "name"),
    ({"name": "a", "ip": "10.0.0.256"}, "ip"),
    ({"name": "a", "ip": "10.0.0.1", "cpu": True}, "cpu"),
    ({"name": "a", "ip": "10.0.0.1", "memory_gb": 0}, "memory_gb"),
    ({"name": "a", "ip": "10.0.0.1", "provider": "Ali Yun"}, "provider"),
    ({"name": "a", "ip": "10.0.0.1", "expires_at": "31/12/2033"}, "expires_at"),
    ({"name": "a", "ip": "10.0.0.1", "id": 3}, "id"),
])
def test_clean_names_the_invalid_field(data, field):
    with pytest.raises(Invalid) as caught:
        inventory.clean(data, partial=False)
    assert caught.value.details == {"field": field}


def test_partial_clean_only_touches_given_fields():
    assert inventory.clean({"notes": "x"}, partial=True) == {"notes": "x"}


def test_aliyun_times():
    assert parse_aliyun_time("2031-01-15T16:00Z") == datetime(2031, 1, 15, 16, 0)
    assert parse_aliyun_time("2099-12-31T15:59Z") is None  # pay-as-you-go: no expiry
    assert parse_aliyun_time("") is None


def test_instance_from_an_sdk_model_prefers_the_public_ip():
    raw = instance("i-1", "cn-hangzhou", name="web", public_ip="47.1.2.3", memory_mb=3072,
                   expired_time="2031-01-15T16:00Z")
    item = models.DescribeInstancesResponseBodyInstancesInstance().from_map(raw)
    got = instance_from_sdk(item, "cn-hangzhou")
    assert (got.instance_id, got.name, got.ip, got.cpu, got.memory_gb) == ("i-1", "web", "47.1.2.3", 2, 3.0)
    private = models.DescribeInstancesResponseBodyInstancesInstance().from_map(
        instance("i-2", "cn-hangzhou", private_ip="172.16.0.9"))
    assert instance_from_sdk(private, "cn-hangzhou").ip == "172.16.0.9"
