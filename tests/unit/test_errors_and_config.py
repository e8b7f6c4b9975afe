from nameko.exceptions import deserialize, serialize

from shared import errors
from shared.config import ROOT, load_config


def test_every_domain_error_survives_rpc_serialisation_with_message_and_details():
    for cls in errors.HTTP_ERRORS:
        exc = cls("Cluster prod-1 was not found.", {"cluster": "prod-1"})
        back = deserialize(serialize(exc))
        assert type(back) is cls
        assert back.message == "Cluster prod-1 was not found."
        assert back.details == {"cluster": "prod-1"}


def test_error_table_maps_each_type_to_the_api_status():
    assert errors.http_status(errors.NotFound()) == 404
    assert errors.http_status(errors.Invalid()) == 422
    assert errors.http_status(errors.Unavailable()) == 503
    assert errors.http_status(errors.RateLimited()) == 429

    class ClusterMissing(errors.NotFound):
        pass

    assert errors.http_status(ClusterMissing()) == 404


def test_error_without_message_uses_its_readable_default():
    assert errors.Conflict().message.startswith("It was changed by someone else")


def test_config_expands_environment_with_defaults(monkeypatch):
    monkeypatch.setenv("DB_URL", "mysql+pymysql://u:p@db:3306/x")
    monkeypatch.delenv("REDIS_URL", raising=False)
    cfg = load_config(ROOT / "config" / "development.yaml")
    assert cfg["DB_URL"] == "mysql+pymysql://u:p@db:3306/x"
    assert cfg["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert cfg["SERVICES"] == ["auth", "org", "deploy", "cluster", "server", "notify"]
    assert isinstance(cfg["RPC_TIMEOUT"], int)


def test_every_environment_file_has_the_same_keys():
    keys = [set(load_config(ROOT / "config" / f"{env}.yaml"))
            for env in ("development", "test", "production")]
    assert keys[0] == keys[1] == keys[2]
