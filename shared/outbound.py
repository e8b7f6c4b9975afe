"""One guard for every URL a person gives MAE: notification channels and CI servers.

Every such URL is a request MAE makes from inside its own network, so a person who can
log in could otherwise reach what only MAE should reach: its database, Redis, RabbitMQ,
the gateway, the clusters' API servers, the cloud's metadata service. The guard decides,
in this order (the first rule that decides wins):

1. The URL itself: ``http`` or ``https`` only; no ``user:password@``; no fragment; a host
   that is a plain name or an IP address (decimal, octal and hex IPv4 forms such as
   ``2130706433`` or ``0x7f.1`` are read as the address they mean). A CI *server* also has
   no query, and its path is plain segments (normalised, no ``.``/``..``/``//``/escapes).
2. Every address the host resolves to, with the port:
   a. never allowed: anything ``OUTBOUND_DENY`` names; unspecified (0.0.0.0/8, ``::``),
      multicast, reserved and link-local addresses (169.254/16, fe80::/10: where cloud
      metadata lives) and the known metadata addresses outside it (Alibaba's
      100.100.100.200, AWS's fd00:ec2::254); and MAE's own infrastructure endpoints —
      host and port of ``DB_URL``, ``REDIS_URL``, ``AMQP_URI``, ``PUBLIC_URL``,
      ``CONSOLE_URL``, the process's own ``WEB_SERVER_ADDRESS``, the tracing collector and
      the login providers in use (a loopback or 0.0.0.0 endpoint stands for every loopback
      address with that port);
   b. allowed when ``OUTBOUND_ALLOW`` names it (by address/CIDR or host name, with an
      optional port or port range);
   c. refused when it is not a public address: loopback, private (RFC 1918, fc00::/7),
      carrier-grade NAT (100.64/10), documentation and other special-purpose ranges, and
      the other ports of a non-loopback infrastructure host;
   d. allowed otherwise.
   IPv4-mapped (``::ffff:127.0.0.1``) and NAT64 (64:ff9b::/96) addresses are judged as the
   IPv4 address inside; 6to4 and Teredo addresses also by the IPv4 addresses they carry.
3. The check runs when the URL is saved (``check_url`` → 422 ``url_not_allowed``) and again
   on every request: ``request`` resolves the host itself, checks every address and
   connects to the address it checked (TLS still verifies, and SNI and ``Host`` still
   name, the host), so a name that resolved to a public address at save time and to
   127.0.0.1 now (DNS rebinding) is refused. Proxies from the environment are ignored (a
   proxy would resolve the host itself), redirects are never followed, and what comes back
   is a status and at most ``max_body`` bytes for the caller's own parsing; failures are
   described in words ("connection refused", "no answer within 5 s", "not allowed: ..."),
   never with the remote body.

Private ranges are refused by default: MAE runs among the things it must protect (the
database, the clusters' API servers and kubelets, the sandboxes, other internal services),
and a list derived from config can never name all of them, while anyone who can log in may
create an app and its channels. An operator whose Drone lives on 10.1.2.3 says so, as
narrowly as possible, with ``OUTBOUND_ALLOW: ["10.1.2.3:443"]``.
"""
from __future__ import annotations

import ipaddress
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import connection as u3_connection
from urllib3 import connectionpool as u3_pool
from urllib3 import exceptions as u3_exceptions
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as u3_util

from shared.errors import UrlNotAllowed

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

DEFAULT_PORTS = {"http": 80, "https": 443}

# -- what each reason means, in words ----------------------------------------------
REASONS = {
    "malformed": "it is not a well-formed http(s) URL",
    "scheme": "only http and https URLs are allowed",
    "credentials": "a URL may not carry a user name or password",
    "fragment": "a URL may not carry a fragment (#...)",
    "query": "a CI server URL may not carry a query (?...)",
    "path": "a CI server URL's path must be plain segments (no '.', '..', '//', ';', '%' or '\\')",
    "host": "its host is not a valid host name or IP address",
    "port": "its port is not valid",
    "unresolvable": "its host name does not resolve",
    "denied": "the operator's OUTBOUND_DENY refuses it",
    "infrastructure": "it points at MAE's own infrastructure",
    "unspecified": "it points at an unspecified address (0.0.0.0 or ::)",
    "multicast": "it points at a multicast address",
    "reserved": "it points at a reserved address",
    "link-local": "it points at a link-local address (where cloud metadata lives)",
    "metadata": "it points at a cloud metadata address",
    "loopback": "it points at a loopback address",
    "private": "it points at a private network address",
    "shared": "it points at a carrier-grade NAT address (100.64.0.0/10)",
    "not-public": "it points at an address that is not public",
}

_nets = lambda *cidrs: tuple(ipaddress.ip_network(c) for c in cidrs)  # noqa: E731

METADATA = _nets("100.100.100.200/32", "fd00:ec2::254/128")
UNSPECIFIED = _nets("0.0.0.0/8", "::/128")
PRIVATE = _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10")
SHARED = _nets("100.64.0.0/10")
# Special-purpose ranges Python's is_global still calls global, or that deserve a name.
NOT_PUBLIC = _nets("192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15",
                   "198.51.100.0/24", "203.0.113.0/24", "2001::/23", "2001:db8::/32",
                   "64:ff9b:1::/48", "100::/64", "3fff::/20", "5f00::/16")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SIIT = ipaddress.ip_network("::ffff:0:0:0/96")

_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$")
_NUMERIC_V4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]+$")


class NotAllowed(Exception):
    """The guard refuses a URL or an address. Deliberately not an ``OSError``: urllib3 and
    requests let it through unwrapped and never retry it."""

    def __init__(self, reason: str):
        super().__init__(REASONS.get(reason, reason))
        self.reason = reason
        self.words = REASONS.get(reason, reason)


class OutboundError(Exception):
    """A request that got no usable answer; the message says what happened, in words."""


class TimedOut(OutboundError):
    pass


# -- addresses ----------------------------------------------------------------------
def _ip(text: str) -> IP:
    return ipaddress.ip_address(text.split("%", 1)[0])


def literal(host: str) -> IP | None:
    """The address a host written as an IP means (``[::1]``, ``127.0.0.1``, ``2130706433``,
    ``0x7f.1``, ``0177.1`` — the forms ``getaddrinfo`` accepts), or ``None`` for a name."""
    host = host.strip("[]").lower()
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_V4.match(host.rstrip(".")):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            raise NotAllowed("host") from None
    return None


def unwrap(ip: IP) -> IP:
    """An IPv6 address that is an IPv4 one in disguise, as that IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in NAT64 or ip in SIIT:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def carried(ip: IP) -> list[IP]:
    """IPv4 addresses a 6to4 or Teredo address reaches through."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    return []


def never(ip: IP) -> str | None:
    """Why no allow entry can open this address, if none can."""
    if any(ip in n for n in UNSPECIFIED):
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_link_local:
        return "link-local"
    if any(ip in n for n in METADATA):
        return "metadata"
    if ip.is_loopback:
        return None
    if ip.is_reserved:
        return "reserved"
    return None


def not_public(ip: IP) -> str | None:
    """Why this address is refused unless an allow entry names it."""
    if ip.is_loopback:
        return "loopback"
    if any(ip in n for n in PRIVATE):
        return "private"
    if any(ip in n for n in SHARED):
        return "shared"
    if any(ip in n for n in NOT_PUBLIC) or not ip.is_global:
        return "not-public"
    return None


def _loopbackish(ip: IP) -> bool:
    return ip.is_loopback or any(ip in n for n in UNSPECIFIED)


# -- OUTBOUND_ALLOW / OUTBOUND_DENY entries -------------------------------------------
@dataclass(frozen=True)
class Entry:
    """``10.1.2.3``, ``10.0.0.0/8``, ``[fd00::/8]``, ``drone.corp``, ``*.corp``, each with an
    optional ``:port`` or ``:low-high``."""

    text: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    name: str | None = None
    ports: tuple[int, int] | None = None

    def port_ok(self, port: int) -> bool:
        return self.ports is None or self.ports[0] <= port <= self.ports[1]

    def matches_ip(self, ip: IP, port: int) -> bool:
        return (self.network is not None and ip.version == self.network.version
                and ip in self.network and self.port_ok(port))

    def matches_name(self, host: str | None, port: int) -> bool:
        if self.name is None or not host or not self.port_ok(port):
            return False
        if self.name.startswith("*."):
            return host.endswith(self.name[1:])
        return host == self.name


def _ports(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    lo, hi = int(low), int(high or low)
    if not 1 <= lo <= hi <= 65535:
        raise ValueError
    return lo, hi


def parse_entry(text: str) -> Entry:
    raw = text.strip()
    spec, ports = raw.lower(), None
    try:
        if spec.startswith("["):
            inside, bracket, rest = spec[1:].partition("]")
            if not bracket:
                raise ValueError
            if rest:
                if not rest.startswith(":"):
                    raise ValueError
                ports = _ports(rest[1:])
            spec = inside
        elif spec.count(":") == 1:
            spec, port = spec.split(":")
            ports = _ports(port)
        if spec.startswith("*.") and _NAME.match(spec[2:]):
            return Entry(raw, name=spec.rstrip("."), ports=ports)
        try:
            network = ipaddress.ip_network(spec, strict=False)
        except ValueError:
            address = literal(spec) if "/" not in spec else None
            if address is not None:
                network = ipaddress.ip_network(address)
            elif _NAME.match(spec.rstrip(".")):
                return Entry(raw, name=spec.rstrip("."), ports=ports)
            else:
                raise
        if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped is not None:
            mapped = network.network_address.ipv4_mapped
            network = ipaddress.ip_network(f"{mapped}/{max(0, network.prefixlen - 96)}", strict=False)
        return Entry(raw, network=network, ports=ports)
    except (ValueError, NotAllowed):
        raise ValueError(f"{text!r} is not an address, CIDR or host name with an optional "
                         f":port or :low-high") from None


def parse_entries(value) -> list[Entry]:
    """A config value: a list, or one string of entries separated by commas or spaces."""
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value) if v]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected a list of entries, not {value!r}")
    return [parse_entry(str(v)) for v in value]


# -- URLs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    url: str          # as given (a CI server: normalised)
    scheme: str
    host: str         # lower case, no brackets, no trailing dot
    port: int
    address: IP | None  # the host is an IP address (in any form): that address


def parse_url(url, *, server: bool = False) -> Target:
    """The URL's rules (1.), without resolving anything; raises ``NotAllowed``."""
    if not isinstance(url, str) or not url or len(url) > 2000:
        raise NotAllowed("malformed")
    if any(ord(c) <= 32 or ord(c) == 127 for c in url) or "\\" in url:
        raise NotAllowed("malformed")
    try:
        url.encode("ascii")
    except UnicodeEncodeError:
        raise NotAllowed("host") from None  # international names: give their xn-- form
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise NotAllowed("scheme")
    if not url.lower().startswith(parts.scheme + "://"):
        raise NotAllowed("malformed")
    if "@" in parts.netloc:
        raise NotAllowed("credentials")
    if "#" in url:
        raise NotAllowed("fragment")
    if server and "?" in url:
        raise NotAllowed("query")
    netloc = parts.netloc
    if not netloc:
        raise NotAllowed("malformed")
    if netloc.startswith("["):
        inside, _, rest = netloc[1:].partition("]")
        if "%" in inside:
            raise NotAllowed("host")
        try:
            address = ipaddress.IPv6Address(inside)
        except ValueError:
            raise NotAllowed("host") from None
        host, port_text = inside.lower(), rest[1:] if rest.startswith(":") else None
        if rest and not rest.startswith(":"):
            raise NotAllowed("host")
    else:
        host, sep, port_text = netloc.rpartition(":") if ":" in netloc else (netloc, "", None)
        host = host.lower()
        if not _NAME.match(host.rstrip(".")):
            raise NotAllowed("host")
        host = host.rstrip(".")
        address = literal(host)
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise NotAllowed("port")
        port = int(port_text)
    else:
        port = DEFAULT_PORTS[parts.scheme]
    if server:
        segments = [s for s in parts.path.split("/")]
        inner = segments[1:-1] if parts.path.endswith("/") else segments[1:]
        if parts.path and (not parts.path.startswith("/") or any(
                not _SEGMENT.match(s) or s in (".", "..") for s in inner)):
            raise NotAllowed("path")
        shown = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address or host)
        url = f"{parts.scheme}://{shown}{'' if port_text is None else ':' + port_text}" \
              f"{'/'.join([''] + inner)}"
    return Target(url, parts.scheme, host, port, address)


# -- the guard ----------------------------------------------------------------------
def system_resolver(host: str, port: int) -> list[str]:
    seen: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        if sockaddr[0] not in seen:
            seen.append(sockaddr[0])
    return seen


@dataclass(frozen=True)
class Endpoint:
    """A part of MAE's own infrastructure: a host (name or address) and its port."""
    host: str
    port: int


def _endpoint_of(url: str, default_port: int | None = None) -> Endpoint | None:
    if not url or not isinstance(url, str):
        return None
    parts = urlsplit(url if "://" in url else "tcp://" + url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    default = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671,
               "pyamqp": 5672, "mysql": 3306, "mariadb": 3306, "postgresql": 5432}
    scheme = parts.scheme.split("+", 1)[0]
    port = port or default.get(scheme) or default_port
    return Endpoint(host.lower(), port) if host and port else None


def infrastructure(config: dict) -> list[Endpoint]:
    """MAE's own endpoints, as this process's config names them."""
    found = [_endpoint_of(config.get("DB_URL")), _endpoint_of(config.get("REDIS_URL")),
             _endpoint_of(config.get("PUBLIC_URL")), _endpoint_of(config.get("CONSOLE_URL")),
             _endpoint_of(config.get("OTEL_EXPORTER_OTLP_ENDPOINT")),
             _endpoint_of(config.get("WEB_SERVER_ADDRESS"), 8000)]
    found += [_endpoint_of(uri) for uri in str(config.get("AMQP_URI") or "").split(";")]
    for provider in (config.get("OAUTH_PROVIDERS") or {}).values():
        if isinstance(provider, dict) and provider.get("client_id"):
            found += [_endpoint_of(provider.get(key))
                      for key in ("issuer", "authorize_url", "token_url", "userinfo_url")]
    unique: list[Endpoint] = []
    for endpoint in found:
        if endpoint and endpoint not in unique:
            unique.append(endpoint)
    return unique


class Guard:
    """The rules above, with the resolver injectable (tests answer what DNS would)."""

    INFRA_TTL = 60.0

    def __init__(self, allow: Iterable[Entry] = (), deny: Iterable[Entry] = (),
                 infrastructure: Iterable[Endpoint] = (), resolver: Resolver | None = None):
        self.allow, self.deny = list(allow), list(deny)
        self.infrastructure = list(infrastructure)
        self.resolver = resolver or system_resolver
        self._infra: tuple[float, list[tuple[Endpoint, list[IP]]]] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: dict, resolver: Resolver | None = None) -> "Guard":
        try:
            allow = parse_entries(config.get("OUTBOUND_ALLOW"))
            deny = parse_entries(config.get("OUTBOUND_DENY"))
        except ValueError as exc:
            raise ValueError(f"OUTBOUND_ALLOW / OUTBOUND_DENY: {exc}") from None
        return cls(allow, deny, infrastructure(config), resolver)

    # -- deciding ------------------------------------------------------------------
    def _infra_addresses(self) -> list[tuple[Endpoint, list[IP]]]:
        cached = self._infra
        if cached is not None and time.monotonic() - cached[0] < self.INFRA_TTL:
            return cached[1]
        resolved = []
        for endpoint in self.infrastructure:
            try:
                address = literal(endpoint.host)
            except NotAllowed:
                address = None
            if address is not None:
                addresses = [address]
            else:
                try:
                    addresses = [_ip(a) for a in self.resolver(endpoint.host, endpoint.port)]
                except (OSError, ValueError, UnicodeError):
                    addresses = []
            if any(unwrap(a) in n for a in addresses for n in UNSPECIFIED):
                # listening on 0.0.0.0 / ::: every address of this host, its own name's too
                try:
                    addresses += [_ip(a) for a in self.resolver(socket.gethostname(), endpoint.port)]
                except (OSError, ValueError, UnicodeError):
                    pass
            resolved.append((endpoint, [unwrap(a) for a in addresses]))
        with self._lock:
            self._infra = (time.monotonic(), resolved)
        return resolved

    def _infra_match(self, host: str | None, addresses: list[IP], port: int) -> tuple[bool, bool]:
        """(an infrastructure endpoint itself, another port of an infrastructure host)."""
        endpoint_hit = host_hit = False
        for endpoint, infra in self._infra_addresses():
            same_host = host is not None and host == endpoint.host
            for ip in addresses:
                for other in infra:
                    if ip == other or (_loopbackish(ip) and _loopbackish(other)):
                        same_host = True
            if same_host and port == endpoint.port:
                endpoint_hit = True
            elif same_host:
                host_hit = True
        return endpoint_hit, host_hit

    def check_address(self, host: str | None, address: IP | str, port: int) -> None:
        """Raise ``NotAllowed`` unless a request to ``address``:``port`` (for the URL host
        name ``host``, None when the URL gave an address) is allowed."""
        ip = unwrap(_ip(address) if isinstance(address, str) else address)
        judged = [ip] + [unwrap(a) for a in carried(ip)]
        if any(e.matches_name(host, port) for e in self.deny) or any(
                e.matches_ip(a, port) for e in self.deny for a in judged):
            raise NotAllowed("denied")
        for a in judged:
            reason = never(a)
            if reason:
                raise NotAllowed(reason)
        endpoint_hit, host_hit = self._infra_match(host, judged, port)
        if endpoint_hit:
            raise NotAllowed("infrastructure")
        if any(e.matches_name(host, port) or e.matches_ip(ip, port) for e in self.allow):
            return
        for a in judged:
            reason = not_public(a)
            if reason:
                raise NotAllowed(reason)
        if host_hit:
            raise NotAllowed("infrastructure")

    def addresses(self, host: str, port: int, address: IP | None = None) -> list[str]:
        """Every address ``host`` resolves to, each checked; raises ``NotAllowed``."""
        name = None if address is not None else host
        if address is None:
            address = literal(host)
        if address is not None:
            found = [str(address)]
        else:
            if any(e.matches_name(host, port) for e in self.deny):
                raise NotAllowed("denied")
            try:
                found = self.resolver(host, port)
            except (OSError, UnicodeError):
                raise NotAllowed("unresolvable") from None
            if not found:
                raise NotAllowed("unresolvable")
        for each in found:
            try:
                self.check_address(name, each, port)
            except ValueError:
                raise NotAllowed("host") from None
        return found

    def check(self, url: str, *, server: bool = False) -> Target:
        """The URL's rules and every address of its host; raises ``NotAllowed``."""
        target = parse_url(url, server=server)
        self.addresses(target.host, target.port, target.address)
        return target

    def check_url(self, url, *, field: str = "url", server: bool = False) -> str:
        """At save time: the URL (a CI server's normalised) or 422 ``url_not_allowed``."""
        try:
            return self.check(url, server=server).url
        except NotAllowed as exc:
            raise UrlNotAllowed(f"{field} is not allowed: {exc.words}.",
                                {"field": field, "reason": exc.reason}) from None

    # -- requesting ----------------------------------------------------------------
    def session(self) -> requests.Session:
        """A requests session whose every connection is checked (and no proxies)."""
        session = requests.Session()
        session.trust_env = False  # no proxies, no .netrc credentials
        adapter = _GuardedAdapter(self)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def request(self, method: str, url: str, *, timeout: float, headers: dict | None = None,
                data=None, params: dict | None = None, max_body: int = 64 * 1024) -> "Answer":
        """One request, no redirects followed; raises ``NotAllowed``, ``TimedOut`` or
        ``OutboundError`` (in words), else the status and at most ``max_body`` bytes."""
        parse_url(url)
        with self.session() as session:
            try:
                response = session.request(method, url, headers=headers, data=data, params=params,
                                           timeout=timeout, allow_redirects=False, stream=True,
                                           proxies={})
                try:
                    body = response.raw.read(max_body + 1, decode_content=True) or b""
                finally:
                    response.close()
            except NotAllowed:
                raise
            except requests.Timeout:
                raise TimedOut(f"no answer within {timeout:g} s") from None
            except requests.exceptions.SSLError:
                raise OutboundError("the TLS handshake failed (certificate or protocol)") from None
            except requests.ConnectionError as exc:
                raise OutboundError(_connection_words(exc)) from None
            except requests.RequestException:
                raise OutboundError("the request failed") from None
            except (u3_exceptions.HTTPError, OSError) as exc:  # reading the body: raw urllib3 errors
                if isinstance(exc, (u3_exceptions.ReadTimeoutError, socket.timeout)):
                    raise TimedOut(f"no answer within {timeout:g} s") from None
                raise OutboundError("the answer was cut off or malformed") from None
        return Answer(response.status_code, dict(response.headers), body[:max_body],
                      len(body) > max_body)

    def post(self, url: str, *, data=None, headers=None, timeout: float = 10,
             allow_redirects: bool = False, **_ignored) -> "Answer":
        """``requests.post``'s shape, for code that takes "an http" (redirects: never)."""
        return self.request("POST", url, data=data, headers=headers, timeout=timeout)


@dataclass
class Answer:
    status_code: int
    headers: dict
    content: bytes
    truncated: bool = False

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        import json

        return json.loads(self.content)


def _connection_words(exc: BaseException) -> str:
    """What went wrong connecting, from the chain of errors requests and urllib3 raise."""
    chain: list[BaseException] = []
    todo: list = [exc]
    while todo:
        each = todo.pop()
        if not isinstance(each, BaseException) or any(each is seen for seen in chain):
            continue
        chain.append(each)
        todo += [getattr(each, "reason", None), each.__cause__, each.__context__, *each.args]
    for each in chain:
        if isinstance(each, NameResolutionError):
            return "the host name does not resolve"
    if any(isinstance(each, ConnectionRefusedError) for each in chain):
        return "connection refused"
    if any(isinstance(each, socket.timeout) or (isinstance(each, ConnectTimeoutError)
                                                and not isinstance(each, NewConnectionError))
           for each in chain):  # (urllib3's NewConnectionError is a ConnectTimeoutError)
        return "the connection timed out"
    return "the connection failed"


# -- the connection that checks what it connects to -----------------------------------
def _guarded_new_conn(self) -> socket.socket:
    """``HTTPConnection._new_conn``, but resolving through the guard, checking every
    address and connecting to a checked one (never resolving the name again)."""
    guard: Guard = self._mae_guard
    host = self._dns_host.rstrip(".").lower()
    addresses = guard.addresses(host, self.port)  # raises NotAllowed
    last: BaseException | None = None
    for address in addresses:
        try:
            sock = u3_util.create_connection((address, self.port), self.timeout,
                                             source_address=self.source_address,
                                             socket_options=self.socket_options)
        except socket.timeout as exc:
            last = ConnectTimeoutError(self, f"Connection to {self.host} timed out.")
            last.__cause__ = exc
        except OSError as exc:
            last = NewConnectionError(self, f"Failed to establish a new connection: {exc}")
            last.__cause__ = exc
        else:
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
    if isinstance(last, BaseException):
        raise last
    raise NameResolutionError(self.host, self, socket.gaierror("no address"))


def _classes(guard: Guard) -> dict:
    http_conn = type("GuardedHTTPConnection", (u3_connection.HTTPConnection,),
                     {"_mae_guard": guard, "_new_conn": _guarded_new_conn})
    https_conn = type("GuardedHTTPSConnection", (u3_connection.HTTPSConnection,),
                      {"_mae_guard": guard, "_new_conn": _guarded_new_conn})
    return {"http": type("GuardedHTTPConnectionPool", (u3_pool.HTTPConnectionPool,),
                         {"ConnectionCls": http_conn}),
            "https": type("GuardedHTTPSConnectionPool", (u3_pool.HTTPSConnectionPool,),
                          {"ConnectionCls": https_conn})}


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, guard: Guard):
        self._mae_guard = guard
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _classes(self._mae_guard)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        raise NotAllowed("a proxy would resolve the host itself; MAE's outbound calls use none")


# -- where services get their guard -----------------------------------------------------
_default: Guard | None = None


def default_guard() -> Guard:
    """The guard of this process's config file (``MAE_CONFIG``), for code that is not
    handed one by its service; built once."""
    global _default
    if _default is None:
        from shared.config import load_config

        _default = Guard.from_config(load_config())
    return _default


try:
    from nameko.extensions import DependencyProvider
except ImportError:  # pragma: no cover - only scripts without nameko
    DependencyProvider = object  # type: ignore[misc,assignment]


class Outbound(DependencyProvider):
    """``outbound = Outbound()`` on a service: the guard of the container's config."""

    def setup(self):
        self.guard = Guard.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.guard
