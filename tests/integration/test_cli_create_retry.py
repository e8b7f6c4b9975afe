"""`mae deploy` / `mae rollback` survive a lost answer without starting a second deploy:
every attempt carries one Idempotency-Key (the server's side is tests/e2e/test_idempotency.py).
MAE is played by a local HTTP server that records what the client sends."""
import pytest

from mae_cli.client import ApiError, Client
from mae_cli.config import Settings
from tests.fakes import FakeHTTPServer

UNAVAILABLE = {"error": {"code": "unavailable", "message": "The deploy service did not answer."}}


class FakeMae(FakeHTTPServer):
    def answer(self, request):
        return 202, {"record_id": 7}


@pytest.fixture
def mae():
    with FakeMae() as fake:
        yield fake


def client(fake):
    return Client(Settings(url=fake.base_url, token="t", url_from="env", token_from="env"), timeout=5)


def keys(fake):
    return [r.headers.get("idempotency-key") for r in fake.received]


def test_a_503_and_a_409_are_retried_with_the_same_key(mae):
    mae.fail_next(1, 503, UNAVAILABLE)
    mae.fail_next(1, 409, {"error": {"code": "conflict", "message": "still being processed"}})
    answer = client(mae).create("/apps/shop/services/web/versions/v1/deploy", {"env": "test"}, pause=0.01)
    assert answer == {"record_id": 7}
    assert len(mae.received) == 3
    assert len(set(keys(mae))) == 1 and keys(mae)[0]


def test_each_deploy_has_its_own_key(mae):
    c = client(mae)
    c.create("/records/1/rollback", pause=0.01)
    c.create("/records/1/rollback", pause=0.01)
    assert len(set(keys(mae))) == 2


def test_a_refusal_is_not_retried_and_a_lasting_outage_gives_up(mae):
    mae.fail_next(1, 403, {"error": {"code": "forbidden", "message": "Developers deploy to test only."}})
    with pytest.raises(ApiError) as refused:
        client(mae).create("/apps/shop/services/web/versions/v1/deploy", {"env": "prod"}, pause=0.01)
    assert refused.value.status == 403 and len(mae.received) == 1

    mae.fail_always(503, UNAVAILABLE)
    with pytest.raises(ApiError) as down:
        client(mae).create("/apps/shop/services/web/versions/v1/deploy", {"env": "test"}, attempts=3, pause=0.01)
    assert down.value.status == 503 and len(mae.received) == 1 + 3
