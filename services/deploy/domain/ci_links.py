"""Links between a service and its CI repository, and the builds MAE has seen.

Plain SQLAlchemy, no nameko. The CI token and the webhook secret are sealed
with the secret box, bound to the link's row, and never leave this module in
clear except to call the CI.
"""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.deploy.domain.ci import PROVIDERS, Build, CIProvider, check_repo
from services.deploy.models import CIBuild, CILink, Version
from shared import outbound
from shared.errors import Invalid, NotFound
from shared.timeutil import rfc3339

IMAGE_REPO = re.compile(r"^[a-z0-9]+([._/:-][a-z0-9]+)*\Z")


def _context(app: str, service: str, what: str) -> str:
    return f"ci:{app}/{service}:{what}"


def _text(data: dict, field: str, required: bool = True, limit: int = 500) -> str | None:
    value = data.get(field)
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"'{field}' is required.", {"field": field})
    if len(value) > limit:
        raise Invalid(f"'{field}' must be at most {limit} characters.", {"field": field})
    return value.strip()


def save_link(db: Session, box, app: str, service: str, data: dict, actor: str,
              guard: "outbound.Guard | None" = None) -> CILink:
    """Link (or re-link) a service; ``server`` must pass the outbound guard (422
    ``url_not_allowed``) and is kept normalised: scheme, host, port and a plain path."""
    if not isinstance(data, dict):
        raise Invalid("The body must be a JSON object.")
    provider = data.get("provider")
    if provider not in PROVIDERS:
        raise Invalid(f"'provider' must be one of: {', '.join(PROVIDERS)}.", {"field": "provider"})
    server = (guard or outbound.default_guard()).check_url(_text(data, "server"), field="server", server=True)
    repo = check_repo(data.get("repo"))
    token = _text(data, "token")
    image = _text(data, "image", limit=255)
    if not IMAGE_REPO.match(image) or image.rsplit("/", 1)[-1].count(":"):
        raise Invalid("'image' is the image repository the CI pushes to, without a tag "
                      "(e.g. registry.example.com/team/web).", {"field": "image"})
    env = data.get("auto_deploy_env")
    if env not in (None, "test", "prod"):
        raise Invalid("'auto_deploy_env' must be 'test', 'prod' or absent.", {"field": "auto_deploy_env"})
    link = db.scalar(select(CILink).where(CILink.app == app, CILink.service == service))
    webhook_secret = data.get("webhook_secret")
    if link is None and not webhook_secret:
        raise Invalid("'webhook_secret' is required: the CI server's webhook signing secret "
                      "(DRONE_WEBHOOK_SECRET).", {"field": "webhook_secret"})
    if link is None:
        link = CILink(app=app, service=service)
        db.add(link)
    link.provider, link.server, link.repo, link.image = provider, server, repo, image
    link.auto_deploy_env = env
    link.token_sealed = box.encrypt(token, _context(app, service, "token"))
    if webhook_secret:
        if not isinstance(webhook_secret, str) or len(webhook_secret) < 16:
            raise Invalid("'webhook_secret' must be at least 16 characters.", {"field": "webhook_secret"})
        link.webhook_secret_sealed = box.encrypt(webhook_secret, _context(app, service, "webhook"))
    link.updated_by = actor
    db.flush()
    return link


def link_dict(link: CILink) -> dict:
    return {"app": link.app, "service": link.service, "provider": link.provider, "server": link.server,
            "repo": link.repo, "image": link.image, "auto_deploy_env": link.auto_deploy_env,
            "updated_by": link.updated_by, "updated_at": rfc3339(link.updated_at)}


def get_link(db: Session, app: str, service: str) -> CILink:
    link = db.scalar(select(CILink).where(CILink.app == app, CILink.service == service))
    if link is None:
        raise NotFound(f"Service {service!r} is not linked to a CI repository.", {"service": service})
    return link


def provider_for(link: CILink, box, guard: "outbound.Guard | None" = None) -> CIProvider:
    """The link's CI, whose every call goes through ``guard`` (default: this process's)."""
    token = box.decrypt(link.token_sealed, _context(link.app, link.service, "token"))
    return PROVIDERS[link.provider](link.server, token, guard=guard)


def webhook_secret(link: CILink, box) -> str:
    return box.decrypt(link.webhook_secret_sealed, _context(link.app, link.service, "webhook"))


def links_for_repo(db: Session, provider: str, repo: str) -> list[CILink]:
    return list(db.scalars(select(CILink).where(CILink.provider == provider, CILink.repo == repo)))


def record_build(db: Session, link: CILink, build: Build) -> CIBuild | None:
    """The build's row, or ``None`` when this (build, status) was seen before (a replay)."""
    row = CIBuild(link_id=link.id, number=build.number, status=build.status, event=build.event,
                  ref=build.ref, link=build.link[:500], commit=build.commit[:64])
    try:
        with db.begin_nested():
            db.add(row)
            db.flush()
    except IntegrityError:
        return None
    return row


def build_dict(row: CIBuild) -> dict:
    return {"number": row.number, "status": row.status, "event": row.event, "ref": row.ref,
            "link": row.link, "commit": row.commit, "version": row.version, "record_id": row.record_id,
            "error": row.error, "received_at": rfc3339(row.created_at)}


def latest_version(db: Session, app: str, service: str) -> Version | None:
    """The newest live version: a build's version is configured like it."""
    return db.scalar(select(Version).where(Version.app == app, Version.service == service,
                                           Version.deleted_at.is_(None)).order_by(Version.id.desc()).limit(1))
