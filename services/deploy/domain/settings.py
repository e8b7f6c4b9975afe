"""The deploy service's tunables, read from its config."""
from __future__ import annotations


def setting(config, key: str, default: float) -> float:
    return float(config.get(key, default))


def sweep_settings(config) -> dict:
    """``records.sweep``'s keyword arguments: how long an apply may go unanswered, how often
    it is retried, the grace past a rollout's deadline and how long refused pods are held."""
    return {"apply_timeout": setting(config, "DEPLOY_APPLY_TIMEOUT_SECONDS", 30),
            "max_attempts": int(setting(config, "DEPLOY_APPLY_ATTEMPTS", 5)),
            "deadline_grace": setting(config, "DEPLOY_DEADLINE_GRACE_SECONDS", 15),
            "refused_hold": setting(config, "DEPLOY_REFUSED_SECONDS", 10)}
