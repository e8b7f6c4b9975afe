"""A stand-in for the Alibaba Cloud ECS OpenAPI (DescribeInstances, version 2014-05-26).

It answers like ECS: JSON with RequestId, TotalCount/PageNumber/PageSize and
Instances.Instance, and ECS-style error bodies ({"Code", "Message", "RequestId"}).
Before answering it recomputes the request's ACS3-HMAC-SHA256 signature (the
scheme the official Python SDK ``alibabacloud_ecs20140526`` uses) from what
arrived on the wire with the secret it knows for the access key id, and refuses
a request whose signature, payload hash or date does not match.
"""
from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from tests.fakes import FakeHTTPServer, Received

ALGORITHM = "ACS3-HMAC-SHA256"


def instance(instance_id: str, region: str, *, name: str | None = None, public_ip: str | None = None,
             private_ip: str = "172.16.0.1", cpu: int = 2, memory_mb: int = 4096,
             expired_time: str = "2099-12-31T15:59Z", status: str = "Running",
             charge_type: str = "PrePaid") -> dict:
    """One item of ``Instances.Instance`` the way DescribeInstances returns it."""
    return {
        "InstanceId": instance_id,
        "InstanceName": name or instance_id,
        "HostName": (name or instance_id).lower(),
        "RegionId": region,
        "ZoneId": f"{region}-a",
        "Cpu": cpu,
        "Memory": memory_mb,
        "ExpiredTime": expired_time,
        "CreationTime": "2026-01-01T00:00Z",
        "Status": status,
        "InstanceChargeType": charge_type,
        "OSName": "Ubuntu 22.04 64bit",
        "PublicIpAddress": {"IpAddress": [public_ip] if public_ip else []},
        "InnerIpAddress": {"IpAddress": []},
        "EipAddress": {"IpAddress": "", "AllocationId": "", "InternetChargeType": ""},
        "VpcAttributes": {"PrivateIpAddress": {"IpAddress": [private_ip]},
                          "VpcId": "vpc-fake", "VSwitchId": "vsw-fake", "NatIpAddress": ""},
    }


def canonical_query(query: dict) -> str:
    return "&".join(f"{k}={quote(query[k], safe='~')}" for k in sorted(query))


def expected_signature(request: Received, secret: str, signed_headers: list[str]) -> str:
    headers = "".join(f"{h}:{request.headers.get(h, '').strip()}\n" for h in signed_headers)
    canonical = "\n".join([
        request.method, request.path or "/", canonical_query(request.query), headers,
        ";".join(signed_headers), hashlib.sha256(request.body).hexdigest(),
    ])
    to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


class FakeECS(FakeHTTPServer):
    def __init__(self, keys: dict[str, str], max_page_size: int = 100):
        super().__init__()
        self.keys = dict(keys)                    # access key id -> secret
        self.regions: dict[str, list[dict]] = {}  # region -> instances
        self.max_page_size = max_page_size

    def add(self, region: str, *items: dict) -> None:
        self.regions.setdefault(region, []).extend(items)

    def accepted(self, answer) -> bool:
        return "Code" not in answer

    @staticmethod
    def error(status: int, code: str, message: str):
        return status, {"RequestId": uuid.uuid4().hex.upper(), "HostId": "ecs.aliyuncs.com",
                        "Code": code, "Message": message, "Recommend": ""}

    def check_signature(self, request: Received):
        auth = request.headers.get("authorization", "")
        if not auth.startswith(ALGORITHM + " "):
            return self.error(400, "IncompleteSignature",
                              "The request signature does not conform to Aliyun standards.")
        parts = dict(p.split("=", 1) for p in auth[len(ALGORITHM) + 1:].split(",") if "=" in p)
        key_id = parts.get("Credential", "")
        if key_id not in self.keys:
            return self.error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        signed = parts.get("SignedHeaders", "").split(";")
        required = {"host", "x-acs-action", "x-acs-version", "x-acs-date",
                    "x-acs-signature-nonce", "x-acs-content-sha256"}
        if not required <= set(signed):
            return self.error(400, "IncompleteSignature",
                              f"SignedHeaders must include {sorted(required)}.")
        if request.headers.get("x-acs-content-sha256") != hashlib.sha256(request.body).hexdigest():
            return self.error(400, "IncompleteSignature", "x-acs-content-sha256 does not match the body.")
        try:
            sent = datetime.strptime(request.headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            return self.error(400, "InvalidTimeStamp.Format", "Specified time stamp is not valid.")
        if abs(datetime.now(timezone.utc).replace(tzinfo=None) - sent) > timedelta(minutes=15):
            return self.error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        if not hmac.compare_digest(parts.get("Signature", ""),
                                   expected_signature(request, self.keys[key_id], signed)):
            return self.error(400, "SignatureDoesNotMatch",
                              "Specified signature is not matched with our calculation.")
        return None

    def answer(self, request: Received):
        refused = self.check_signature(request)
        if refused:
            return refused
        action = request.headers.get("x-acs-action")
        if action != "DescribeInstances" or request.headers.get("x-acs-version") != "2014-05-26":
            return self.error(400, "InvalidAction.NotFound", f"Specified api {action} is not found.")
        region = request.query.get("RegionId", "")
        if region not in self.regions:
            return self.error(400, "InvalidRegionId.NotFound", "The specified RegionId does not exist.")
        page = int(request.query.get("PageNumber") or 1)
        size = min(int(request.query.get("PageSize") or 10), self.max_page_size)
        items = self.regions[region]
        chunk = items[(page - 1) * size: page * size]
        return 200, {
            "RequestId": uuid.uuid4().hex.upper(),
            "TotalCount": len(items),
            "PageNumber": page,
            "PageSize": size,
            "NextToken": "",
            "Instances": {"Instance": chunk},
        }
