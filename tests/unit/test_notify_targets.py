"""Signing, rendering and judging answers for each kind of target: pure functions."""
import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from services.notify.domain import channels, events, render, signing, targets
from services.notify.domain.deliveries import Policy
from shared.errors import Invalid

EVENT = {"event_id": "e1", "type": "deploy.failed", "source": "deploy", "occurred_at": "2033-03-10T00:00:00Z",
         "data": {"record_id": 12, "app": "shop", "service": "api", "version": "v2", "action": "deploy",
                  "status": "failed", "reason": "CrashLoopBackOff",
                  "targets": [{"cluster": "prod-1", "env": "prod", "status": "failed",
                               "reason": "CrashLoopBackOff", "message": "back-off restarting"}],
                  "created_by": "alice"}}


def test_feishu_sign_matches_the_documented_example_algorithm():
    # Feishu's sample: key = f"{timestamp}\n{secret}", message empty, base64 of the HMAC-SHA256 digest
    ts, secret = 1599360473, "demo"
    key = f"{ts}\n{secret}".encode("utf-8")
    assert signing.feishu_sign(secret, ts) == base64.b64encode(
        hmac.new(key, "".encode("utf-8"), digestmod=hashlib.sha256).digest()).decode("utf-8")


def test_dingtalk_sign_is_url_encoded_once_in_the_query():
    out = targets.build("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=abc", "SECx",
                        "deploy.failed", EVENT, "http://console", now=1700000000.123)
    query = parse_qs(urlsplit(out.url).query)
    assert query["timestamp"] == ["1700000000123"] and query["access_token"] == ["abc"]
    expected = base64.b64encode(hmac.new(b"SECx", b"1700000000123\nSECx", hashlib.sha256).digest()).decode()
    assert query["sign"] == [expected]


def test_webhook_signature_is_over_the_exact_body():
    out = targets.build("webhook", "https://hooks.example/x", "s3", "deploy.failed", EVENT, "http://c")
    assert out.headers["X-MAE-Signature"] == "sha256=" + hmac.new(b"s3", out.body, hashlib.sha256).hexdigest()
    assert out.headers["X-MAE-Event"] == "deploy.failed" and out.headers["X-MAE-Delivery"] == "e1"


def test_unsigned_targets_carry_no_signature():
    assert "sign" not in json.loads(targets.build("feishu", "https://f/x", None, "deploy.failed", EVENT, "c").body)
    assert "X-MAE-Signature" not in targets.build("webhook", "https://w", None, "deploy.failed", EVENT, "c").headers


def test_summary_names_everything_a_reader_needs():
    s = render.summarize("deploy.failed", EVENT, "http://console:8080/")
    text = json.dumps(render.feishu_card(s)) + render.dingtalk_markdown(s)["markdown"]["text"]
    for needle in ("shop", "api", "v2", "prod-1", "CrashLoopBackOff", "http://console:8080/#/records/12"):
        assert needle in text


@pytest.mark.parametrize("days_left, expired, title", [
    (7, False, "Server db-1 expires in 7 days"),
    (1, False, "Server db-1 expires in 1 day"),
    (0, False, "Server db-1 expires today"),
    (-1, True, "Server db-1 expired 1 day ago"),
    (-30, True, "Server db-1 expired 30 days ago"),
])
def test_expiry_reminder_says_when_and_whether_it_has_expired(days_left, expired, title):
    data = {"server_id": 3, "name": "db-1", "ip": "10.0.0.3", "provider": "manual",
            "expires_at": "2031-01-01T00:00:00Z", "days_left": days_left, "expired": expired, "owner": None}
    summary = render.summarize("server.expiring", {"type": "server.expiring", "data": data}, "http://c")
    assert summary.title == title
    assert ("Days left", str(days_left)) in summary.fields


@pytest.mark.parametrize("kind, status, body, ok", [
    ("feishu", 200, '{"code":0,"msg":"success","data":{}}', True),
    ("feishu", 200, '{"StatusCode":0,"StatusMessage":"success"}', True),
    ("feishu", 200, '{"code":19021,"msg":"sign match fail"}', False),
    ("dingtalk", 200, '{"errcode":0,"errmsg":"ok"}', True),
    ("dingtalk", 200, '{"errcode":310000,"errmsg":"sign not match"}', False),
    ("dingtalk", 200, "<html>", False),
    ("webhook", 204, "", True),
    ("webhook", 500, "boom", False),
])
def test_judge(kind, status, body, ok):
    if ok:
        targets.judge(kind, status, body)
    else:
        with pytest.raises(targets.DeliveryError):
            targets.judge(kind, status, body)


def test_event_table_and_platform_only_events():
    assert events.public_name("deploy", "build_failed") == "build.failed"
    assert "server.expiring" in events.subscribable(None)
    assert "server.expiring" not in events.subscribable("shop")
    with pytest.raises(Invalid):
        channels.clean("shop", {"name": "x", "type": "webhook", "url": "https://x", "events": ["server.expiring"]})


def test_urls_are_masked():
    masked = channels.mask_url("https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef")
    assert "0123456789abcdef" not in masked and "access_token=0123****" in masked
    assert channels.mask_url("https://open.feishu.cn/open-apis/bot/v2/hook/9f1c2d3e-4b5a-6789") \
        == "https://open.feishu.cn/open-apis/bot/v2/hook/9f1c****"


def test_lease_outlasts_one_attempt_and_pauses_grow_to_their_cap():
    p = Policy(attempts=5, base=2, cap=60, timeout=5)
    assert p.lease_seconds > p.timeout
    pauses = [p.pause_after(n) for n in range(1, 9)]
    assert 1.6 <= pauses[0] <= 2.4 and 3.2 <= pauses[1] <= 4.8  # base, then doubled, ±20 %
    assert max(pauses) <= 60 * 1.2 and pauses[-1] >= 60 * 0.8  # capped


def test_a_failed_send_does_not_name_the_urls_secrets():
    """Network errors quote the URL they failed on; the message reaches last_error,
    the API and the logs, so the URL's token, hook id and password are scrubbed."""
    class Refusing:
        def post(self, url, **kwargs):
            import requests
            raise requests.ConnectionError(f"Max retries exceeded with url: {urlsplit(url).path}?"
                                           f"{urlsplit(url).query} ({url})")

    for url, secret in [("http://127.0.0.1:9/robot/send?access_token=tok+en/0123456789", "tok+en/0123456789"),
                        ("http://127.0.0.1:9/open-apis/bot/v2/hook/9f1c2d3e-4b5a-6789", "9f1c2d3e-4b5a-6789"),
                        ("http://ops:pa55word-1@127.0.0.1:9/hook", "pa55word-1")]:
        with pytest.raises(targets.DeliveryError) as caught:
            targets.send(targets.Outgoing(url, {}, b"{}"), "webhook", 1, http=Refusing())
        message = str(caught.value)
        assert "ConnectionError" in message and "****" in message
        assert secret not in message and secret.replace("/", "%2F").replace("+", "%2B") not in message
