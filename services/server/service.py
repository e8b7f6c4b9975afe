"""Entrypoints of the server service (the server inventory, cloud accounts and expiry reminders). Kept thin: logic lives in `domain`."""
from __future__ import annotations

import logging
import os
import uuid
from datetime import date

from nameko.dependency_providers import Config
from nameko.timer import timer

from services.server import metrics as server_metrics
from services.server import schemas
from services.server.domain import accounts, expiry, inventory, schedule
from services.server.domain.providers import ProviderError, provider_for
from services.server.models import ProcessedEvent
from services.server.retention import Retention
from shared.audit import AuditLog
from shared.clock import Clock
from shared.errors import Invalid
from shared.events import EventPublisher, handle_event
from shared.processed_events import first_delivery
from shared.secretbox import SecretBoxError, Secrets
from shared.service import ServiceBase, rpc

log = logging.getLogger(__name__)

# How often the timer asks "is it past today's scan time?"; the scan itself is
# idempotent per day, so asking often only costs a query.
SCAN_CHECK_SECONDS = 300
# How often each replica looks for cloud accounts whose scheduled import is due.
CLOUD_SYNC_CHECK_SECONDS = float(os.environ.get("CLOUD_SYNC_CHECK_SECONDS", "30"))


class ServerService(Retention, ServiceBase):
    name = "server"

    config = Config()
    events = EventPublisher()
    secrets = Secrets()
    clock = Clock()
    audit = AuditLog()

    # -- servers --------------------------------------------------------------
    def _audit(self, actor, action: str, target: str, details: dict, source_ip) -> None:
        """Every change an admin makes here is in the audit log (who, what, from where)."""
        self.audit.record((actor or {}).get("username"), action, target, details, source_ip)

    @rpc
    def create_server(self, data: dict, actor=None, source_ip=None) -> dict:
        server = inventory.create(self.db, data or {})
        self._audit(actor, "server_created", f"server:{server.id}", {"name": server.name}, source_ip)
        return inventory.to_dict(server, self.clock.now())

    @rpc
    def get_server(self, server_id: int) -> dict:
        return inventory.to_dict(inventory.get(self.db, server_id), self.clock.now())

    @rpc
    def list_servers(self, q: str | None = None, expiring_within_days: int | None = None,
                     limit: int | None = None, cursor: str | None = None) -> dict:
        return inventory.search(self.db, self.clock.now(), q=q, expiring_within_days=expiring_within_days,
                                limit=limit, cursor=cursor)

    @rpc
    def update_server(self, server_id: int, data: dict, actor=None, source_ip=None) -> dict:
        server = inventory.update(self.db, server_id, data or {})
        self._audit(actor, "server_updated", f"server:{server_id}", {"fields": sorted(data or {})}, source_ip)
        return inventory.to_dict(server, self.clock.now())

    @rpc
    def delete_server(self, server_id: int, actor=None, source_ip=None) -> None:
        inventory.delete(self.db, server_id)
        self._audit(actor, "server_deleted", f"server:{server_id}", {}, source_ip)

    # -- cloud accounts -------------------------------------------------------
    @rpc
    def create_cloud_account(self, data: dict, actor=None, source_ip=None) -> dict:
        account = accounts.create(self.db, self.secrets, data or {})
        self._audit(actor, "cloud_account_created", f"cloud_account:{account.id}",
                    {"name": account.name, "provider": account.provider}, source_ip)
        return accounts.to_dict(account)

    @rpc
    def list_cloud_accounts(self) -> dict:
        return {"items": [accounts.to_dict(a) for a in accounts.list_all(self.db)],
                "next_cursor": None}

    @rpc
    def get_cloud_account(self, account_id: int) -> dict:
        return accounts.to_dict(accounts.get(self.db, account_id))

    @rpc
    def schedule_cloud_account(self, account_id: int, data: dict, actor=None, source_ip=None) -> dict:
        """``{"sync_every_hours"}``: import the account's servers every so many hours (null/0: never)."""
        account = accounts.get(self.db, account_id)
        schedule.set_every(account, schedule.hours(data), self.clock.now())
        self._audit(actor, "cloud_account_scheduled", f"cloud_account:{account.id}",
                    {"sync_every_hours": account.sync_every_hours}, source_ip)
        return accounts.to_dict(account)

    @timer(interval=CLOUD_SYNC_CHECK_SECONDS)
    def scheduled_cloud_syncs(self) -> None:
        """Queue the imports whose period has come; a period claimed here is claimed nowhere else."""
        now = self.clock.now()
        for account_id, seen in schedule.due(self.db, now):
            if schedule.claim(self.db, account_id, seen, now):
                self.events.publish(schemas.CLOUD_SYNC_REQUESTED, {"account_id": account_id})
                self.db.commit()

    @rpc
    def sync_cloud_account(self, account_id: int, actor=None, source_ip=None) -> dict:
        """Mark the account syncing and queue the sync; the API answers 202 at once."""
        account = accounts.get(self.db, account_id)
        self._audit(actor, "cloud_account_synced", f"cloud_account:{account.id}", {}, source_ip)
        accounts.mark_syncing(account)
        self.events.publish(schemas.CLOUD_SYNC_REQUESTED, {"account_id": account.id})
        return accounts.to_dict(account)

    @handle_event("server", schemas.CLOUD_SYNC_REQUESTED)
    def run_cloud_sync(self, event: dict) -> None:
        if not first_delivery(self.db, ProcessedEvent, event):
            return
        account = accounts.get(self.db, event["data"]["account_id"])
        try:
            secret = self.secrets.decrypt(account.access_key_secret,
                                          accounts.secret_context(account.id))
            provider = provider_for(account, secret, self.config)
            instances = accounts.fetch_instances(provider, list(account.regions or []))
        except ProviderError as exc:
            log.warning("cloud sync failed", extra={"account_id": account.id, "error": str(exc)})
            accounts.mark_result(account, error=str(exc), now=self.clock.now())
            return
        except SecretBoxError as exc:
            accounts.mark_result(account, error=f"The stored secret cannot be decrypted: {exc}.",
                                 now=self.clock.now())
            return
        result = accounts.import_instances(self.db, account, instances)
        accounts.mark_result(account, count=result["total"], now=self.clock.now())

    # -- expiry reminders -----------------------------------------------------
    @rpc
    def scan_expiring(self, today: str | None = None) -> dict:
        """Send today's ``server.expiring`` reminders (``today``, YYYY-MM-DD, runs the scan
        as of another day: an operator re-sending a missed day's reminders)."""
        try:
            day = date.fromisoformat(today) if today else self.clock.today()
        except (TypeError, ValueError):
            raise Invalid("today must be a date (YYYY-MM-DD).", {"field": "today"})
        thresholds = expiry.parse_thresholds(self.config.get("SERVER_EXPIRY_DAYS", [30, 7, 1]))
        server_metrics.configure(thresholds)
        sent = expiry.scan(
            self.db, day, thresholds,
            publish=lambda data, event_id: self.events.publish(schemas.EXPIRING, data, event_id),
            new_event_id=lambda: uuid.uuid4().hex)
        return {"day": day.isoformat(), "sent": sent}

    @timer(interval=SCAN_CHECK_SECONDS)
    def daily_expiry_scan(self) -> None:
        if self.config.get("SERVER_EXPIRY_SCAN_ENABLED", True) in (False, "false", "0", 0):
            return
        now = self.clock.now()
        if expiry.scan_due(now, self.config.get("SERVER_EXPIRY_SCAN_AT", "09:00")):
            self.scan_expiring(None)
