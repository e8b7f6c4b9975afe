"""Channels: an application's (or the platform's) Feishu/DingTalk/webhook targets."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.notify.domain.events import subscribable
from services.notify.models import Channel
from shared import outbound
from shared.errors import Invalid, NotFound, UrlNotAllowed

TYPES = ("feishu", "dingtalk", "webhook")
FIELDS = {"name", "type", "url", "secret", "events", "enabled"}
# As for servers (services/server/domain/fields.py): no quotes, semicolons, slashes or
# control characters, which no channel name needs.
NAME = re.compile(r"^[^\W_][\w .:#@()+&-]*\Z")
APP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")


def secret_context(channel_id: int) -> str:
    return f"notify-channel:{channel_id}:secret"


def url_context(channel_id: int) -> str:
    return f"notify-channel:{channel_id}:url"


def invalid(field: str, message: str) -> Invalid:
    return Invalid(message, {"field": field})


def check_app(app: str | None) -> str | None:
    if app is not None and (not isinstance(app, str) or not APP_NAME.match(app)):
        raise invalid("app", "app must be an application name (an RFC 1123 label).")
    return app


def clean(app: str | None, data: dict) -> dict:
    if not isinstance(data, dict):
        raise Invalid("The body must be a JSON object.", {"field": None})
    for key in data:
        if key not in FIELDS:
            raise invalid(key, f"{key} is not a field of a channel.")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 128:
        raise invalid("name", "name is required (at most 128 characters).")
    if any(ord(c) < 32 or ord(c) == 127 for c in name) or not NAME.match(name.strip()):
        raise invalid("name", "name may hold letters, digits, spaces and . : _ - # @ ( ) + &, "
                              "starting with a letter or digit.")
    kind = data.get("type")
    if kind not in TYPES:
        raise invalid("type", f"type must be one of {', '.join(TYPES)}.")
    url = data.get("url")
    if not isinstance(url, str) or len(url) > 2000:
        raise invalid("url", "url is required (at most 2000 characters).")
    try:  # the URL's own rules (http(s), no user:password@, no fragment, ...); its addresses: create
        outbound.parse_url(url.strip())
    except outbound.NotAllowed as exc:
        raise UrlNotAllowed(f"url is not allowed: {exc.words}.", {"field": "url", "reason": exc.reason})
    secret = data.get("secret")
    if secret is not None and (not isinstance(secret, str) or len(secret) > 256):
        raise invalid("secret", "secret must be a string of at most 256 characters.")
    events = data.get("events")
    allowed = subscribable(app)
    if not isinstance(events, list) or not events:
        raise invalid("events", f"events must be a non-empty list of: {', '.join(allowed)}.")
    for event in events:
        if event not in allowed:
            raise invalid("events", f"{event!r} is not an event this channel can subscribe to; "
                                    f"choose from {', '.join(allowed)}.")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise invalid("enabled", "enabled must be true or false.")
    return {"name": name.strip(), "type": kind, "url": url.strip(), "secret": secret or None,
            "events": sorted(set(events)), "enabled": enabled}


def create(session: Session, box, app: str | None, data: dict, guard=None) -> Channel:
    """A new channel; its URL must pass the outbound guard (422 ``url_not_allowed``: it
    points at loopback, metadata, a private network or MAE itself), after the other
    fields are found valid."""
    app = check_app(app)
    values = clean(app, data)
    (guard or outbound.default_guard()).check_url(values["url"], field="url")
    secret, url = values.pop("secret"), values.pop("url")
    # Nothing plain reaches the table: the row is first written with a placeholder URL,
    # then sealed under its id (the id is part of the contexts).
    channel = Channel(app=app, url="", url_masked=mask_url(url), **values)
    session.add(channel)
    session.flush()
    channel.url = box.encrypt(url, url_context(channel.id))
    if secret:
        channel.secret = box.encrypt(secret, secret_context(channel.id))
    session.flush()
    return channel


def is_sealed(value: str) -> bool:
    return not value.startswith(("http://", "https://"))


def _scope(query, app: str | None):
    return query.where(Channel.app.is_(None)) if app is None else query.where(Channel.app == app)


def get(session: Session, app: str | None, channel_id) -> Channel:
    check_app(app)
    channel = session.get(Channel, channel_id) if isinstance(channel_id, int) else None
    if channel is None or channel.app != app:
        raise NotFound(f"Channel {channel_id} was not found.", {"channel_id": channel_id})
    return channel


def list_for(session: Session, app: str | None) -> list[Channel]:
    check_app(app)
    return list(session.scalars(_scope(select(Channel), app).order_by(Channel.id)))


def delete(session: Session, app: str | None, channel_id) -> None:
    session.delete(get(session, app, channel_id))
    session.flush()


def plain_secret(box, channel: Channel) -> str | None:
    return box.decrypt(channel.secret, secret_context(channel.id)) if channel.secret else None


def plain_url(box, channel: Channel) -> str:
    return box.decrypt(channel.url, url_context(channel.id)) if is_sealed(channel.url) else channel.url


def mask_url(url: str) -> str:
    """Bot webhook URLs carry their access token; show only enough to recognise it."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    if segments and len(segments[-1]) >= 12:
        segments[-1] = segments[-1][:4] + "****"
    query = [(k, (v[:4] + "****") if len(v) >= 8 else v) for k, v in parse_qsl(parts.query, True)]
    return urlunsplit((parts.scheme, parts.netloc.split("@")[-1], "/".join(segments),
                       urlencode(query, safe="*"), ""))


def audit_target(channel: Channel) -> str:
    return f"app:{channel.app}/channel:{channel.id}" if channel.app else f"platform/channel:{channel.id}"


def audit_details(channel: Channel) -> dict:
    """What an audit entry says of a channel: never the URL's path or query (a bot's
    access token), its user info, nor the signing secret."""
    return {"name": channel.name, "type": channel.type, "host": urlsplit(channel.url_masked or "").hostname,
            "events": list(channel.events or []), "enabled": channel.enabled, "has_secret": bool(channel.secret)}


def to_dict(channel: Channel) -> dict:
    """A channel without its secret (and with its URL's token masked)."""
    return {
        "id": channel.id,
        "app": channel.app,
        "name": channel.name,
        "type": channel.type,
        "url": channel.url_masked if is_sealed(channel.url) else mask_url(channel.url),
        "has_secret": bool(channel.secret),
        "events": list(channel.events or []),
        "enabled": channel.enabled,
        "created_at": channel.created_at.replace(microsecond=0).isoformat() + "Z",
    }
