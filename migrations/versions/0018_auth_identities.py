"""auth: identities decide who someone is; usernames are compared exactly.

* ``auth_users.username`` compares byte for byte (utf8mb4_bin): under the database's
  case- and accent-insensitive collation ``Admin`` and ``ADMİN`` *were* ``admin``.
* ``auth_users.username_key``: the username folded (case and accents away), unique, so
  no two people have names that differ only that way. Existing rows get their key
  here; should two existing names fold alike, the later one's key takes its id.
* ``auth_identities.provider`` / ``subject`` compare byte for byte too (subjects are
  case-sensitive strings at every provider), and the row keeps what the provider last
  said (``claimed_username``, ``email``, ``last_login_at``) for admins and the audit.

Revision ID: 0018
Revises: 0002
"""
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0002"
branch_labels = None
depends_on = None

BIN = "utf8mb4_bin"
CI = "utf8mb4_unicode_ci"


def _key(name: str) -> str:
    # The same folding as services/auth/domain/usernames.key, frozen here.
    decomposed = unicodedata.normalize("NFKD", name or "")
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFKC", bare.casefold())[:64]


def upgrade() -> None:
    op.alter_column("auth_users", "username", existing_type=sa.String(64, collation=CI),
                    type_=sa.String(64, collation=BIN), existing_nullable=False)
    op.add_column("auth_users", sa.Column("username_key", sa.String(64, collation=BIN), nullable=True))
    conn = op.get_bind()
    taken = set()
    for user_id, username in conn.execute(sa.text("SELECT id, username FROM auth_users ORDER BY id")):
        key = _key(username)
        if key in taken:
            key = f"{key[:40]}-{user_id}"
        taken.add(key)
        conn.execute(sa.text("UPDATE auth_users SET username_key = :k WHERE id = :i"), {"k": key, "i": user_id})
    op.alter_column("auth_users", "username_key", existing_type=sa.String(64, collation=BIN), nullable=False)
    op.create_unique_constraint("username_key", "auth_users", ["username_key"])

    op.alter_column("auth_identities", "provider", existing_type=sa.String(32, collation=CI),
                    type_=sa.String(32, collation=BIN), existing_nullable=False)
    op.alter_column("auth_identities", "subject", existing_type=sa.String(255, collation=CI),
                    type_=sa.String(255, collation=BIN), existing_nullable=False)
    op.add_column("auth_identities", sa.Column("claimed_username", sa.String(255), nullable=False,
                                               server_default=""))
    op.add_column("auth_identities", sa.Column("email", sa.String(254), nullable=False, server_default=""))
    op.add_column("auth_identities", sa.Column("last_login_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("auth_identities", "last_login_at")
    op.drop_column("auth_identities", "email")
    op.drop_column("auth_identities", "claimed_username")
    op.alter_column("auth_identities", "subject", existing_type=sa.String(255, collation=BIN),
                    type_=sa.String(255, collation=CI), existing_nullable=False)
    op.alter_column("auth_identities", "provider", existing_type=sa.String(32, collation=BIN),
                    type_=sa.String(32, collation=CI), existing_nullable=False)
    op.drop_constraint("username_key", "auth_users", type_="unique")
    op.drop_column("auth_users", "username_key")
    op.alter_column("auth_users", "username", existing_type=sa.String(64, collation=BIN),
                    type_=sa.String(64, collation=CI), existing_nullable=False)
