"""``pods/portforward``: what kubectl and the Python client reach through it.

Upgrades of ``GET|POST .../pods/NAME/portforward``:

* SPDY/3.1 (``spdy.py``), protocol ``portforward.k8s.io``: inside binary WebSocket messages with
  the subprotocol ``SPDY/3.1+portforward.k8s.io`` (kubectl 1.30+, the API server's tunneling
  handler) or after a plain ``Upgrade: SPDY/3.1`` (older clients,
  ``KUBECTL_PORT_FORWARD_WEBSOCKETS=false``).  Each local connection opens two streams with headers
  ``streamType: error|data``, ``port``, ``requestID``; the pair is served once both are replied to.
* ``v4.channel.k8s.io`` / ``v4.base64.channel.k8s.io`` (the kubelet's WebSocket protocol, the
  Python client's ``portforward``): the ``ports`` query parameter lists the ports; port i gets
  data channel 2i and error channel 2i+1, and the first message on each is the port number, two
  bytes little-endian.

Behind a port: a port a running container of the pod declares (``ports[].containerPort``)
answers any HTTP request with ``200 OK`` and ``hello from POD (IMAGE)``; any other port forwards
too, but nothing listens, so the error stream carries the runtime's words (``failed to connect to
localhost:P inside namespace ...: connection refused``) as a real kubelet reports them.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import uuid

from aiohttp import WSMsgType, web

from . import spdy
from .channels import V4, frame_data, is_websocket, negotiate, require_host
from .registry import bad_request
from .resources import PODS

TUNNEL = "SPDY/3.1+portforward.k8s.io"
PF_PROTOCOLS = (TUNNEL, V4, "v4.base64.channel.k8s.io")

# ---------------------------------------------------------------------- what listens

def listener(pod: dict, port: int) -> dict | None:
    """The running container that declares ``port``, or None: nothing listens there."""
    running = {cs.get("name") for cs in (pod.get("status") or {}).get("containerStatuses") or []
               if "running" in (cs.get("state") or {})}
    for c in (pod.get("spec") or {}).get("containers") or []:
        if c["name"] in running and any(p.get("containerPort") == port and p.get("protocol", "TCP") == "TCP"
                                        for p in c.get("ports") or []):
            return c
    return None


def refused(pod: dict, port: int) -> bytes:
    """The kubelet's report when nothing listens (containerd's wording)."""
    uid = pod["metadata"].get("uid") or ""
    sandbox_id = hashlib.sha256(uid.encode()).hexdigest()
    netns = uuid.UUID(bytes=hashlib.md5(uid.encode()).digest())
    return (f"error forwarding port {port} to pod {sandbox_id}, uid : failed to execute portforward in network "
            f'namespace "/var/run/netns/cni-{netns}": failed to connect to localhost:{port} inside namespace '
            f'"{sandbox_id}", IPv4: dial tcp4 127.0.0.1:{port}: connect: connection refused '
            f"IPv6 dial tcp6 [::1]:{port}: connect: connection refused ").encode()


def request_complete(buf: bytes) -> bool:
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length" and v.strip().isdigit():
            return len(body) >= int(v.strip())
    return True


def http_answer(pod: dict, container: dict, request: bytes) -> bytes:
    body = f"hello from {pod['metadata']['name']} ({container.get('image', '')})\n".encode()
    method = request.split(b" ", 1)[0] if request else b""
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + f"Content-Length: {len(body)}\r\nX-Sandbox-Container: {container['name']}\r\n".encode()
            + b"Connection: close\r\n\r\n" + (b"" if method == b"HEAD" else body))


async def serve_port(pod: dict, port: int, recv, send, send_error) -> None:
    """One forwarded connection: ``recv()`` gives client bytes (None at its end)."""
    container = listener(pod, port)
    if container is None:
        await send_error(refused(pod, port))
        return
    buf = b""
    while not request_complete(buf):
        chunk = await recv()
        if chunk is None:
            break
        buf += chunk
    if buf:
        await send(http_answer(pod, container, buf))


# ---------------------------------------------------------------------- entry

async def handle(api, request: web.Request, ns: str, name: str) -> web.StreamResponse:
    pod = api.registry.get(PODS, ns, name).obj
    require_host(pod)
    if spdy.is_upgrade(request):
        spdy.handshake(request, ("portforward.k8s.io",))
        resp, chunks, write = await spdy.upgrade(request, "portforward.k8s.io")
        await _spdy_pairs(pod, write).run(chunks)
        return resp
    if not is_websocket(request):
        raise bad_request("Upgrade request required")
    protocol = negotiate(request, PF_PROTOCOLS)
    ports: list[int] = []
    if protocol != TUNNEL:
        for raw in request.query.getall("ports", []):
            for p in raw.split(","):
                if not p.strip().isdigit() or not 0 < int(p) < 65536:
                    raise bad_request(f'unable to parse "{raw}" as a port: strconv.ParseUint: parsing "{p}": '
                                      "invalid syntax")
                ports.append(int(p))
        if not ports:
            return web.Response(status=400, text='query parameter "port" is required')
    ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), autoping=True, max_msg_size=0)
    await ws.prepare(request)
    task = asyncio.current_task()
    api.watch_tasks.add(task)
    try:
        if protocol == TUNNEL:
            chunks = (msg.data async for msg in ws if msg.type == WSMsgType.BINARY)
            await _spdy_pairs(pod, ws.send_bytes).run(chunks)
        else:
            await _channels(ws, pod, ports, "base64" in protocol)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        api.watch_tasks.discard(task)
        if not ws.closed:
            await ws.close()
    return ws


async def _channels(ws: web.WebSocketResponse, pod: dict, ports: list[int], b64: bool) -> None:
    async def send(channel: int, data: bytes) -> None:
        if not ws.closed:
            await (ws.send_str(str(channel) + base64.b64encode(data).decode()) if b64
                   else ws.send_bytes(bytes([channel]) + data))

    inbox = [asyncio.Queue() for _ in ports]
    for i, port in enumerate(ports):
        await send(2 * i, struct.pack("<H", port))
        await send(2 * i + 1, struct.pack("<H", port))

    async def read() -> None:
        try:
            async for msg in ws:
                got = frame_data(msg, b64)
                if got is None:
                    continue
                channel, data = got
                if channel % 2 == 0 and channel // 2 < len(ports) and data:
                    inbox[channel // 2].put_nowait(data)
        finally:
            for q in inbox:
                q.put_nowait(None)

    reader = asyncio.ensure_future(read())
    try:
        await asyncio.gather(*(serve_port(pod, port, inbox[i].get, lambda d, i=i: send(2 * i, d),
                                          lambda d, i=i: send(2 * i + 1, d)) for i, port in enumerate(ports)))
    finally:
        reader.cancel()


def _spdy_pairs(pod: dict, write):
    """A SPDY session's streams, paired by ``requestID`` into (data, error) per forwarded connection."""
    pairs: dict[str, dict] = {}

    def on_stream(sid: int, headers: dict):
        if not headers.get("port", "").isdigit() or headers.get("streamtype") not in ("data", "error"):
            return False
        pair = pairs.setdefault(headers.get("requestid") or str(sid), {})
        pair[headers["streamtype"]], pair["port"] = sid, int(headers["port"])
        return _serve_pair(pair) if "data" in pair and "error" in pair else True

    async def _serve_pair(pair: dict) -> None:
        data_sid, err_sid = pair["data"], pair["error"]
        try:
            await serve_port(pod, pair["port"], conn.inbox[data_sid].get,
                             lambda d: conn.data(data_sid, d), lambda d: conn.data(err_sid, d))
            await conn.data(err_sid, b"", fin=True)
            await conn.data(data_sid, b"", fin=True)
        except ConnectionError:
            pass
        finally:
            conn.inbox.pop(data_sid, None)
            conn.inbox.pop(err_sid, None)

    conn = spdy.Connection(write, on_stream)
    return conn
