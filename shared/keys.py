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

    def user_tokens(self, user_id: int) -> str:
        """The set of token hashes cached for a user, to evict them together."""
        return f"{self.prefix}:authn-user:{user_id}"

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

    def roles_of_app(self, app: str) -> str:
        return f"{self.prefix}:rbac:{app}:*"

    def membership_any(self, user_id: int) -> str:
        return f"{self.prefix}:rbac-any:{user_id}"

    # gateway
    def rate(self, bucket: str) -> str:
        return f"{self.prefix}:rate:{bucket}"

    # locks and once-only markers
    def lock(self, name: str) -> str:
        return f"{self.prefix}:lock:{name}"
