"""Migration 0019 on a database with CI links sealed the old way (bound to app and service
names): with the key it re-seals them to their link ids; without it it marks them, and
migration 0023 run later with the key, or the deploy service's first read, finishes the job."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.deploy.domain import ci_links
from services.deploy.models import CILink
from shared.migrate import upgrade
from shared.secretbox import SecretBox, SecretBoxError, generate_key
from tests.migrated import database_at

LINKS = [(1, "shop", "web"), (2, "shop", "api")]


@pytest.fixture
def old_database(infra, request):
    """A database at revision 0017 holding two name-bound CI links; dropped afterwards."""
    key = generate_key()
    box = SecretBox(key)
    with database_at(infra, "0017", f"m0019_{request.node.name[-12:].strip('_[]')}") as (url, engine):
        with engine.begin() as conn:
            for link_id, app, service in LINKS:
                conn.execute(text(
                    "INSERT INTO deploy_ci_links (id, app, service, provider, server, repo, image, token_sealed, "
                    "webhook_secret_sealed, updated_by, updated_at) VALUES (:id, :app, :svc, 'drone', "
                    "'https://drone.example.com', 'team/web', 'registry.example.com/team/web', :token, :hook, "
                    "'x', NOW())"),
                    {"id": link_id, "app": app, "svc": service,
                     "token": box.encrypt(f"token-{link_id}", f"ci:{app}/{service}:token"),
                     "hook": box.encrypt(f"hook-{link_id}", f"ci:{app}/{service}:webhook")})
        yield url, engine, key, box


def sealed(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT id, token_sealed, webhook_secret_sealed FROM deploy_ci_links "
                                 "ORDER BY id")).fetchall()


def assert_sealed_to_ids(engine, box):
    for link_id, token, hook in sealed(engine):
        assert box.decrypt(token, f"ci-link:{link_id}:token") == f"token-{link_id}"
        assert box.decrypt(hook, f"ci-link:{link_id}:webhook") == f"hook-{link_id}"
        with pytest.raises(SecretBoxError):
            box.decrypt(hook, "ci:shop/web:webhook")


def test_with_the_key_every_link_is_resealed_to_its_id(old_database, monkeypatch):
    url, engine, key, box = old_database
    monkeypatch.setenv("MAE_SECRET_KEY", key)
    upgrade(url)
    assert_sealed_to_ids(engine, box)


def without_the_key(monkeypatch):
    monkeypatch.delenv("MAE_SECRET_KEY", raising=False)
    monkeypatch.delenv("MAE_OLD_SECRET_KEYS", raising=False)


def test_without_the_key_links_are_marked_and_each_value_is_resealed_on_first_read(old_database, monkeypatch):
    url, engine, key, box = old_database
    without_the_key(monkeypatch)
    upgrade(url)   # 0019 marks, 0023 has no key either and leaves the marks
    rows = sealed(engine)
    assert rows and all(t.startswith(ci_links.LEGACY) and h.startswith(ci_links.LEGACY) for _, t, h in rows)
    with Session(engine) as db:
        for link_id, _, _ in LINKS:
            assert ci_links.webhook_secret(db.get(CILink, link_id), box) == f"hook-{link_id}"   # re-sealed
        db.commit()
    for link_id, token, hook in sealed(engine):
        assert token.startswith(ci_links.LEGACY)   # not read yet
        assert box.decrypt(hook, f"ci-link:{link_id}:webhook") == f"hook-{link_id}"
    with Session(engine) as db:
        assert ci_links.webhook_secret(db.get(CILink, 1), box) == "hook-1"   # a second read opens by id


def test_what_0019_marked_without_the_key_a_later_upgrade_with_the_key_reseals(old_database, monkeypatch):
    url, engine, key, box = old_database
    without_the_key(monkeypatch)
    upgrade(url, "0022")
    assert all(t.startswith(ci_links.LEGACY) and h.startswith(ci_links.LEGACY) for _, t, h in sealed(engine))
    monkeypatch.setenv("MAE_SECRET_KEY", key)
    upgrade(url)   # 0023
    assert_sealed_to_ids(engine, box)
