"""One config loader for every process: `nameko run`, alembic, scripts and tests.

The files under ``config/`` are nameko config files; ``${NAME:default}`` is
expanded from the environment by nameko's own YAML resolver, so the same file
means the same thing whichever of those programs reads it.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

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
