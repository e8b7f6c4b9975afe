"""Entrypoints of the notify service (notification channels, subscriptions and deliveries; the seed design's "MUMS"). Kept thin: logic lives in `domain`."""
from __future__ import annotations

import logging

from nameko.dependency_providers import Config

from services.notify.domain import channels, deliveries
from services.notify.domain.events import public_name
from services.notify.domain.targets import DeliveryError, NotAllowedError
from sqlalchemy import delete

from services.notify.retention import Retention
from services.notify.models import Channel, Delivery, ProcessedEvent
from shared.audit import AuditLog
from shared.errors import Unavailable, UrlNotAllowed
from shared.events import handle_event
from shared.processed_events import first_delivery
from shared.outbound import Outbound
from shared.secretbox import Secrets
from shared.service import ServiceBase, configured_timer, rpc
from shared.timeutil import parse_rfc3339, utcnow

log = logging.getLogger(__name__)

# Every NOTIFY_SWEEP_SECONDS a replica looks for deliveries due: retries whose pause is over, and
# those another replica left behind.


def _first_delivery(session, model, event: dict) -> bool:
    """``shared.processed_events.first_delivery`` in one statement: ``INSERT IGNORE`` adds the id
    unless it is there (a concurrent replica's uncommitted insert of the same id makes it
    wait, then skip): one round trip per event instead of a SELECT and an ORM flush, which
    cost most of this service's CPU per event. Ids the column cannot hold go the checked way."""
    event_id = event["event_id"]
    if not isinstance(event_id, str) or len(event_id) > 64:
        return first_delivery(session, model, event)
    result = session.connection().exec_driver_sql(
        f"INSERT IGNORE INTO {model.__tablename__} (event_id, event_type, processed_at) VALUES (%s, %s, %s)",
        (event_id, str(event.get("type", ""))[:128], utcnow()))
    return result.rowcount == 1


class NotifyService(Retention, ServiceBase):
    name = "notify"

    config = Config()
    secrets = Secrets()
    audit = AuditLog()
    # Every channel URL is checked with it at save and (resolved again) at each send.
    outbound = Outbound()

    # -- channels -------------------------------------------------------------
    @rpc
    def create_channel(self, app: str | None, data: dict, actor: dict | None = None,
                       source_ip: str | None = None) -> dict:
        channel = channels.create(self.db, self.secrets, app, data or {}, self.outbound)
        self._audit(actor, "channel_created", channel, source_ip)
        return channels.to_dict(channel)

    @rpc
    def list_channels(self, app: str | None) -> dict:
        return {"items": [channels.to_dict(c) for c in channels.list_for(self.db, app)],
                "next_cursor": None}

    @rpc
    def get_channel(self, app: str | None, channel_id: int) -> dict:
        return channels.to_dict(channels.get(self.db, app, channel_id))

    @rpc
    def delete_channel(self, app: str | None, channel_id: int, actor: dict | None = None,
                       source_ip: str | None = None) -> None:
        channel = channels.get(self.db, app, channel_id)
        self._audit(actor, "channel_deleted", channel, source_ip)
        channels.delete(self.db, app, channel_id)

    def _audit(self, actor: dict | None, action: str, channel, source_ip: str | None) -> None:
        """An audit entry for a channel change (sent after the commit, through the outbox):
        who, which channel, its name, type and events — never its URL (a bot's URL is its
        credential) nor its secret; the URL's host alone says where it posts."""
        self.audit.record((actor or {}).get("username"), action, channels.audit_target(channel),
                          channels.audit_details(channel), source_ip)

    @rpc
    def send_test(self, app: str | None, channel_id: int) -> dict:
        channel = channels.get(self.db, app, channel_id)
        policy = deliveries.Policy.from_config(
            {**self.config, "NOTIFY_ATTEMPTS": self.config.get("NOTIFY_TEST_ATTEMPTS", 2)})
        try:
            return deliveries.send_test(self.secrets, channel, self._console_url(), policy,
                                        http=self.outbound)
        except NotAllowedError as exc:
            raise UrlNotAllowed(f"The channel's url is {exc}.",
                                {"channel_id": channel.id, "field": "url", "reason": exc.reason})
        except DeliveryError as exc:
            raise Unavailable(f"The channel did not accept the test message: {exc}",
                              {"channel_id": channel.id, "reason": str(exc)})

    @rpc
    def list_deliveries(self, app: str | None, limit: int | None = None,
                        cursor: str | None = None) -> dict:
        return deliveries.recent(self.db, app, limit, cursor)

    # -- events ---------------------------------------------------------------
    @handle_event("org", "application_deleted")
    def on_application_deleted(self, event):
        """A deleted app's channels (and their deliveries, by cascade) go with it: a later app of
        the same name can neither see them nor post to that team's bots."""
        if not _first_delivery(self.db, ProcessedEvent, event):
            return
        name = (event.get("data") or {}).get("name")
        try:
            before = parse_rfc3339(event.get("occurred_at") or "")
        except (TypeError, ValueError):
            before = utcnow()
        if name:
            self.db.execute(delete(Delivery).where(Delivery.app == name, Delivery.created_at <= before))
            self.db.execute(delete(Channel).where(Channel.app == name, Channel.created_at <= before))
        self.db.commit()

    @handle_event("deploy", "succeeded")
    def on_deploy_succeeded(self, event):
        self._consume("deploy", "succeeded", event)

    @handle_event("deploy", "failed")
    def on_deploy_failed(self, event):
        self._consume("deploy", "failed", event)

    @handle_event("deploy", "build_succeeded")
    def on_build_succeeded(self, event):
        self._consume("deploy", "build_succeeded", event)

    @handle_event("deploy", "build_failed")
    def on_build_failed(self, event):
        self._consume("deploy", "build_failed", event)

    @handle_event("server", "expiring")
    def on_server_expiring(self, event):
        self._consume("server", "expiring", event)

    @handle_event("cluster", "unreachable")
    def on_cluster_unreachable(self, event):
        self._consume("cluster", "unreachable", event)

    def _consume(self, source: str, event_type: str, event: dict) -> None:
        if not _first_delivery(self.db, ProcessedEvent, event):
            return
        planned = deliveries.plan(self.db, public_name(source, event_type), event)
        # The deliveries exist before anyone is called: a crash from here on
        # leaves rows for the sweep, never a lost or a doubled notice.
        self.db.commit()
        self._send(planned)

    @configured_timer("NOTIFY_SWEEP_SECONDS", 2)
    def sweep_due_deliveries(self) -> None:
        policy = deliveries.Policy.from_config(self.config)
        self._send(deliveries.due(self.db, pending_grace=policy.lease_seconds))

    def _send(self, delivery_ids: list[int]) -> None:
        policy = deliveries.Policy.from_config(self.config)
        for delivery_id in delivery_ids:
            if not deliveries.claim(self.db, delivery_id, policy.lease_seconds):
                self.db.commit()
                continue
            self.db.commit()
            try:
                deliveries.deliver(self.db, self.secrets, delivery_id, console_url=self._console_url(),
                                   policy=policy, commit=self.db.commit, http=self.outbound)
            except Exception:  # left "sending": the sweep retries it once its lease runs out
                log.exception("delivery crashed", extra={"delivery_id": delivery_id})
                self.db.rollback()

    def _console_url(self) -> str:
        return str(self.config.get("CONSOLE_URL") or self.config.get("PUBLIC_URL") or "http://127.0.0.1:8080").rstrip("/")
