"""Where servers come from: the ``ECSProvider`` interface and its implementations.

``AliyunProvider`` asks Alibaba Cloud's official ECS SDK (``alibabacloud_ecs20140526``,
OpenAPI signature ACS3-HMAC-SHA256) for DescribeInstances, page by page, region
by region. The SDK's own retries are left off: every call has its timeout and
goes through ``shared.retry`` so "how long do we keep trying" is decided in one
place. Errors the caller cannot fix by waiting (bad keys, no permission) are not
retried.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

from shared.retry import retry_call

PAGE_SIZE = 100          # the largest page DescribeInstances allows
MAX_PAGES = 1000         # a guard against a provider that never says "last page"
NO_EXPIRY_YEAR = 2099    # pay-as-you-go instances report 2099-12-31 as their "expiry"


class ProviderError(Exception):
    """The provider refused or could not be reached; the message is the provider's."""

    def __init__(self, message: str, *, transient: bool = False, code: str | None = None):
        super().__init__(message)
        self.transient = transient
        self.code = code


@dataclass(frozen=True)
class Instance:
    instance_id: str
    name: str
    ip: str
    region: str
    cpu: int | None = None
    memory_gb: float | None = None
    expires_at: datetime | None = None
    status: str | None = None


class ECSProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    def list_instances(self, region: str) -> Iterator[Instance]:
        """Every instance of this account in ``region``."""


class ManualProvider(ECSProvider):
    """Servers typed in by hand: there is nothing to import."""

    name = "manual"

    def list_instances(self, region: str) -> Iterator[Instance]:
        return iter(())


def parse_aliyun_time(value: str | None) -> datetime | None:
    """ECS times look like ``2026-12-01T16:00Z`` (UTC, minutes)."""
    if not value:
        return None
    text = value.strip().replace("Z", "")
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return None if parsed.year >= NO_EXPIRY_YEAR else parsed
    return None


def _first(addresses) -> str | None:
    items = getattr(addresses, "ip_address", None) if addresses is not None else None
    if isinstance(items, list):
        return next((a for a in items if a), None)
    return items or None


def instance_from_sdk(item, region: str) -> Instance:
    vpc = getattr(item, "vpc_attributes", None)
    eip = getattr(item, "eip_address", None)
    ip = (_first(item.public_ip_address)
          or (eip.ip_address if eip is not None and eip.ip_address else None)
          or _first(vpc.private_ip_address if vpc is not None else None)
          or _first(item.inner_ip_address)
          or "")
    memory_mb = item.memory
    return Instance(
        instance_id=item.instance_id,
        name=item.instance_name or item.host_name or item.instance_id,
        ip=ip,
        region=item.region_id or region,
        cpu=item.cpu,
        memory_gb=round(memory_mb / 1024, 2) if memory_mb else None,
        expires_at=parse_aliyun_time(item.expired_time),
        status=item.status,
    )


class AliyunProvider(ECSProvider):
    name = "aliyun"

    def __init__(self, access_key_id: str, access_key_secret: str, *, endpoint: str | None = None,
                 protocol: str = "https", timeout: float = 10.0, attempts: int = 3,
                 retry_base: float = 1.0):
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.endpoint = endpoint or None
        self.protocol = protocol or "https"
        self.timeout_ms = int(timeout * 1000)
        self.attempts = int(attempts)
        self.retry_base = float(retry_base)

    def _client(self, region: str):
        from alibabacloud_ecs20140526.client import Client
        from alibabacloud_tea_openapi.models import Config

        config = Config(
            access_key_id=self.access_key_id,
            access_key_secret=self.access_key_secret,
            region_id=region,
            protocol=self.protocol,
            connect_timeout=self.timeout_ms,
            read_timeout=self.timeout_ms,
        )
        if self.endpoint:
            config.endpoint = self.endpoint
        return Client(config)

    def _page(self, client, region: str, page: int):
        from alibabacloud_ecs20140526 import models
        from darabonba.runtime import RuntimeOptions

        request = models.DescribeInstancesRequest(region_id=region, page_number=page,
                                                  page_size=PAGE_SIZE)
        runtime = RuntimeOptions(autoretry=False, connect_timeout=self.timeout_ms,
                                 read_timeout=self.timeout_ms)

        def call():
            try:
                return client.describe_instances_with_options(request, runtime).body
            except Exception as exc:  # the SDK's errors have no common useful base
                raise as_provider_error(exc) from exc

        return retry_call(call, attempts=self.attempts, base=self.retry_base, cap=30.0,
                          retry_on=(TransientProviderError,))

    def list_instances(self, region: str) -> Iterator[Instance]:
        client = self._client(region)
        seen = 0
        for page in range(1, MAX_PAGES + 1):
            body = self._page(client, region, page)
            items = (body.instances.instance if body.instances else None) or []
            for item in items:
                yield instance_from_sdk(item, region)
            seen += len(items)
            if not items or seen >= (body.total_count or 0):
                return
        raise ProviderError(f"DescribeInstances in {region} did not end after {MAX_PAGES} pages.")


class TransientProviderError(ProviderError):
    pass


def as_provider_error(exc: Exception) -> ProviderError:
    """The SDK's exception as ours, keeping the provider's own code and message.

    4xx answers (bad keys, a wrong signature, no permission) will not change by
    waiting; 5xx, throttling and network errors (refused, timed out) may.
    """
    from alibabacloud_tea_openapi import exceptions as sdk

    code = getattr(exc, "code", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    text = f"{code}: {message}" if code and code != "None" else f"{type(exc).__name__}: {message}"
    if isinstance(exc, sdk.ThrottlingException) or isinstance(exc, sdk.ServerException):
        return TransientProviderError(text[:1000], transient=True, code=code)
    if isinstance(exc, sdk.ClientException):
        return ProviderError(text[:1000], code=code)
    return TransientProviderError(text[:1000], transient=True, code=code)


def provider_for(account, secret: str, config: dict) -> ECSProvider:
    if account.provider == "aliyun":
        return AliyunProvider(
            account.access_key_id, secret,
            endpoint=config.get("ALIYUN_ECS_ENDPOINT"),
            protocol=config.get("ALIYUN_ECS_PROTOCOL") or "https",
            timeout=float(config.get("CLOUD_TIMEOUT_SECONDS") or 10),
            attempts=int(config.get("CLOUD_ATTEMPTS") or 3),
            retry_base=float(config.get("CLOUD_RETRY_BASE") or 1.0),
        )
    return ManualProvider()
