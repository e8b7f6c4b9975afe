"""Production config has no defaults for the broker, the database, Redis or the secret key: a
process started without one it uses refuses to start, naming it — it never falls back to
``guest@127.0.0.1``. What a process needs follows from its dependencies: the gateway starts
without a database URL or a secret key."""
from __future__ import annotations

import pytest
from nameko.containers import ServiceContainer

from gateway.service import GatewayService
from services.deploy.service import DeployService
from services.org.service import OrgService
from shared.config import ROOT, MissingSetting, load_config

SECRETS = ("AMQP_URI", "DB_URL", "REDIS_URL", "MAE_SECRET_KEY")


@pytest.fixture
def production(monkeypatch, config):
    """config/production.yaml as a pod reads it, with every Secret's variable unset."""
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    return load_config(ROOT / "config" / "production.yaml")


def test_production_config_has_no_fallback_for_secrets(production):
    for key in ("AMQP_URI", "DB_URL", "REDIS_URL", "SECRET_KEY"):
        assert not production.get(key), key


def test_a_service_without_its_secrets_refuses_to_start_and_names_them(production):
    with pytest.raises(MissingSetting) as refused:
        ServiceContainer(DeployService, production)
    message = str(refused.value)
    for name in ("AMQP_URI", "DB_URL", "REDIS_URL", "SECRET_KEY"):
        assert name in message
    assert "mae-database Secret" in message and "guest" not in message


def test_each_process_asks_only_for_what_it_uses(production, config):
    with pytest.raises(MissingSetting) as refused:
        ServiceContainer(OrgService, {**production, "AMQP_URI": config["AMQP_URI"], "REDIS_URL": config["REDIS_URL"]})
    assert "DB_URL" in str(refused.value) and "SECRET_KEY" not in str(refused.value)  # org seals nothing
    # The gateway holds no database password and no secret key.
    gateway = ServiceContainer(GatewayService, {**production, "AMQP_URI": config["AMQP_URI"],
                                                "REDIS_URL": config["REDIS_URL"]})
    assert gateway.service_name == "gateway"
