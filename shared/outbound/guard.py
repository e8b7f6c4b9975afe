"""The guard: rules 1 and 2 for a URL and every address its host resolves to, at save time
and on every request.

Rule 2, every address the host resolves to, with the port (the first that decides wins;
what each class of address is: ``addresses.py``):

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

Rule 3: the check runs when the URL is saved (``check_url`` → 422 ``url_not_allowed``) and
again on every request: ``request`` resolves the host itself, checks every address and
connects to the address it checked (``transport.py``; TLS still verifies, and SNI and
``Host`` still name, the host), so a name that resolved to a public address at save time
and to 127.0.0.1 now (DNS rebinding) is refused. Proxies from the environment are ignored
(a proxy would resolve the host itself), redirects are never followed, and what comes back
is a status and at most ``max_body`` bytes for the caller's own parsing; failures are
described in words ("connection refused", "no answer within 5 s", "not allowed: ..."),
never with the remote body.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import urlsplit

import requests
from urllib3 import exceptions as u3_exceptions

from shared.errors import UrlNotAllowed
from shared.outbound.addresses import (IP, UNSPECIFIED, Entry, carried, ip_of, literal, loopbackish,
                                       never, not_public, parse_entries, unwrap)
from shared.outbound.errors import NotAllowed, OutboundError, TimedOut
from shared.outbound.transport import GuardedAdapter, connection_words
from shared.outbound.urls import Target, parse_url
from shared.redis import endpoints as redis_endpoints

Resolver = Callable[[str, int], list[str]]


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
    found = [_endpoint_of(config.get("DB_URL")),
             *(Endpoint(host.lower(), port) for host, port in redis_endpoints(config.get("REDIS_URL"))),
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
                    addresses = [ip_of(a) for a in self.resolver(endpoint.host, endpoint.port)]
                except (OSError, ValueError, UnicodeError):
                    addresses = []
            if any(unwrap(a) in n for a in addresses for n in UNSPECIFIED):
                # listening on 0.0.0.0 / ::: every address of this host, its own name's too
                try:
                    addresses += [ip_of(a) for a in self.resolver(socket.gethostname(), endpoint.port)]
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
                    if ip == other or (loopbackish(ip) and loopbackish(other)):
                        same_host = True
            if same_host and port == endpoint.port:
                endpoint_hit = True
            elif same_host:
                host_hit = True
        return endpoint_hit, host_hit

    def check_address(self, host: str | None, address: IP | str, port: int) -> None:
        """Raise ``NotAllowed`` unless a request to ``address``:``port`` (for the URL host
        name ``host``, None when the URL gave an address) is allowed."""
        ip = unwrap(ip_of(address) if isinstance(address, str) else address)
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
        adapter = GuardedAdapter(self)
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
                raise OutboundError(connection_words(exc)) from None
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
