"""A CI's finished builds, as they arrive on a link's webhook address.

A webhook is checked against its own link's secret only; a finished tag build of that
link's repository becomes a version of that link's service (configured like the
service's latest version), and the link may ask for it to be deployed. Every other
webhook is refused the same way, or ignored.
"""
from __future__ import annotations

import logging
from secrets import token_urlsafe

from sqlalchemy.orm import Session

from services.deploy import schemas
from services.deploy.domain import catalog, ci_links, secret_env
from services.deploy.domain.ci import PROVIDERS, Build
from services.deploy.domain.ci import version_name as ci_version_name
from services.deploy.models import CIBuild, CILink
from shared.errors import AlreadyExists, Invalid, NotFound, Unauthorized
from shared.secretbox import SecretBoxError

log = logging.getLogger(__name__)


def receive(db: Session, box, provider: str, headers, body: str, path,
            link_id=None) -> tuple[str, CILink | None, Build | None, CIBuild | None]:
    """``(result, link, build, row)`` of a webhook: result ``ignored`` (not a finished build
    of the link's repository), ``duplicate`` (seen before) or ``recorded`` (``row`` stored)."""
    if provider not in PROVIDERS:
        raise NotFound(f"There is no CI provider called {provider!r}.", {"provider": provider})
    if link_id is None:
        # An address that names no link would let a body's repository slug choose the
        # links, and any link to a slug vouch for all of them: refused before the body is read
        # (docs/architecture.md).
        raise Unauthorized(
            "This address takes no webhooks any more: post to the link's own webhook_url "
            f"(/api/v1/hooks/ci/{provider}/<link id>, answered when the service is linked).",
            {"webhook_url": f"/api/v1/hooks/ci/{provider}/<link id>"})
    link = ci_links.link_for_webhook(db, provider, link_id)
    secret = None
    if link is not None:
        try:
            secret = ci_links.webhook_secret(link, box)
        except SecretBoxError:
            log.warning("a CI link's webhook secret does not open; re-link it", extra={"link_id": link.id})
    # No such link (or one of another provider, or one whose secret does not open): the
    # same check against a secret nobody has, so the answer is the same 401 as a bad signature.
    event = PROVIDERS[provider].parse_webhook(headers, body.encode(), [secret or token_urlsafe(32)], path=path)
    if secret is None:
        raise Unauthorized("The webhook signature does not match.")
    build = event.build if event else None
    if build is None or not build.finished or event.repo != link.repo:
        return "ignored", link, build, None
    row = ci_links.record_build(db, link, build)
    if row is None:
        return "duplicate", link, build, None
    return "recorded", link, build, row


def build_failed(link: CILink, build: Build) -> schemas.BuildFinished:
    """The ``build_failed`` payload of a build that did not succeed."""
    return schemas.build_finished(link.app, link.service, build.ref, None, build.number, build.status, build.link,
                                  f"the {link.provider} build {build.number} of {build.ref} ended {build.status}")


# Records and audit entries a CI build causes are made by ``ci:<provider>``.
CI_ACTOR_PREFIX = "ci:"


def ci_actor(link: CILink) -> dict:
    """Who a build's version and deploy are made by, in records and the audit log."""
    return {"id": 0, "username": f"{CI_ACTOR_PREFIX}{link.provider}", "is_admin": False}


def version_from_build(db: Session, box, link: CILink, build: Build, row: CIBuild,
                       ctx) -> tuple[str, schemas.BuildFinished, str | None]:
    """The tag's image as a new version, configured like the service's latest one:
    ``(event, payload, version name or None)``; ``row`` notes the version or the error."""
    name = ci_version_name(build.tag)
    image = f"{link.image}:{build.tag}"
    latest = ci_links.latest_version(db, link.app, link.service)
    config = dict(latest.config) if latest is not None else {"port": 8080}
    config.update({"name": name, "image": image})
    try:
        version = catalog.create_version(db, link.app, link.service, config, ci_actor(link)["username"], ctx)
        db.flush()  # its id binds the seal
        secret_env.inherit(box, version, latest)
    except (Invalid, AlreadyExists) as exc:
        row.error = exc.message
        return schemas.BUILD_FAILED, schemas.build_finished(
            link.app, link.service, build.ref, image, build.number, "error", build.link,
            f"MAE could not make version {name!r}: {exc.message}"), None
    row.version = version.name
    return schemas.BUILD_SUCCEEDED, schemas.build_finished(
        link.app, link.service, build.ref, image, build.number, "success", build.link,
        f"version {version.name} created"), version.name


def auto_deploy_clusters(link: CILink, listed) -> list[dict]:
    """The clusters of the link's auto-deploy environment, as a deploy takes them."""
    return [{"name": c["name"], "env": c["env"]} for c in listed or []]
