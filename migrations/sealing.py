"""What a migration that seals or re-seals values needs: the secret box, when this process
has the key (``MAE_SECRET_KEY``/``MAE_OLD_SECRET_KEYS`` or the config's ``SECRET_KEY``, as
the migration Job has it from ``mae-secrets``); ``None`` when it has not (alembic run by
hand, ``make migrate`` on a laptop), and then the migration says what it left undone.
"""
from __future__ import annotations

import logging

log = logging.getLogger("alembic.runtime.migration")

# CI links (0019, 0023): the mark on a value still sealed by app and service name, and
# which column holds each sealed value.
NAME_BOUND = "name-bound:"
CI_LINK_COLUMNS = {"token": "token_sealed", "webhook": "webhook_secret_sealed"}


def secret_box(revision: str, without_it: str):
    """The secret box, or ``None`` after logging ``without_it`` (what is left, and who does it)."""
    try:
        from shared.config import load_config
        from shared.secretbox import SecretBox

        try:
            config = load_config()
        except Exception:  # no config file here: the environment alone
            config = {}
        return SecretBox.from_config(config)
    except Exception as exc:  # no key (SecretBoxError) or a malformed one
        log.warning("%s: no secret key (%s); %s", revision, exc, without_it)
        return None
