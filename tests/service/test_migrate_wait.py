"""The init container of every service pod: ``python -m shared.migrate --wait`` holds a new
version back until the migration Job has brought the schema to the image's heads."""
from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.migrate import ensure_database, schema_state, upgrade, wait


def test_waits_for_the_schema_then_lets_the_pod_start(config):
    url = make_url(config["DB_URL"]).set(database=f"mae_wait_{uuid.uuid4().hex[:8]}").render_as_string(
        hide_password=False)
    ensure_database(url)
    try:
        ready, said = schema_state(url)
        assert not ready and "waiting for" in said  # an empty database: nothing migrated
        now = [0.0]  # an injected clock: sleeping moves it on
        assert wait(url, timeout=10, interval=3, clock=lambda: now[0],
                    sleep=lambda s: now.__setitem__(0, now[0] + s)) is False
        assert now[0] == 12  # asked at 0, 3, 6, 9 and 12 s, then gave up
        upgrade(url)
        ready, said = schema_state(url)
        assert ready, said
        assert wait(url, timeout=1) is True
        # A newer image migrated already (a revision this image does not know): still ready.
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('9999_from_a_newer_image')"))
        engine.dispose()
        assert schema_state(url)[0] is True
    finally:
        engine = create_engine(make_url(url).set(database=""))
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{make_url(url).database}`"))
        engine.dispose()
