"""The connection that checks what it connects to (rule 3 of the guard, ``guard.py``).

``Guard.session`` mounts ``GuardedAdapter``: its connections resolve the host through the
guard, check every address and connect to one they checked, never resolving the name
again, so DNS rebinding between the check and the connection is refused; TLS still
verifies, and SNI and ``Host`` still name, the host. Proxies are refused (a proxy would
resolve the host itself) and nothing is retried.
"""
from __future__ import annotations

import socket
import sys
from typing import TYPE_CHECKING

from requests.adapters import HTTPAdapter
from urllib3 import connection as u3_connection
from urllib3 import connectionpool as u3_pool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as u3_util

from shared.outbound.errors import NotAllowed

if TYPE_CHECKING:
    from shared.outbound.guard import Guard


def connection_words(exc: BaseException) -> str:
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


class GuardedAdapter(HTTPAdapter):
    def __init__(self, guard: Guard):
        self._mae_guard = guard
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _classes(self._mae_guard)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        raise NotAllowed("a proxy would resolve the host itself; MAE's outbound calls use none")
