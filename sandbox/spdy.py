"""SPDY/3.1, the server side of what client-go's ``spdystream`` speaks, for the streaming subresources.

Two carriers: a plain HTTP ``Upgrade: SPDY/3.1`` (``upgrade``: the 101 answer names the protocol
negotiated from ``X-Stream-Protocol-Version``, then the connection carries raw frames), and the
frames inside binary WebSocket messages (kubectl's port-forward tunnel, ``portforward.py``).

``Connection.run(chunks)`` reads frames: each SYN_STREAM gets a SYN_REPLY and an inbox (a queue of
its data, None at the client's FIN), PINGs from the client are echoed, RST_STREAM ends an inbox,
GOAWAY ends the session.  Header blocks are zlib-compressed with the SPDY/3 dictionary, one context
per direction; flow control is not enforced (spdystream does not either).

``ExecStreams`` is ``pods/exec|attach`` over SPDY (the kubelet's remotecommand server): the client
opens ``streamType`` error, stdin, stdout, stderr and (with a tty) resize streams; stdout/stderr
are written on theirs, the outcome on the error stream, then every stream is finished.
"""
from __future__ import annotations

import asyncio
import struct
import zlib

from aiohttp import web

from .channels import Session

FIN = 0x01
SYN_STREAM, SYN_REPLY, RST_STREAM, PING, GOAWAY = 1, 2, 3, 6, 7
_WORDS = ("options head post put delete trace accept accept-charset accept-encoding accept-language "
          "accept-ranges age allow authorization cache-control connection content-base content-encoding "
          "content-language content-length content-location content-md5 content-range content-type date etag "
          "expect expires from host if-match if-modified-since if-none-match if-range if-unmodified-since "
          "last-modified location max-forwards pragma proxy-authenticate proxy-authorization range referer "
          "retry-after server te trailer transfer-encoding upgrade user-agent vary via warning www-authenticate "
          "method get status 200_OK version HTTP/1.1 url public set-cookie keep-alive origin").split()
_TAIL = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
         "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
         "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
         "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
         "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
         "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
# The SPDY/3 header compression dictionary (spdy-protocol draft 3, section 2.6.10.1).
DICTIONARY = b"".join(len(w).to_bytes(4, "big") + w.replace("_", " ").encode() for w in _WORDS) + _TAIL.encode()


def is_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower().strip() == "spdy/3.1"


def handshake(request: web.Request, supported: tuple) -> str:
    """The protocol of ``X-Stream-Protocol-Version`` to use, refused as ``httpstream.Handshake`` does."""
    asked = [p.strip() for h in request.headers.getall("X-Stream-Protocol-Version", []) for p in h.split(",")]
    if not asked:
        raise web.HTTPBadRequest(text="unable to upgrade: X-Stream-Protocol-Version is required")
    for p in asked:
        if p in supported:
            return p
    raise web.HTTPForbidden(text=f"unable to upgrade: unable to negotiate protocol: client supports {asked}, "
                                 f"server accepts {list(supported)}")


class _Feed:
    """The connection's bytes after the 101, handed to a queue (aiohttp's payload-parser hook)."""

    def __init__(self, queue: asyncio.Queue):
        self.queue = queue

    def feed_data(self, data: bytes):
        self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(None)


async def upgrade(request: web.Request, protocol: str):
    """Answer 101 and take the connection over: ``(response, chunks, write)``."""
    resp = web.StreamResponse(status=101, headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                                                   "X-Stream-Protocol-Version": protocol})
    resp.force_close()
    await resp.prepare(request)
    queue: asyncio.Queue = asyncio.Queue()
    request.protocol.set_parser(_Feed(queue))
    transport = request.transport

    async def chunks():
        while (data := await queue.get()) is not None:
            yield data

    async def write(frame: bytes) -> None:
        if transport is not None and not transport.is_closing():
            transport.write(frame)

    return resp, chunks(), write


class Connection:
    def __init__(self, write, on_stream):
        """``write(bytes)``: a coroutine sending frames; ``on_stream(sid, headers)``: a new stream,
        False to reset it, else True or a coroutine to run once the stream is replied to."""
        self.write, self.on_stream = write, on_stream
        self.inflate = zlib.decompressobj(zdict=DICTIONARY)
        self.deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zdict=DICTIONARY)
        self.inbox: dict[int, asyncio.Queue] = {}
        self.tasks: set[asyncio.Task] = set()
        self.closed = asyncio.Event()

    def spawn(self, coro) -> None:
        t = asyncio.ensure_future(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    def _control(self, kind: int, payload: bytes, flags: int = 0) -> bytes:
        return struct.pack(">HHB", 0x8003, kind, flags) + len(payload).to_bytes(3, "big") + payload

    async def data(self, sid: int, data: bytes, fin: bool = False) -> None:
        for k in range(0, len(data), 32768):
            part = data[k:k + 32768]
            await self.write(struct.pack(">IB", sid, 0) + len(part).to_bytes(3, "big") + part)
        if fin:
            await self.write(struct.pack(">IB", sid, FIN) + b"\x00\x00\x00")

    def _headers(self, block: bytes) -> dict[str, str]:
        raw = self.inflate.decompress(block)
        (count,), pos, out = struct.unpack_from(">I", raw), 4, {}
        for _ in range(count):
            (n,) = struct.unpack_from(">I", raw, pos)
            key = raw[pos + 4:pos + 4 + n].decode().lower()
            pos += 4 + n
            (n,) = struct.unpack_from(">I", raw, pos)
            out[key] = raw[pos + 4:pos + 4 + n].decode().split("\x00")[0]
            pos += 4 + n
        return out

    async def run(self, chunks) -> None:
        buf = bytearray()
        try:
            async for chunk in chunks:
                buf += chunk
                while len(buf) >= 8:
                    length = int.from_bytes(buf[5:8], "big")
                    if len(buf) < 8 + length:
                        break
                    head, flags, payload = bytes(buf[:4]), buf[4], bytes(buf[8:8 + length])
                    del buf[:8 + length]
                    if not head[0] & 0x80:
                        q = self.inbox.get(int.from_bytes(head, "big") & 0x7FFFFFFF)
                        if q is not None:
                            if payload:
                                q.put_nowait(payload)
                            if flags & FIN:
                                q.put_nowait(None)
                    elif await self._on_control(int.from_bytes(head[2:4], "big"), flags, payload):
                        return
        finally:
            self.closed.set()
            for q in self.inbox.values():
                q.put_nowait(None)
            for t in self.tasks:
                t.cancel()

    async def _on_control(self, kind: int, flags: int, payload: bytes) -> bool:
        """Handle one control frame; True when the session is over (GOAWAY)."""
        if kind == SYN_STREAM:
            sid = struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF
            headers = self._headers(payload[10:])
            self.inbox[sid] = asyncio.Queue()
            accepted = self.on_stream(sid, headers)
            if not accepted:
                del self.inbox[sid]
                await self.write(self._control(RST_STREAM, struct.pack(">II", sid, 1)))  # PROTOCOL_ERROR
                return False
            if flags & FIN:
                self.inbox[sid].put_nowait(None)
            block = self.deflate.compress(struct.pack(">I", 0)) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
            await self.write(self._control(SYN_REPLY, struct.pack(">I", sid) + block))
            if asyncio.iscoroutine(accepted):  # work for the stream starts once it is replied to
                self.spawn(accepted)
        elif kind == RST_STREAM:
            q = self.inbox.pop(struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF, None)
            if q is not None:
                q.put_nowait(None)
        elif kind == PING and struct.unpack_from(">I", payload)[0] % 2 == 1:
            await self.write(self._control(PING, payload))  # a client's ping: echo it
        return kind == GOAWAY


class ExecStreams(Session):
    """The channel interface of ``channels.Channels`` over a SPDY remotecommand session."""

    def __init__(self, protocol: str, want: set[str]):
        self.protocol, self.want = protocol, want
        self.sids: dict[str, int] = {}
        self.ready = asyncio.Event()
        self.conn: Connection | None = None
        self.stdin = asyncio.Queue()
        self.transport = None

    @property
    def gone(self) -> bool:
        return self.conn is None or self.conn.closed.is_set()

    def on_stream(self, sid: int, headers: dict):
        kind = headers.get("streamtype")
        if kind not in ("error", "stdin", "stdout", "stderr", "resize"):
            return False
        self.sids[kind] = sid
        if kind == "stdin":
            self.stdin = self.conn.inbox[sid]
        return self._all_open() if self.want <= set(self.sids) else True

    async def _all_open(self) -> None:  # run once the last stream is replied to
        self.ready.set()

    async def open(self, request: web.Request) -> web.StreamResponse:
        resp, chunks, write = await upgrade(request, self.protocol)
        self.transport = request.transport
        self.conn = Connection(write, self.on_stream)
        self.reader = asyncio.ensure_future(self.conn.run(chunks))
        waits = [asyncio.ensure_future(self.ready.wait()), asyncio.ensure_future(self.conn.closed.wait())]
        await asyncio.wait(waits, timeout=30, return_when=asyncio.FIRST_COMPLETED)  # the kubelet's timeout
        for w in waits:
            w.cancel()
        if not self.ready.is_set():  # the client left or never opened its streams
            self.transport.close()
            self.reader.cancel()
        return resp

    @property
    def started(self) -> bool:
        return self.ready.is_set() and not self.gone

    async def send(self, channel: int, data: bytes = b"") -> None:
        sid = self.sids.get(("stdin", "stdout", "stderr", "error")[channel]) if channel < 4 else None
        if sid is not None and data and not self.gone:
            await self.conn.data(sid, data)

    async def finish(self, st: dict | None, text: str = "") -> None:
        await self.report(st, text)
        for sid in self.sids.values():
            await self.conn.data(sid, b"", fin=True)
        await asyncio.sleep(0.05)
        if self.transport is not None:
            self.transport.close()
        self.reader.cancel()
