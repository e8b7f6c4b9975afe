"""Links between a service and its CI repository, and the builds MAE has seen.

Plain SQLAlchemy, no nameko. The CI token and the webhook secret are sealed
with the secret box, bound to the link's row id (``ci-link:<id>:<what>``), and
never leave this module in clear except to call the CI or check a webhook: a
later link of the same app and service names has another id and cannot open them.

Rows sealed before migration 0019 were bound to the app and service *names*. The
migration re-seals them when it has the key; when it has not, it marks them
(``LEGACY`` prefix) and they are re-sealed on first read, or by migration 0023 when
it runs with the key. Only a marked value is ever opened with a name context.

Each link has its own webhook address, ``/api/v1/hooks/ci/<provider>/<link id>``
(``webhook_url``): a webhook there is checked against that link's secret only and
acts for that link only.
"""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.deploy.domain import catalog
from services.deploy.domain.ci import PROVIDERS, Build, CIProvider, check_repo
from services.deploy.models import CIBuild, CILink, Version
from shared import outbound
from shared.errors import Invalid, NotFound
from shared.timeutil import rfc3339

IMAGE_REPO = re.compile(r"^[a-z0-9]+([._/:-][a-z0-9]+)*\Z")


# What migration 0019 puts before a value still sealed with the old, name-bound context.
LEGACY = "name-bound:"
WHATS = {"token": "token_sealed", "webhook": "webhook_secret_sealed"}


def _context(link_id: int, what: str) -> str:
    return f"ci-link:{int(link_id)}:{what}"


def _legacy_context(app: str, service: str, what: str) -> str:
    """The context of rows sealed before migration 0019 (by app and service name)."""
    return f"ci:{app}/{service}:{what}"


def _seal(box, link: CILink, what: str, plain: str) -> None:
    setattr(link, WHATS[what], box.encrypt(plain, _context(link.id, what)))


def _open(box, link: CILink, what: str) -> str:
    """The clear value of one of the link's secrets; a value migration 0019 marked as
    name-bound is opened with the old context once and re-sealed to the link's id."""
    sealed = getattr(link, WHATS[what]) or ""
    if sealed.startswith(LEGACY):
        plain = box.decrypt(sealed[len(LEGACY):], _legacy_context(link.app, link.service, what))
        _seal(box, link, what, plain)
        return plain
    return box.decrypt(sealed, _context(link.id, what))


def webhook_path(provider: str, link_id: int) -> str:
    """Where this link's CI posts its webhooks (relative to the API's origin)."""
    return f"/api/v1/hooks/ci/{provider}/{int(link_id)}"


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
    auto_route = data.get("auto_route", False)
    if not isinstance(auto_route, bool):
        raise Invalid("'auto_route' must be true or false.", {"field": "auto_route"})
    if auto_route and env is None:
        raise Invalid("'auto_route' needs 'auto_deploy_env': only an automatic deploy is routed "
                      "to once it succeeds.", {"field": "auto_route"})
    link = db.scalar(select(CILink).where(CILink.app == app, CILink.service == service))
    webhook_secret = data.get("webhook_secret")
    if link is None and not webhook_secret:
        raise Invalid("'webhook_secret' is required: the CI server's webhook signing secret "
                      "(DRONE_WEBHOOK_SECRET).", {"field": "webhook_secret"})
    if webhook_secret and (not isinstance(webhook_secret, str) or len(webhook_secret) < 16):
        raise Invalid("'webhook_secret' must be at least 16 characters.", {"field": "webhook_secret"})
    if link is None:
        # The row first: its id is what the secrets are bound to.
        link = CILink(app=app, service=service, token_sealed="", webhook_secret_sealed="")
        db.add(link)
    link.provider, link.server, link.repo, link.image = provider, server, repo, image
    link.auto_deploy_env = env
    link.auto_route = auto_route
    link.updated_by = actor
    db.flush()
    _seal(box, link, "token", token)
    if webhook_secret:
        _seal(box, link, "webhook", webhook_secret)
    elif link.webhook_secret_sealed.startswith(LEGACY):
        _open(box, link, "webhook")
    db.flush()
    return link


def changes(link: CILink | None) -> dict:
    """What an audit entry says of a link: never its token or webhook secret."""
    if link is None:
        return {}
    return {"provider": link.provider, "server": link.server, "repo": link.repo, "image": link.image,
            "auto_deploy_env": link.auto_deploy_env, "auto_route": bool(link.auto_route)}


def find_link(db: Session, app: str, service: str) -> CILink | None:
    return db.scalar(select(CILink).where(CILink.app == app, CILink.service == service))


def link_service(db: Session, box, app: str, service: str, data: dict, actor: str,
                 guard: "outbound.Guard | None" = None) -> tuple[CILink, str, dict]:
    """Link (or re-link) the service: ``(link, audit action, audit details)``."""
    catalog.get_service(db, app, service)
    before = changes(find_link(db, app, service))
    link = save_link(db, box, app, service, data, actor, guard=guard)
    action, details = link_audit(before, link, data)
    return link, action, details


def link_audit(before: dict, link: CILink, data: dict | None) -> tuple[str, dict]:
    """The audit action and details of saving ``link`` over a link whose ``changes`` were
    ``before``: never the token nor the webhook secret, only that they were set, and
    which other fields changed."""
    after = changes(link)
    details = {**after, "link_id": link.id, "token_set": True,
               "webhook_secret_set": bool((data or {}).get("webhook_secret"))}
    if before:
        details["changed"] = sorted(k for k in after if after[k] != before.get(k))
    return ("ci_link_changed" if before else "ci_linked"), details


def delete_link(db: Session, app: str, service: str) -> CILink | None:
    """Remove the service's link (and, by cascade, its builds); the removed link or ``None``."""
    link = db.scalar(select(CILink).where(CILink.app == app, CILink.service == service))
    if link is not None:
        db.delete(link)
        db.flush()
    return link


def link_dict(link: CILink) -> dict:
    return {"id": link.id, "webhook_url": webhook_path(link.provider, link.id),
            "app": link.app, "service": link.service, "provider": link.provider, "server": link.server,
            "repo": link.repo, "image": link.image, "auto_deploy_env": link.auto_deploy_env,
            "auto_route": bool(link.auto_route), "updated_by": link.updated_by, "updated_at": rfc3339(link.updated_at)}


def get_link(db: Session, app: str, service: str) -> CILink:
    link = db.scalar(select(CILink).where(CILink.app == app, CILink.service == service))
    if link is None:
        raise NotFound(f"Service {service!r} is not linked to a CI repository.", {"service": service})
    return link


def provider_for(link: CILink, box, guard: "outbound.Guard | None" = None) -> CIProvider:
    """The link's CI, whose every call goes through ``guard`` (default: this process's)."""
    return PROVIDERS[link.provider](link.server, _open(box, link, "token"), guard=guard)


def builds(db: Session, box, app: str, service: str, guard: "outbound.Guard | None" = None) -> list[dict]:
    """The linked repository's recent builds, as its CI lists them."""
    link = get_link(db, app, service)
    return [b.to_dict() for b in provider_for(link, box, guard=guard).builds(link.repo)]


def trigger_build(db: Session, box, app: str, service: str, ref, guard: "outbound.Guard | None" = None) -> dict:
    """Ask the linked CI to build branch ``ref``."""
    if not isinstance(ref, str) or not ref.strip():
        raise Invalid("'ref' is required: the branch to build.", {"field": "ref"})
    link = get_link(db, app, service)
    return provider_for(link, box, guard=guard).trigger(link.repo, ref.strip()).to_dict()


def webhook_secret(link: CILink, box) -> str:
    return _open(box, link, "webhook")


def link_for_webhook(db: Session, provider: str, link_id) -> CILink | None:
    """The link a webhook address names, or ``None`` — for an id that is not a number, is
    unknown, or is a link of another provider alike (the caller answers all three the same)."""
    text = str(link_id or "")
    if not text.isdigit() or len(text) > 18:
        return None
    link = db.get(CILink, int(text))
    return link if link is not None and link.provider == provider else None


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


def latest_version(db: Session, app: str, service: str) -> Version | None:
    """The newest live version: a build's version is configured like it."""
    return db.scalar(select(Version).where(Version.app == app, Version.service == service,
                                           Version.deleted_at.is_(None)).order_by(Version.id.desc()).limit(1))
