"""Rule 1 of the outbound guard: the URL itself, judged without resolving anything.

``http`` or ``https`` only; no ``user:password@``; no fragment; a host that is a plain name
or an IP address (decimal, octal and hex IPv4 forms such as ``2130706433`` or ``0x7f.1`` are
read as the address they mean). A CI *server* also has no query, and its path is plain
segments (normalised, no ``.``/``..``/``//``/escapes).
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.outbound.addresses import IP, NAME, literal
from shared.outbound.errors import NotAllowed

DEFAULT_PORTS = {"http": 80, "https": 443}

_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]+$")


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
        if not NAME.match(host.rstrip(".")):
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
