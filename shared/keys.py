"""Every Redis key MAE uses, in one place, under the configured prefix.

Services that write a cache and the gateway that reads it must agree on the
key; keeping the names here makes that agreement explicit.
"""
from __future__ import annotations


class Keys:
    def __init__(self, prefix: str = "mae"):
        self.prefix = prefix

    @classmethod
    def from_config(cls, config: dict) -> "Keys":
        return cls(config.get("REDIS_PREFIX") or "mae")

    # auth
    def oauth_state(self, state: str) -> str:
        return f"{self.prefix}:oauth:state:{state}"

    def token(self, token_hash: str) -> str:
        """The gateway's cache of a verified token (who it belongs to)."""
        return f"{self.prefix}:authn:{token_hash}"

    def token_revoked(self, token_hash: str) -> str:
        """A tombstone: this token was revoked; no gateway may cache it again."""
        return f"{self.prefix}:authn-revoked:{token_hash}"

    @property
    def blacklist(self) -> str:
        return f"{self.prefix}:blacklist"

    @property
    def blacklist_loaded(self) -> str:
        """Present while the blacklist set is known to mirror MySQL."""
        return f"{self.prefix}:blacklist:loaded"

    # org / RBAC
    def role(self, app: str, user_id: int) -> str:
        return f"{self.prefix}:rbac:{app}:{user_id}"

    # Generations of what the gateway caches per user (RBAC answers, app lists).
    # org bumps them when the rows they were read from change; a cached answer
    # carries the generations read *before* the rows were, and counts only while
    # they are still current.
    @property
    def apps_generation(self) -> str:
        """Bumped when any application is created, changed or deleted."""
        return f"{self.prefix}:apps-gen"

    def member_generation(self, user_id: int) -> str:
        """Bumped when the user's memberships change (added, role changed, removed)."""
        return f"{self.prefix}:apps-gen:{user_id}"

    def app_list(self, user_id: int, view: str, limit: int) -> str:
        """The gateway's cached first page of ``GET /apps`` for a user (view: admin or member)."""
        return f"{self.prefix}:apps-list:{user_id}:{view}:{limit}"

    # gateway
    def rate(self, bucket: str) -> str:
        return f"{self.prefix}:rate:{bucket}"

    # locks and once-only markers
    def lock(self, name: str) -> str:
        return f"{self.prefix}:lock:{name}"

    # cluster: a gateway's single-use ticket to read one log stream (services/cluster/domain/logs.py)
    def log_ticket(self, ticket_hash: str) -> str:
        return f"{self.prefix}:log-ticket:{ticket_hash}"
