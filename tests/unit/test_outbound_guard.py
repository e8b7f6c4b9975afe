"""The outbound guard (shared/outbound/): which URLs MAE calls, and how it calls them.

A table of URLs → allowed or refused (with the reason), operator allow/deny entries, MAE's
own infrastructure, and requests through the guard to local HTTP servers: redirects not
followed, DNS rebinding refused at connect time (the resolver is injected: it answers a
public address when the URL is saved and 127.0.0.1 when the request connects), the
checked address is the one connected to, and no remote body reaches an error message.
"""
import json
import socket

import pytest

from services.deploy.domain.ci import DroneProvider
from services.notify.domain import targets
from shared import outbound
from shared.errors import BadRequest, Invalid, Unavailable, UrlNotAllowed, http_status
from shared.outbound import Guard, NotAllowed, OutboundError, TimedOut, parse_entries
from tests.fakes.responder import Responder

PUBLIC = "93.184.216.34"
MARKER = "REMOTE-BODY-7f3a9c"   # what a remote server says; must never reach a message

NAMES = {
    "drone.example": [PUBLIC],
    "internal.example": ["10.0.0.5"],
    "mixed.example": [PUBLIC, "127.0.0.1"],
    "v6.example": ["2606:2800:220:1:248:1893:25c8:1946"],
    "mapped.example": ["::ffff:169.254.169.254"],
    "db.internal": ["10.9.9.9"],
    "mq.example": ["52.1.2.3"],
    "mae.example.com": ["52.1.2.4"],
    "drone.corp": ["10.20.30.40"],
    "ci.drone.corp": ["10.20.30.41"],
    "evil.example": [PUBLIC],
}


def resolver(host, port):
    if host in NAMES:
        return list(NAMES[host])
    if host == "localhost":
        return outbound.system_resolver(host, port)  # what this machine's resolver says
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


CONFIG = {
    "DB_URL": "mysql+pymysql://root:@db.internal:3306/mae?charset=utf8mb4",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "AMQP_URI": "pyamqp://guest:guest@mq.example:5672/",
    "PUBLIC_URL": "https://mae.example.com",
    "WEB_SERVER_ADDRESS": "0.0.0.0:9101",
    "OAUTH_PROVIDERS": {"local": {"client_id": "mae", "token_url": "http://127.0.0.1:8090/token"},
                        "github": {"client_id": "", "token_url": "https://github.com/login/oauth"}},
}


def guard(allow=(), deny=(), **config):
    return Guard.from_config({**CONFIG, "OUTBOUND_ALLOW": list(allow), "OUTBOUND_DENY": list(deny),
                              **config}, resolver=resolver)


def refusal(g, url, server=False):
    try:
        g.check(url, server=server)
    except NotAllowed as exc:
        return exc.reason
    return None


# -- the table ------------------------------------------------------------------------
@pytest.mark.parametrize("url, reason", [
    # loopback, in every spelling getaddrinfo accepts
    ("http://127.0.0.1:6379/", "infrastructure"),    # REDIS_URL
    ("http://127.0.0.1:6380/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://127.0.0.1./", "loopback"),
    ("http://2130706433/", "loopback"),             # decimal
    ("http://017700000001/", "loopback"),           # octal
    ("http://0x7f.1/", "loopback"),                 # hex, short form
    ("http://0x7f000001:5672/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://[::1]:3306/", "loopback"),
    ("http://[::ffff:127.0.0.1]:6379/", "infrastructure"),  # IPv4-mapped IPv6
    ("http://[::ffff:127.0.0.1]:6380/", "loopback"),
    ("http://[::ffff:7f00:1]/", "loopback"),
    ("http://[64:ff9b::7f00:1]/", "loopback"),        # NAT64 of 127.0.0.1
    ("http://[2002:7f00:1::]/", "loopback"),          # 6to4 carrying 127.0.0.1
    ("http://localhost:3306/", "loopback"),           # a name that resolves to loopback
    ("http://LOCALHOST./", "loopback"),
    # cloud metadata and link-local
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://mapped.example/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fe80::1%25eth0]/", "host"),
    ("http://100.100.100.200/latest/meta-data/", "metadata"),   # Alibaba Cloud
    ("http://[fd00:ec2::254]/", "metadata"),                     # AWS, IPv6
    # unspecified, multicast, reserved
    ("http://0.0.0.0:6379/", "unspecified"),
    ("http://0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://255.255.255.255/", "reserved"),
    ("http://240.0.0.1/", "reserved"),
    ("http://[::7f00:1]/", "reserved"),               # IPv4-compatible (deprecated)
    # private networks and other non-public ranges
    ("http://10.1.2.3/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.1:8080/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://internal.example/", "private"),
    ("http://100.64.0.1/", "shared"),
    ("http://192.0.2.1/", "not-public"),
    ("http://198.18.0.1/", "not-public"),
    ("http://[2001:db8::1]/", "not-public"),
    # every address of a name is checked
    ("http://mixed.example/", "loopback"),
    ("http://nowhere.example/", "unresolvable"),
    # MAE's own infrastructure, even at public addresses
    ("http://mq.example:5672/", "infrastructure"),
    ("https://mae.example.com/api/v1/apps", "infrastructure"),
    ("http://52.1.2.3:15672/", "infrastructure"),     # another port of an infrastructure host
    # the URL itself
    ("http://user:pw@93.184.216.34/", "credentials"),
    ("http://93.184.216.34@127.0.0.1/", "credentials"),
    ("http://:@93.184.216.34/", "credentials"),
    ("http://93.184.216.34#@127.0.0.1/", "fragment"),
    ("http://93.184.216.34/#top", "fragment"),
    ("http://example.com\\@127.0.0.1/", "malformed"),
    ("http://93.184.216.34 /", "malformed"),
    ("http:///path", "malformed"),
    ("http:/93.184.216.34/", "malformed"),
    ("ftp://93.184.216.34/", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://93.184.216.34:6379/_PING", "scheme"),
    ("dict://93.184.216.34:6379/info", "scheme"),
    ("http://93.184.216.34:0/", "port"),
    ("http://93.184.216.34:99999/", "port"),
    ("http://93.184.216.34:80:80/", "host"),
    ("http://exa_mple..com/", "host"),
    ("http://bücher.example/", "host"),
    ("http://999.1.1.1/", "host"),
    # allowed
    ("http://93.184.216.34/", None),
    ("https://drone.example/api/repos", None),
    ("https://drone.example:8443/robot/send?access_token=abc", None),
    ("http://[2606:2800:220:1:248:1893:25c8:1946]/", None),
    ("http://v6.example/", None),
    ("http://0x5db8d822/", None),                    # 93.184.216.34, in hex
])
def test_urls_are_allowed_or_refused_with_a_reason(url, reason):
    assert refusal(guard(), url) == reason


@pytest.mark.parametrize("url, result", [
    ("http://drone.example", "http://drone.example"),
    ("http://drone.example/", "http://drone.example"),
    ("HTTPS://Drone.Example:8443/ci/", "https://drone.example:8443/ci"),
    ("http://0x5db8d822:8080", f"http://{PUBLIC}:8080"),
    ("http://[2606:2800:220:1:248:1893:25c8:1946]/", "http://[2606:2800:220:1:248:1893:25c8:1946]"),
    ("http://drone.example/?x=1", "query"),
    ("http://drone.example?", "query"),
    ("http://drone.example/#frag", "fragment"),
    ("http://drone.example/a/../b", "path"),
    ("http://drone.example/./b", "path"),
    ("http://drone.example//evil", "path"),
    ("http://drone.example/%2e%2e/api", "path"),
    ("http://drone.example/a;b", "path"),
    ("http://token:x@drone.example", "credentials"),
    ("http://0x7f.1", "loopback"),
])
def test_a_ci_server_url_is_normalised_and_cannot_smuggle_a_path(url, result):
    g = guard()
    try:
        assert g.check(url, server=True).url == result
    except NotAllowed as exc:
        assert exc.reason == result


def test_save_time_refusal_is_422_url_not_allowed_naming_field_and_reason():
    with pytest.raises(UrlNotAllowed) as caught:
        guard().check_url("http://169.254.169.254/latest/meta-data/", field="server", server=True)
    error = caught.value
    assert isinstance(error, Invalid) and http_status(error) == 422 and error.code == "url_not_allowed"
    assert error.details == {"field": "server", "reason": "link-local"}
    assert "not allowed" in error.message and "link-local" in error.message


# -- OUTBOUND_ALLOW / OUTBOUND_DENY ------------------------------------------------------
def test_allow_entries_open_exactly_what_they_name():
    g = guard(allow=["127.0.0.1:18100-18899", "10.9.0.0/16", "drone.corp:443", "[fd12::1]"])
    assert refusal(g, "http://127.0.0.1:18123/") is None
    assert refusal(g, "http://127.0.0.1:18099/") == "loopback"
    assert refusal(g, "http://127.0.0.2:18123/") == "loopback"
    assert refusal(g, "http://10.9.1.1:8080/") is None
    assert refusal(g, "http://10.10.1.1/") == "private"
    assert refusal(g, "https://drone.corp/") is None
    assert refusal(g, "http://drone.corp/") == "private"          # port 80 is not 443
    assert refusal(g, "https://10.20.30.40/") == "private"         # the name was allowed, not the address
    assert refusal(g, "https://ci.drone.corp/") == "private"
    assert refusal(g, "http://[fd12::1]:8080/") is None
    assert refusal(guard(allow=["*.drone.corp"]), "http://ci.drone.corp/") is None
    assert refusal(guard(allow=["::ffff:10.20.30.40"]), "http://10.20.30.40/") is None


def test_mae_infrastructure_stays_refused_when_its_host_is_allowed():
    g = guard(allow=["127.0.0.1", "10.9.0.0/16", "0.0.0.0/0", "::/0"])
    assert refusal(g, "http://127.0.0.1:6379/") == "infrastructure"          # REDIS_URL
    assert refusal(g, "http://127.0.0.2:6379/") == "infrastructure"          # any loopback address
    assert refusal(g, "http://[::1]:6379/") == "infrastructure"
    assert refusal(g, "http://localhost:6379/") == "infrastructure"
    assert refusal(g, "http://2130706433:6379/") == "infrastructure"
    assert refusal(g, "http://127.0.0.1:9101/") == "infrastructure"          # WEB_SERVER_ADDRESS 0.0.0.0
    assert refusal(g, "http://127.0.0.1:8090/") == "infrastructure"          # the login provider in use
    assert refusal(g, "http://db.internal:3306/") == "infrastructure"        # DB_URL by name
    assert refusal(g, "http://10.9.9.9:3306/") == "infrastructure"           # and by address
    assert refusal(g, "http://10.9.9.9:22/") is None                          # allowed: another port
    assert refusal(g, "http://127.0.0.1:18123/") is None
    assert refusal(g, "https://github.com/") != "infrastructure"              # a provider not in use


def test_some_addresses_no_allow_entry_opens():
    g = guard(allow=["0.0.0.0/0", "::/0", "169.254.169.254", "100.100.100.200"])
    for url, reason in [("http://169.254.169.254/", "link-local"), ("http://100.100.100.200/", "metadata"),
                        ("http://0.0.0.0:8000/", "unspecified"), ("http://224.0.0.1/", "multicast"),
                        ("http://[fe80::1]/", "link-local")]:
        assert refusal(g, url) == reason, url


def test_deny_wins_over_allow_and_over_public():
    g = guard(allow=["10.9.0.0/16", "evil.example"], deny=["10.9.9.0/24", "evil.example", f"{PUBLIC}:8080",
                                                           "*.bad.example"])
    assert refusal(g, "http://10.9.9.1/") == "denied"
    assert refusal(g, "http://10.9.8.1/") is None
    assert refusal(g, "http://evil.example/") == "denied"
    assert refusal(g, f"http://{PUBLIC}:8080/") == "denied"
    assert refusal(g, f"http://{PUBLIC}/") is None
    assert refusal(g, "http://www.bad.example/") == "denied"


@pytest.mark.parametrize("value", [["10.0.0.0/33"], ["10.0.0.1:0"], ["10.0.0.1:9-1"], ["host name"],
                                   ["http://x/"], [":80"], ["[::1"]])
def test_bad_entries_stop_the_service_from_starting(value):
    with pytest.raises(ValueError):
        Guard.from_config({"OUTBOUND_ALLOW": value})


def test_entries_may_be_one_string_from_the_environment():
    entries = parse_entries("10.1.2.3:443, drone.corp [fd00::]:8443")
    assert [e.text for e in entries] == ["10.1.2.3:443", "drone.corp", "[fd00::]:8443"]
    assert parse_entries(None) == [] and parse_entries("") == []


# -- requests through the guard ----------------------------------------------------------
Server = Responder   # a local HTTP server answering ``respond(path) -> (status, headers, body)``


@pytest.fixture
def servers():
    started = []

    def start(respond, **kw):
        server = Server(respond, **kw)
        started.append(server)
        return server
    yield start
    for server in started:
        server.stop()


def ok(body=b'{"ok": true}'):
    return lambda path: (200, {"Content-Type": "application/json"}, body)


def test_an_allowed_server_is_called_and_its_answer_is_capped(servers):
    server = servers(ok(b"x" * 5000))
    g = guard(allow=[f"127.0.0.1:{server.port}"])
    answer = g.request("GET", server.url + "/a", timeout=5, max_body=100)
    assert answer.status_code == 200 and len(answer.content) == 100 and answer.truncated
    assert server.hits[0]["path"] == "/a"


def test_a_refused_address_is_never_connected_to(servers):
    server = servers(ok())
    with pytest.raises(NotAllowed) as caught:
        guard().request("GET", server.url + "/", timeout=5)
    assert caught.value.reason == "loopback" and server.hits == []
    infra = guard(allow=["127.0.0.1"], REDIS_URL=f"redis://127.0.0.1:{server.port}/0")
    with pytest.raises(NotAllowed) as caught:
        infra.request("GET", server.url + "/", timeout=5)
    assert caught.value.reason == "infrastructure" and server.hits == []


def test_redirects_are_not_followed(servers):
    target = servers(ok())
    redirect = servers(lambda path: (302, {"Location": target.url + "/stolen"}, MARKER))
    g = guard(allow=[f"127.0.0.1:{redirect.port}", f"127.0.0.1:{target.port}"])
    answer = g.request("POST", redirect.url + "/hook", timeout=5, data=b"{}")
    assert answer.status_code == 302
    assert len(redirect.hits) == 1 and target.hits == []
    # and through a plain requests session the guard hands out, too
    with g.session() as session:
        assert session.get(redirect.url, allow_redirects=False, timeout=5).status_code == 302
    assert target.hits == []


def test_dns_rebinding_is_refused_at_connect_time(servers):
    """The name resolves to a public address when the URL is saved, to 127.0.0.1 when the
    request connects: the guard checks the address it is about to connect to."""
    server = servers(ok())
    answers = iter([[PUBLIC], ["127.0.0.1"], ["127.0.0.1"]])
    calls = []

    def rebinding(host, port):
        if host != "rebind.example":
            return resolver(host, port)
        calls.append(host)
        return next(answers)

    g = Guard.from_config(CONFIG, resolver=rebinding)
    url = f"http://rebind.example:{server.port}/hook"
    assert g.check_url(url) == url                    # saved: it looked public
    with pytest.raises(NotAllowed) as caught:
        g.request("POST", url, timeout=5, data=b"{}")
    assert caught.value.reason == "loopback"
    assert calls.count("rebind.example") == 2 and server.hits == []


def test_the_connection_goes_to_the_checked_address_under_the_hosts_name(servers):
    server = servers(ok())
    g = Guard.from_config({"OUTBOUND_ALLOW": [f"127.0.0.1:{server.port}"]},
                          resolver=lambda host, port: ["127.0.0.1"] if host == "drone.test" else [])
    answer = g.request("GET", f"http://drone.test:{server.port}/api", timeout=5)
    assert answer.status_code == 200
    assert server.hits == [{"method": "GET", "path": "/api", "host": f"drone.test:{server.port}"}]


def test_proxies_from_the_environment_are_not_used(servers, monkeypatch):
    proxy = servers(ok(b"proxied"))
    server = servers(ok(b"direct"))
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy.url)
    g = guard(allow=[f"127.0.0.1:{server.port}", f"127.0.0.1:{proxy.port}"])
    assert g.request("GET", server.url, timeout=5).content == b"direct"
    assert proxy.hits == []


def test_failures_are_said_in_words(servers):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    g = guard(allow=[f"127.0.0.1:{port}"])
    with pytest.raises(OutboundError) as caught:
        g.request("GET", f"http://127.0.0.1:{port}/", timeout=5)
    assert str(caught.value) == "connection refused"
    slow = servers(ok(), delay=1.5)
    with pytest.raises(TimedOut) as caught:
        guard(allow=[f"127.0.0.1:{slow.port}"]).request("GET", slow.url, timeout=0.3)
    assert str(caught.value) == "no answer within 0.3 s"
    with pytest.raises(NotAllowed):
        guard().request("GET", "http://user:pw@93.184.216.34/", timeout=5)


# -- what callers are told: never the remote body ------------------------------------------
@pytest.mark.parametrize("kind, status, body, words", [
    ("webhook", 500, MARKER, "HTTP 500"),
    ("webhook", 302, MARKER, "HTTP 302: a redirect, which MAE does not follow"),
    ("feishu", 200, json.dumps({"code": 19021, "msg": MARKER}), "Feishu code 19021: sign match fail"),
    ("feishu", 200, json.dumps({"code": 4242, "msg": MARKER}), "Feishu code 4242"),
    ("feishu", 200, json.dumps({"code": MARKER, "msg": MARKER}), "Feishu answered with an error code"),
    ("feishu", 200, MARKER, "HTTP 200 with an answer that is not JSON"),
    ("dingtalk", 200, json.dumps({"errcode": 310000, "errmsg": MARKER}), "DingTalk code 310000"),
    ("dingtalk", 200, json.dumps([MARKER]), "not a JSON object"),
])
def test_channel_refusals_name_the_status_and_code_not_the_body(kind, status, body, words):
    with pytest.raises(targets.DeliveryError) as caught:
        targets.judge(kind, status, body)
    assert words in str(caught.value) and MARKER not in str(caught.value)


def test_a_channel_send_through_the_guard(servers):
    redirect = servers(lambda path: (302, {"Location": "http://127.0.0.1:6379/"}, MARKER))
    g = guard(allow=[f"127.0.0.1:{redirect.port}"])
    url = f"{redirect.url}/hook?token=secret-token-123"
    with pytest.raises(targets.DeliveryError) as caught:
        targets.send(targets.Outgoing(url, {}, b"{}"), "webhook", 5, http=g)
    assert "HTTP 302" in str(caught.value) and MARKER not in str(caught.value)
    with pytest.raises(targets.NotAllowedError) as refused:
        targets.send(targets.Outgoing("http://127.0.0.1:6379/", {}, b"{}"), "webhook", 5, http=g)
    assert refused.value.reason == "infrastructure" and str(refused.value).startswith("not allowed: ")


@pytest.mark.parametrize("status, headers, body, error", [
    (400, {}, MARKER, BadRequest),
    (500, {}, MARKER, Unavailable),
    (302, {"Location": "http://127.0.0.1:6379/"}, MARKER, Unavailable),
    (200, {}, MARKER, Unavailable),                 # not JSON
    (200, {}, json.dumps({"not": MARKER}), Unavailable),   # not a list of builds
])
def test_drone_errors_never_quote_what_the_server_answered(servers, status, headers, body, error):
    server = servers(lambda path: (status, headers, body))
    drone = DroneProvider(server.url, "token", attempts=1, guard=guard(allow=[f"127.0.0.1:{server.port}"]))
    with pytest.raises(error) as caught:
        drone.builds("team/web")
    assert MARKER not in caught.value.message and MARKER not in json.dumps(caught.value.details)
    assert len(server.hits) == 1


def test_drone_calls_are_checked_at_connect_time(servers):
    server = servers(ok(b"[]"))
    answers = iter([[PUBLIC], ["127.0.0.1"]])
    g = Guard.from_config({}, resolver=lambda host, port: next(answers))
    saved = g.check_url(f"http://drone.rebind:{server.port}/", field="server", server=True)
    with pytest.raises(UrlNotAllowed) as caught:
        DroneProvider(saved, "token", attempts=3, guard=g).builds("team/web")
    assert caught.value.details == {"field": "server", "reason": "loopback"} and server.hits == []


def test_default_guard_follows_the_config_file(monkeypatch):
    from shared.config import ROOT

    monkeypatch.setenv("MAE_CONFIG", str(ROOT / "config" / "test.yaml"))
    monkeypatch.setattr(outbound, "_default", None)
    g = outbound.default_guard()
    assert refusal(g, "http://127.0.0.1:18123/") is None
    assert refusal(g, "http://127.0.0.1:6379/") == "infrastructure"
    assert refusal(g, "http://127.0.0.1:6380/") == "loopback"
    assert outbound.default_guard() is g
