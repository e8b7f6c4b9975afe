"""Migration 0019 on a database with CI links sealed the old way (bound to app and service
names): with the key it re-seals them to their link ids; without it it marks them, and the
deploy service's re-seal (start-up and first read) finishes the job."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from services.deploy.domain import ci_links
from services.deploy.models import CILink
from shared.migrate import upgrade
from shared.secretbox import SecretBox, SecretBoxError, generate_key

LINKS = [(1, "shop", "web"), (2, "shop", "api")]


@pytest.fixture
def old_database(infra, request):
    """A database at revision 0017 holding two name-bound CI links; dropped afterwards."""
    name = f"{infra.database}_m0019_{request.node.name[-12:].strip('_[]')}"
    url = infra.db_url.replace(f"/{infra.database}?", f"/{name}?")
    server = create_engine("mysql+pymysql://root:@127.0.0.1:3306/")
    with server.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    upgrade(url, "0017")
    key = generate_key()
    box = SecretBox(key)
    engine = create_engine(url)
    with engine.begin() as conn:
        for link_id, app, service in LINKS:
            conn.execute(text(
                "INSERT INTO deploy_ci_links (id, app, service, provider, server, repo, image, token_sealed, "
                "webhook_secret_sealed, updated_by, updated_at) VALUES (:id, :app, :svc, 'drone', "
                "'https://drone.example.com', 'team/web', 'registry.example.com/team/web', :token, :hook, 'x', NOW())"),
                {"id": link_id, "app": app, "svc": service,
                 "token": box.encrypt(f"token-{link_id}", f"ci:{app}/{service}:token"),
                 "hook": box.encrypt(f"hook-{link_id}", f"ci:{app}/{service}:webhook")})
    try:
        yield url, engine, key, box
    finally:
        engine.dispose()
        with server.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


def sealed(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT id, token_sealed, webhook_secret_sealed FROM deploy_ci_links "
                                 "ORDER BY id")).fetchall()


def test_with_the_key_every_link_is_resealed_to_its_id(old_database, monkeypatch):
    url, engine, key, box = old_database
    monkeypatch.setenv("MAE_SECRET_KEY", key)
    upgrade(url)
    for link_id, token, hook in sealed(engine):
        assert box.decrypt(token, f"ci-link:{link_id}:token") == f"token-{link_id}"
        assert box.decrypt(hook, f"ci-link:{link_id}:webhook") == f"hook-{link_id}"
        with pytest.raises(SecretBoxError):
            box.decrypt(hook, "ci:shop/web:webhook")


def test_without_the_key_links_are_marked_and_resealed_by_the_service(old_database, monkeypatch):
    url, engine, key, box = old_database
    monkeypatch.delenv("MAE_SECRET_KEY", raising=False)
    monkeypatch.delenv("MAE_OLD_SECRET_KEYS", raising=False)
    upgrade(url)
    rows = sealed(engine)
    assert rows and all(t.startswith(ci_links.LEGACY) and h.startswith(ci_links.LEGACY) for _, t, h in rows)
    with Session(engine) as db:
        first = db.get(CILink, 1)
        assert ci_links.webhook_secret(first, box) == "hook-1"   # first read: re-sealed
        db.commit()
        assert ci_links.reseal_legacy(db, box) == 2   # link 1's token and link 2 still marked
        db.commit()
    for link_id, token, hook in sealed(engine):
        assert box.decrypt(token, f"ci-link:{link_id}:token") == f"token-{link_id}"
        assert box.decrypt(hook, f"ci-link:{link_id}:webhook") == f"hook-{link_id}"
