"""deploy: a CI link's sealed token and webhook secret are bound to the link's row id
(``ci-link:<id>:<what>``), no longer to the app and service names (``ci:<app>/<service>:<what>``),
so nothing sealed for one link opens for a later link of the same names.

With the secret key at hand (``MAE_SECRET_KEY``/``MAE_OLD_SECRET_KEYS`` or the config's
``SECRET_KEY``, as the migration Job has it from ``mae-secrets``) every row is re-sealed
here. Without it (alembic run by hand, no key in the environment) each value that is
not re-sealed is marked ``name-bound:`` instead; migration 0023 re-seals marked values
when it runs with the key, and the deploy service does on first read
(``services/deploy/domain/ci_links.py``). Only a marked value is ever opened with the old
name-bound context.

Downgrade does the reverse with the key; without it, it only removes the marks (values
re-sealed to ids then no longer open for the old code: re-link those services).

Revision ID: 0019
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

from migrations.sealing import CI_LINK_COLUMNS, NAME_BOUND, secret_box

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None

LEGACY, COLUMNS = NAME_BOUND, CI_LINK_COLUMNS


def _by_id(link_id, what):
    return f"ci-link:{int(link_id)}:{what}"


def _by_name(app, service, what):
    return f"ci:{app}/{service}:{what}"


def _box():
    return secret_box("0019", "CI link secrets are marked and re-sealed by migration 0023 (run with "
                      "the key) or by the deploy service on first read")


def _rows(bind):
    return bind.execute(sa.text(
        "SELECT id, app, service, token_sealed, webhook_secret_sealed FROM deploy_ci_links")).fetchall()


def _update(bind, link_id, values):
    if values:
        sets = ", ".join(f"{column} = :{column}" for column in values)
        bind.execute(sa.text(f"UPDATE deploy_ci_links SET {sets} WHERE id = :id"), {**values, "id": link_id})


def upgrade() -> None:
    bind = op.get_bind()
    rows = _rows(bind)
    if not rows:
        return
    box = _box()
    for link_id, app, service, *sealed in rows:
        values = {}
        for (what, column), value in zip(COLUMNS.items(), sealed):
            if not value or value.startswith(LEGACY):
                continue
            new = None
            if box is not None:
                try:
                    new = box.encrypt(box.decrypt(value, _by_name(app, service, what)), _by_id(link_id, what))
                except Exception:  # already bound to the id, or sealed with a key this box lacks
                    try:
                        box.decrypt(value, _by_id(link_id, what))
                        continue
                    except Exception:
                        pass
            values[column] = new if new is not None else LEGACY + value
        _update(bind, link_id, values)


def downgrade() -> None:
    bind = op.get_bind()
    rows = _rows(bind)
    if not rows:
        return
    box = _box()
    for link_id, app, service, *sealed in rows:
        values = {}
        for (what, column), value in zip(COLUMNS.items(), sealed):
            if not value:
                continue
            if value.startswith(LEGACY):
                values[column] = value[len(LEGACY):]
            elif box is not None:
                try:
                    values[column] = box.encrypt(box.decrypt(value, _by_id(link_id, what)),
                                                 _by_name(app, service, what))
                except Exception:
                    pass
        _update(bind, link_id, values)
