"""Checking and converting the fields people send; each error names its field."""
from __future__ import annotations

import ipaddress
import re
from datetime import date, datetime, timezone

from shared.errors import Invalid

LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?\Z")


def invalid(field: str, message: str) -> Invalid:
    return Invalid(message, {"field": field})


def text(data: dict, field: str, *, max_len: int, required: bool = False) -> str | None:
    value = data.get(field)
    if value is None or value == "":
        if required:
            raise invalid(field, f"{field} is required.")
        return None
    if not isinstance(value, str):
        raise invalid(field, f"{field} must be a string.")
    if len(value) > max_len:  # as sent: the API's maxLength counts what the client sends
        raise invalid(field, f"{field} must be at most {max_len} characters.")
    value = value.strip()
    if required and not value:
        raise invalid(field, f"{field} is required.")
    return value


# What people name servers and accounts (Aliyun's instance names fit): letters of any
# script, digits, spaces and . : _ - # @ ( ) + &, starting with a letter or digit. No
# quotes, semicolons, slashes, '=' or control characters: no name needs them, and they
# are what injected SQL and paths are made of.
NAME = re.compile(r"^[^\W_][\w .:#@()+&-]*\Z")
NAME_RULE = "letters, digits, spaces and . : _ - # @ ( ) + &, starting with a letter or digit"


def name(data: dict, field: str = "name", *, max_len: int = 128, required: bool = True) -> str | None:
    raw = data.get(field)
    if isinstance(raw, str) and any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise invalid(field, f"{field} may not hold control characters (newlines, tabs, NUL).")
    value = text(data, field, max_len=max_len, required=required)
    if value is not None and not NAME.match(value):
        raise invalid(field, f"{field} may hold {NAME_RULE}.")
    return value


def ip(data: dict, field: str = "ip", required: bool = True) -> str | None:
    value = text(data, field, max_len=64, required=required)
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise invalid(field, f"{field} must be an IPv4 or IPv6 address, not {value!r}.")


def label(data: dict, field: str, *, required: bool = False) -> str | None:
    value = text(data, field, max_len=32, required=required)
    if value is not None and not LABEL.match(value):
        raise invalid(field, f"{field} must be lowercase letters, digits and dashes.")
    return value


def positive_int(data: dict, field: str, *, maximum: int = 100000) -> int | None:
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
        raise invalid(field, f"{field} must be a whole number between 1 and {maximum}.")
    return value


def positive_number(data: dict, field: str, *, maximum: float = 1e6) -> float | None:
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= maximum:
        raise invalid(field, f"{field} must be a number above 0 and at most {maximum:g}.")
    return float(value)


def timestamp(data: dict, field: str) -> datetime | None:
    """RFC 3339 (``2026-12-01T00:00:00Z``) or a plain date; stored as naive UTC."""
    value = data.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid(field, f"{field} must be an RFC 3339 time or a date (YYYY-MM-DD).")
    return parse_time(value, field)


def parse_time(value: str, field: str) -> datetime:
    raw = value.strip()
    try:
        if len(raw) == 10:
            parsed = datetime.combine(date.fromisoformat(raw), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid(field, f"{field} must be an RFC 3339 time or a date (YYYY-MM-DD), not {value!r}.")
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


def rfc3339(value: datetime | None) -> str | None:
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"


def reject_unknown(data: dict, allowed: set[str]) -> None:
    if not isinstance(data, dict):
        raise Invalid("The body must be a JSON object.", {"field": None})
    for key in data:
        if key not in allowed:
            raise invalid(key, f"{key} is not a field that can be set here.")


def page_limit(limit, default: int = 50, maximum: int = 200) -> int:
    if limit is None or limit == "":
        return default
    try:
        value = int(limit)
    except (TypeError, ValueError):
        raise invalid("limit", "limit must be a whole number.")
    if not 1 <= value <= maximum:
        raise invalid("limit", f"limit must be between 1 and {maximum}.")
    return value


def page_cursor(cursor) -> int | None:
    """Cursors are the last id of the previous page, kept opaque to clients."""
    if cursor in (None, ""):
        return None
    try:
        value = int(str(cursor))
    except ValueError:
        raise invalid("cursor", "cursor is not one this API gave out.")
    if value < 0:
        raise invalid("cursor", "cursor is not one this API gave out.")
    return value
