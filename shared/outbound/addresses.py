"""What an address is, for rule 2 of the outbound guard (the order is ``guard.py``'s), and
the operator's ``OUTBOUND_ALLOW`` / ``OUTBOUND_DENY`` entries.

* ``never``: what no allow entry can open — unspecified (0.0.0.0/8, ``::``), multicast,
  reserved and link-local addresses (169.254/16, fe80::/10: where cloud metadata lives) and
  the known metadata addresses outside it (Alibaba's 100.100.100.200, AWS's fd00:ec2::254);
* ``not_public``: what is refused unless an allow entry names it — loopback, private
  (RFC 1918, fc00::/7), carrier-grade NAT (100.64/10), documentation and other
  special-purpose ranges;
* ``unwrap`` / ``carried``: IPv4-mapped (``::ffff:127.0.0.1``) and NAT64 (64:ff9b::/96)
  addresses are judged as the IPv4 address inside; 6to4 and Teredo addresses also by the
  IPv4 addresses they carry;
* ``literal``: a host written as an IP address in any form ``getaddrinfo`` accepts
  (decimal, octal and hex IPv4 forms such as ``2130706433`` or ``0x7f.1``) is read as the
  address it means;
* ``parse_entries``: an allow or deny entry names an address/CIDR or a host name, with an
  optional port or port range.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

from shared.outbound.errors import NotAllowed

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

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

NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$")
_NUMERIC_V4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$")


# -- addresses ----------------------------------------------------------------------
def ip_of(text: str) -> IP:
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


def loopbackish(ip: IP) -> bool:
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
        if spec.startswith("*.") and NAME.match(spec[2:]):
            return Entry(raw, name=spec.rstrip("."), ports=ports)
        try:
            network = ipaddress.ip_network(spec, strict=False)
        except ValueError:
            address = literal(spec) if "/" not in spec else None
            if address is not None:
                network = ipaddress.ip_network(address)
            elif NAME.match(spec.rstrip(".")):
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
