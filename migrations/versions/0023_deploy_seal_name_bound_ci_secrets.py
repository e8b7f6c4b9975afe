"""deploy: re-seal to their link ids the CI link secrets migration 0019 had to mark
``name-bound:`` because it ran without the secret key.

With the key (as the migration Job has it from ``mae-secrets``) each marked value is
opened with its old name context and sealed with ``ci-link:<id>:<what>``; a value that
does not open with this key is left marked. Without the key nothing changes here and the
deploy service re-seals a marked value on its first read
(``services/deploy/domain/ci_links.py``), which is why a marked value left here still works.

Downgrade changes nothing: values sealed to ids are what 0019 writes with the key.

Revision ID: 0023
Revises: 0022
"""
import sqlalchemy as sa
from alembic import op

from migrations.sealing import CI_LINK_COLUMNS, NAME_BOUND, secret_box

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

LEGACY, COLUMNS = NAME_BOUND, CI_LINK_COLUMNS


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT id, app, service, token_sealed, webhook_secret_sealed FROM deploy_ci_links "
        "WHERE token_sealed LIKE 'name-bound:%' OR webhook_secret_sealed LIKE 'name-bound:%'")).fetchall()
    if not rows:
        return
    box = secret_box("0023", f"{len(rows)} CI links keep values marked name-bound until the deploy "
                             "service first reads them")
    if box is None:
        return
    for link_id, app, service, *sealed in rows:
        values = {}
        for (what, column), value in zip(COLUMNS.items(), sealed):
            if not value or not value.startswith(LEGACY):
                continue
            try:
                plain = box.decrypt(value[len(LEGACY):], f"ci:{app}/{service}:{what}")
            except Exception:  # sealed with a key this box lacks: left marked, for a person to re-link
                continue
            values[column] = box.encrypt(plain, f"ci-link:{int(link_id)}:{what}")
        if values:
            sets = ", ".join(f"{column} = :{column}" for column in values)
            bind.execute(sa.text(f"UPDATE deploy_ci_links SET {sets} WHERE id = :id"), {**values, "id": link_id})


def downgrade() -> None:
    pass
