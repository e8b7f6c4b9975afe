"""One config loader for every process: `nameko run`, alembic, scripts and tests.

The files under ``config/`` are nameko config files; ``${NAME:default}`` is
expanded from the environment by nameko's own YAML resolver, so the same file
means the same thing whichever of those programs reads it.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml
from nameko.extensions import DependencyProvider

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "development.yaml"

_parser_ready = False


def _ensure_yaml_parser() -> None:
    global _parser_ready
    if not _parser_ready:
        from nameko.cli.main import setup_yaml_parser

        setup_yaml_parser()
        _parser_ready = True


def config_path() -> Path:
    return Path(os.environ.get("MAE_CONFIG") or DEFAULT_CONFIG)


def load_config(path: str | os.PathLike | None = None) -> dict:
    """Read a config file the way ``nameko run --config`` does."""
    _ensure_yaml_parser()
    with open(path or config_path()) as fh:
        return yaml.safe_load(fh) or {}


class MissingSetting(RuntimeError):
    """A process was started without a setting it cannot work without."""


# Setting → where production gets it (k8s/README.md: one Secret per concern).
REQUIRED = {
    "AMQP_URI": "the mae-broker Secret",
    "REDIS_URL": "the mae-redis Secret",
    "DB_URL": "the mae-database Secret",
    "SECRET_KEY": "MAE_SECRET_KEY, the mae-secret-key Secret",
}


def missing_settings(config: dict, needed) -> list[str]:
    return [name for name in needed if not str(config.get(name) or "").strip()]


class RequiredSettings(DependencyProvider):
    """A dependency every process has: refuses to start (a clear error, the process exits)
    when a setting it uses is empty, instead of a library's default — kombu would otherwise
    connect to ``amqp://guest:guest@localhost`` and SQLAlchemy fail somewhere later.
    ``config/production.yaml`` gives these no defaults; what a process uses follows from its
    dependencies (a database, the secret box), so the gateway needs no database password."""

    def bind(self, container, attr_name):
        # At binding (the container's construction), so before any dependency's setup opens
        # a connection with an empty URL.
        bound = super().bind(container, attr_name)
        self._check(container, container.service_cls)
        return bound

    @staticmethod
    def _check(container, service_cls):
        import inspect

        from nameko.extensions import is_dependency

        from shared.db import Database
        from shared.secretbox import Secrets

        # as nameko finds them (mixins included)
        kinds = {type(value) for _, value in inspect.getmembers(service_cls, is_dependency)}
        needed = ["AMQP_URI", "REDIS_URL"]
        needed += ["DB_URL"] if any(issubclass(k, Database) for k in kinds) else []
        needed += ["SECRET_KEY"] if any(issubclass(k, Secrets) for k in kinds) else []
        missing = missing_settings(container.config, needed)
        if missing:
            raise MissingSetting(f"{container.service_name} cannot start: " + "; ".join(
                f"{name} is not set ({REQUIRED[name]})" for name in missing) + ".")

