"""Cloud accounts and importing their machines into the inventory."""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.server.domain import fields as f
from services.server.domain.providers import ECSProvider, Instance
from services.server.models import CloudAccount, Server, utcnow
from shared.errors import AlreadyExists, NotFound

PROVIDERS = ("aliyun",)
REGION = re.compile(r"^[a-z]{2}(-[a-z0-9]+){1,3}\Z")
FIELDS = {"name", "provider", "access_key_id", "access_key_secret", "regions"}


def secret_context(account_id: int) -> str:
    return f"cloud-account:{account_id}:secret"


def create(session: Session, box, data: dict) -> CloudAccount:
    f.reject_unknown(data, FIELDS)
    name = f.name(data, "name", max_len=128, required=True)
    provider = data.get("provider") or "aliyun"
    if provider not in PROVIDERS:
        raise f.invalid("provider", f"provider must be one of {', '.join(PROVIDERS)}.")
    key_id = f.text(data, "access_key_id", max_len=128, required=True)
    secret = data.get("access_key_secret")
    if not isinstance(secret, str) or not secret.strip() or len(secret) > 256:
        raise f.invalid("access_key_secret", "access_key_secret is required (at most 256 characters).")
    regions = data.get("regions")
    if (not isinstance(regions, list) or not regions or len(regions) > 50
            or not all(isinstance(r, str) and REGION.match(r) for r in regions)):
        raise f.invalid("regions", "regions must be a non-empty list of region ids such as cn-hangzhou.")
    if session.scalar(select(CloudAccount.id).where(CloudAccount.name == name)) is not None:
        raise AlreadyExists(f"A cloud account named {name} exists already.", {"field": "name"})
    account = CloudAccount(name=name, provider=provider, access_key_id=key_id,
                           access_key_secret="", regions=list(dict.fromkeys(regions)))
    session.add(account)
    session.flush()  # the id is part of the secret's context
    account.access_key_secret = box.encrypt(secret.strip(), secret_context(account.id))
    session.flush()
    return account


def get(session: Session, account_id) -> CloudAccount:
    account = session.get(CloudAccount, account_id) if isinstance(account_id, int) else None
    if account is None:
        raise NotFound(f"Cloud account {account_id} was not found.", {"account_id": account_id})
    return account


def to_dict(account: CloudAccount) -> dict:
    """Everything about an account except its secret."""
    return {
        "id": account.id,
        "name": account.name,
        "provider": account.provider,
        "access_key_id": account.access_key_id,
        "regions": list(account.regions or []),
        "last_sync_status": account.last_sync_status,
        "last_sync_error": account.last_sync_error,
        "last_sync_at": f.rfc3339(account.last_sync_at),
        "last_sync_count": account.last_sync_count,
        "sync_every_hours": account.sync_every_hours,
        "next_sync_at": f.rfc3339(account.next_sync_at),
        "created_at": f.rfc3339(account.created_at),
    }


def list_all(session: Session) -> list[CloudAccount]:
    return list(session.scalars(select(CloudAccount).order_by(CloudAccount.id)))


def fetch_instances(provider: ECSProvider, regions: list[str]) -> list[Instance]:
    """All instances of every region, or the provider's error: nothing half-imported."""
    instances: list[Instance] = []
    for region in regions:
        instances.extend(provider.list_instances(region))
    return instances


def import_instances(session: Session, account: CloudAccount, instances: list[Instance]) -> dict:
    """Create or update one server per instance id; hand-written owner and notes stay."""
    created = updated = 0
    for inst in instances:
        values = {"name": inst.name[:128], "ip": inst.ip or "0.0.0.0", "region": inst.region,
                  "cpu": inst.cpu, "memory_gb": inst.memory_gb, "expires_at": inst.expires_at,
                  "cloud_status": inst.status, "cloud_account_id": account.id}
        server = _by_instance(session, account.provider, inst.instance_id)
        if server is None:
            try:
                with session.begin_nested():
                    session.add(Server(provider=account.provider, instance_id=inst.instance_id,
                                       **values))
                created += 1
                continue
            except IntegrityError:
                # another sync of the same account inserted it a moment ago
                server = _by_instance(session, account.provider, inst.instance_id)
        for key, value in values.items():
            setattr(server, key, value)
        updated += 1
    session.flush()
    return {"created": created, "updated": updated, "total": len(instances)}


def _by_instance(session: Session, provider: str, instance_id: str) -> Server | None:
    return session.scalar(select(Server).where(Server.provider == provider,
                                               Server.instance_id == instance_id))


def mark_syncing(account: CloudAccount) -> None:
    account.last_sync_status = "syncing"
    account.last_sync_error = None


def mark_result(account: CloudAccount, *, error: str | None = None, count: int | None = None,
                now=None) -> None:
    account.last_sync_status = "failed" if error else "ok"
    account.last_sync_error = error[:2000] if error else None
    account.last_sync_at = (now or utcnow()).replace(microsecond=0)
    if count is not None:
        account.last_sync_count = count
