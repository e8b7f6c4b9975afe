"""notify: seal the channel URLs still stored in plain by a version before migration 0008
(they carry bot access tokens), and fill in their masked form.

With the secret key (as the migration Job has it from ``mae-secrets``) each plain URL is
sealed with ``notify-channel:<id>:url``, as the notify service writes new ones. Without
the key the URLs stay plain and keep working (the service reads a plain URL as it is; a
listing masks it); the log says how many. To seal them, run this revision again with the
key: ``alembic downgrade 0024-1`` (which changes nothing) then ``alembic upgrade heads``.

Revision ID: 0024
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

from migrations.sealing import secret_box
from services.notify.domain.channels import mask_url, url_context

revision = "0024"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT id, url FROM notify_channels WHERE url LIKE 'http://%' OR url LIKE 'https://%'")).fetchall()
    if not rows:
        return
    box = secret_box("0024", f"{len(rows)} channel URLs stay plain; run this revision again with the key")
    if box is None:
        return
    for channel_id, url in rows:
        bind.execute(sa.text("UPDATE notify_channels SET url = :url, url_masked = :masked WHERE id = :id"),
                     {"url": box.encrypt(url, url_context(channel_id)), "masked": mask_url(url), "id": channel_id})


def downgrade() -> None:
    pass
