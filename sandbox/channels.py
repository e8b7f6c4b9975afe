"""The channel.k8s.io WebSocket protocols of the streaming subresources (``streams.py``,
``portforward.py``): a message is one channel byte and the data (base64 protocols: an ASCII digit and
base64 text); the subprotocol is negotiated as the API server's ``wsstream`` does.
"""
from __future__ import annotations

import asyncio
import base64
import json

from aiohttp import WSMsgType, web

from .registry import bad_request

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
CHUNK = 32 * 1024


def is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower().strip() == "websocket"


def frame_data(msg, b64: bool) -> tuple[int, bytes] | None:
    """(channel, data) of a client message; text messages are accepted in binary protocols too
    (the Python client sends its str stdin as text, which the real server takes)."""
    if msg.type == WSMsgType.BINARY and msg.data:
        return msg.data[0], bytes(msg.data[1:])
    if msg.type == WSMsgType.TEXT and msg.data:
        if b64:
            return int(msg.data[0]), base64.b64decode(msg.data[1:])
        return ord(msg.data[0]), msg.data[1:].encode()
    return None


def client_protocols(request: web.Request) -> list[str]:
    raw = ",".join(request.headers.getall("Sec-WebSocket-Protocol", []))
    return [p.strip() for p in raw.split(",") if p.strip()]


def negotiate(request: web.Request, supported: tuple) -> str:
    """The subprotocol to answer with ("" when the client asked for none), or a 400 as wsstream words it."""
    asked = client_protocols(request)
    if not asked:
        return ""
    for p in asked:
        if p in supported:
            return p
    raise web.HTTPBadRequest(text=f"requested protocol(s) are not supported: {asked}; supports {list(supported)}")


def require_host(pod: dict) -> None:
    if not (pod.get("spec") or {}).get("nodeName"):
        raise bad_request(f"pod {pod['metadata']['name']} does not have a host assigned")


def status(kind: str, message: str = "", code: int = 0) -> dict:
    st: dict = {"metadata": {}, "status": "Success" if kind == "Success" else "Failure"}
    if kind == "NonZeroExitCode":
        st.update(message=f"command terminated with non-zero exit code: {message}", reason="NonZeroExitCode",
                  details={"causes": [{"reason": "ExitCode", "message": str(code)}]})
    elif kind == "InternalError":
        st.update(message=f"Internal error occurred: {message}", reason="InternalError",
                  details={"causes": [{"message": message}]}, code=500)
    return st


class Session:
    """What the WebSocket and SPDY carriers share: stdin read to its end, the outcome reported."""
    protocol: str
    stdin: asyncio.Queue  # bytes, then None at the end of stdin

    async def send(self, channel: int, data: bytes = b"") -> None:
        raise NotImplementedError

    async def read_stdin(self) -> bytes:
        parts = []
        while (chunk := await self.stdin.get()) is not None:
            parts.append(chunk)
        return b"".join(parts)

    async def report(self, st: dict | None, text: str) -> None:
        """The outcome on the error channel: a Status (v4+), else the error text if any."""
        if self.protocol in (V5, V4, "v4.base64.channel.k8s.io"):
            await self.send(ERROR, json.dumps(st, separators=(",", ":")).encode())
        elif text:
            await self.send(ERROR, text.encode())


class Channels(Session):
    """One upgraded connection speaking a channel.k8s.io protocol."""

    def __init__(self, ws: web.WebSocketResponse, protocol: str):
        self.ws, self.protocol = ws, protocol
        self.b64 = "base64" in protocol
        self.stdin = asyncio.Queue()
        self.gone = False

    async def send(self, channel: int, data: bytes = b"") -> None:
        if self.gone or self.ws.closed:
            return
        for k in range(0, max(len(data), 1), CHUNK):
            part = data[k:k + CHUNK]
            try:
                if self.b64:
                    await self.ws.send_str(str(channel) + base64.b64encode(part).decode())
                else:
                    await self.ws.send_bytes(bytes([channel]) + part)
            except (ConnectionError, RuntimeError):
                self.gone = True
                return

    async def read(self) -> None:
        """Feed stdin from the client until it closes stdin (v5) or the connection."""
        try:
            async for msg in self.ws:
                got = frame_data(msg, self.b64)
                if got is None:
                    continue
                channel, data = got
                if channel == STDIN and data:
                    self.stdin.put_nowait(bytes(data))
                elif channel == CLOSE and self.protocol == V5 and data[:1] == bytes([STDIN]):
                    self.stdin.put_nowait(None)
        finally:
            self.gone = True
            self.stdin.put_nowait(None)

    async def finish(self, st: dict | None, text: str = "") -> None:
        """Report the outcome on the error channel and close."""
        await self.report(st, text)
        try:
            await asyncio.wait_for(self.ws.close(), 5)
        except (asyncio.TimeoutError, ConnectionError):
            pass
