"""deploy: an ingress host belongs to one application (409 host_taken for the others).

Existing ingresses claim their hosts, oldest first; where two apps already share a host,
the first keeps it and the other keeps its ingress (it is refused only when it makes a
new one).

Revision ID: 0017
Revises: 0016
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deploy_host_owners",
        sa.Column("host", sa.String(253), primary_key=True),
        sa.Column("app", sa.String(63), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime().with_variant(sa.dialects.mysql.DATETIME(fsp=6), "mysql", "mariadb")),
    )
    bind = op.get_bind()
    seen = set()
    for app, config, created in bind.execute(sa.text(
            "SELECT app, config, created_at FROM deploy_ingresses ORDER BY id")):
        host = (json.loads(config) if isinstance(config, str) else config or {}).get("host")
        if host and host not in seen:
            seen.add(host)
            bind.execute(sa.text("INSERT INTO deploy_host_owners (host, app, created_at) VALUES (:h, :a, :c)"),
                         {"h": host, "a": app, "c": created})


def downgrade() -> None:
    op.drop_table("deploy_host_owners")
