"""Where ``mae`` keeps its URL and token: ~/.config/mae/config.json, mode 0600.

``MAE_URL`` and ``MAE_TOKEN`` override the file, so CI jobs and scripts need no file.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8080"


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mae" / "config.json"


@dataclass
class Settings:
    url: str
    token: str | None
    url_from: str   # "env", "file" or "default": said in connection errors
    token_from: str | None


def _read() -> dict:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load() -> Settings:
    data = _read()
    if os.environ.get("MAE_URL"):
        url, url_from = os.environ["MAE_URL"], "env"
    elif data.get("url"):
        url, url_from = data["url"], "file"
    else:
        url, url_from = DEFAULT_URL, "default"
    if os.environ.get("MAE_TOKEN"):
        token, token_from = os.environ["MAE_TOKEN"], "env"
    elif data.get("token"):
        token, token_from = data["token"], "file"
    else:
        token, token_from = None, None
    return Settings(url.rstrip("/"), token, url_from, token_from)


def kept_token() -> str | None:
    """The token in the config file (not MAE_TOKEN's): what ``mae logout`` ends and forgets."""
    token = _read().get("token")
    return token if isinstance(token, str) and token else None


def save(url: str | None = None, token: str | None = None, forget_token: bool = False) -> Path:
    """Update the file; it is created 0600 (in a 0700 directory) before the token is written."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = _read()
    if url is not None:
        data["url"] = url.rstrip("/")
    if token is not None:
        data["token"] = token
    if forget_token:
        data.pop("token", None)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
