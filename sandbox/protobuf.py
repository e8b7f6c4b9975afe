"""Request bodies in ``application/vnd.kubernetes.protobuf``, decoded to the JSON dict.

client-go's typed clients (kubectl's generator commands: ``kubectl create namespace|
deployment|configmap|secret|service|job ...``) send protobuf.  The body is the magic
``k8s\\x00`` followed by a ``runtime.Unknown`` (``typeMeta`` {apiVersion, kind}, ``raw``,
``contentEncoding``, ``contentType``) whose ``raw`` is the typed message
(``k8s.io.api.apps.v1.Deployment`` ...).  The sandbox has no generated classes: it reads
the wire format by hand against ``protobuf_schema.json`` (made from Kubernetes'
``generated.proto`` and Go types by ``protobuf_gen.py``) and builds what
``json.Marshal`` of the Go struct would give — JSON names, inlined embedded structs,
``omitempty`` zero values left out, and the types with their own JSON form: ``Time`` /
``MicroTime`` (RFC 3339), ``Duration`` (Go duration string), ``Quantity`` (its string),
``IntOrString``, ``RawExtension`` and ``FieldsV1`` (the JSON they carry) and ``bytes``
(base64).  Responses stay JSON: client-go accepts them (its Accept lists JSON too).
"""
from __future__ import annotations

import base64
import functools
import json
import os
import struct
from datetime import datetime, timezone

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
_META = "apimachinery.pkg.apis.meta.v1."
_INT = {"int32", "int64", "uint32", "uint64", "enum"}


class ProtobufError(ValueError):
    """The body is not a protobuf-encoded Kubernetes object the sandbox knows."""


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    """message name -> list of fields (number, proto name, json name, type, label, flags, keys)."""
    with open(os.path.join(os.path.dirname(__file__), "protobuf_schema.json")) as f:
        return json.load(f)["messages"]


@functools.lru_cache(maxsize=None)
def _by_number(msg: str) -> dict:
    m = schema().get(msg)
    if m is None:
        raise ProtobufError(f"no protobuf schema for {msg}")
    return {f[0]: f for f in m["fields"]}


def message_for(api_version: str, kind: str) -> str:
    """``apps/v1``, ``Deployment`` -> ``api.apps.v1.Deployment`` (meta/v1 kinds as a fallback)."""
    group, _, version = api_version.rpartition("/")
    pkg = f"api.{group.split('.')[0] if group else 'core'}.{version}"
    for name in (f"{pkg}.{kind}", f"{_META}{kind}"):
        if name in schema():
            return name
    raise ProtobufError(f'no kind "{kind}" is registered for version "{api_version}" in the protobuf schema')


# ---------------------------------------------------------------- wire format

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("unexpected EOF")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("integer overflow")


def _fields(buf: bytes):
    """Yield (field number, wire type, value): an int for varints and fixed, bytes otherwise."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ProtobufError("illegal tag 0")
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 2:
            n, pos = _varint(buf, pos)
            if pos + n > end:
                raise ProtobufError("unexpected EOF")
            val, pos = buf[pos:pos + n], pos + n
        elif wt in (1, 5):
            size = 8 if wt == 1 else 4
            if pos + size > end:
                raise ProtobufError("unexpected EOF")
            val, pos = buf[pos:pos + size], pos + size
        else:
            raise ProtobufError(f"illegal wireType {wt} for field {num}")
        yield num, wt, val


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _scalar(ptype: str, wt: int, val, name: str):
    if ptype in _INT or ptype == "bool":
        if wt != 0:
            raise ProtobufError(f"wrong wireType = {wt} for field {name}")
        return bool(val) if ptype == "bool" else (_signed(val) if ptype[0] == "i" else val)
    if ptype in ("double", "float"):
        if wt not in (1, 5):
            raise ProtobufError(f"wrong wireType = {wt} for field {name}")
        return struct.unpack("<d" if wt == 1 else "<f", val)[0]
    if wt != 2:
        raise ProtobufError(f"wrong wireType = {wt} for field {name}")
    if ptype == "bytes":
        return base64.b64encode(val).decode()
    try:
        return bytes(val).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtobufError(f"invalid UTF-8 in field {name}") from None


def _packed(ptype: str, val: bytes) -> list:
    if ptype in ("double", "float"):
        return list(struct.unpack(f"<{len(val) // (8 if ptype == 'double' else 4)}{'d' if ptype == 'double' else 'f'}", val))
    out, pos = [], 0
    while pos < len(val):
        v, pos = _varint(val, pos)
        out.append(bool(v) if ptype == "bool" else (_signed(v) if ptype[0] == "i" else v))
    return out


# ---------------------------------------------------------------- special types

def _time(d: dict, fmt_micro: bool = False):
    secs, nanos = d.get(1, 0), d.get(2, 0)
    if not secs and not nanos:
        return None
    t = datetime.fromtimestamp(_signed(secs), timezone.utc)
    if fmt_micro:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{_signed(nanos) // 1000:06d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _trim(ns / size) + unit
    h, rest = divmod(ns, 3_600_000_000_000)
    m, rest = divmod(rest, 60_000_000_000)
    s = _trim(rest / 1e9) + "s"
    return sign + (f"{h}h{m}m{s}" if h else (f"{m}m{s}" if m else s))


def _trim(x: float) -> str:
    return f"{x:.9f}".rstrip("0").rstrip(".")


def _raw_json(d: dict):
    raw = d.get(1)
    if not raw:
        return None
    try:
        return json.loads(bytes(raw))
    except ValueError:
        raise ProtobufError("embedded raw object is not JSON") from None


def _intstr(d: dict):
    if d.get(1, 0) == 1:
        return bytes(d.get(3, b"")).decode()
    return _signed(d.get(2, 0))


_SPECIAL = {
    _META + "Time": _time,
    _META + "MicroTime": lambda d: _time(d, True),
    _META + "Duration": lambda d: go_duration(_signed(d.get(1, 0))),
    _META + "FieldsV1": _raw_json,
    "apimachinery.pkg.runtime.RawExtension": _raw_json,
    "apimachinery.pkg.api.resource.Quantity": lambda d: bytes(d.get(1, b"0")).decode(),
    "apimachinery.pkg.util.intstr.IntOrString": _intstr,
}


def _flat(buf: bytes) -> dict:
    return {num: val for num, _, val in _fields(buf)}


# ---------------------------------------------------------------- messages

def decode_message(buf: bytes, msg: str):
    special = _SPECIAL.get(msg)
    if special is not None:
        return special(_flat(buf))
    fields = _by_number(msg)
    out: dict = {}
    seen: set = set()
    for num, wt, val in _fields(buf):
        f = fields.get(num)
        if f is None:
            continue  # unknown fields are skipped, as gogo-protobuf does
        _, _, name, ptype, label, flags, _ = f
        seen.add(num)
        if label == "m":
            if wt != 2:
                raise ProtobufError(f"wrong wireType = {wt} for field {name}")
            ktype, vtype = ptype.split(",")
            entry = {n: (w, v) for n, w, v in _fields(val)}
            k = _value(ktype, *entry.get(1, (2, b"")), name)
            v = _value(vtype, *entry[2], name) if 2 in entry else _value(vtype, 2, b"", name)
            out.setdefault(name, {})[k] = v
        elif label == "r":
            if wt == 2 and (ptype in _INT or ptype in ("bool", "double", "float")):
                out.setdefault(name, []).extend(_packed(ptype, val))
            else:
                out.setdefault(name, []).append(_value(ptype, wt, val, name))
        elif "i" in flags:
            sub = _value(ptype, wt, val, name)
            if isinstance(sub, dict):
                out.update(sub)
        else:
            out[name] = _value(ptype, wt, val, name)
    for num in seen:
        _, _, name, ptype, label, flags, _ = fields[num]
        if label == "o" and "p" not in flags and "e" in flags and name in out and _zero(ptype, out[name]):
            del out[name]
    return out


def _zero(ptype: str, value) -> bool:
    return (ptype in _INT or ptype in ("bool", "string", "bytes", "double", "float")) and not value


def _value(ptype: str, wt: int, val, name: str):
    if "." in ptype:
        if wt != 2:
            raise ProtobufError(f"wrong wireType = {wt} for field {name}")
        return decode_message(val, ptype)
    return _scalar(ptype, wt, val, name)


def decode_body(raw: bytes) -> dict:
    """A protobuf request body -> the dict its JSON encoding would be."""
    if not raw.startswith(MAGIC):
        raise ProtobufError(f"provided data does not appear to be a protobuf message, expected prefix [{' '.join(map(str, MAGIC))}]")
    unknown = _flat(raw[len(MAGIC):])  # runtime.Unknown
    if any(not isinstance(v, bytes) for v in unknown.values()):
        raise ProtobufError("the protobuf envelope is not a runtime.Unknown message")
    tm = decode_message(unknown.get(1, b""), "apimachinery.pkg.runtime.TypeMeta")
    if unknown.get(3):
        raise ProtobufError(f"unsupported content encoding {bytes(unknown[3]).decode(errors='replace')!r}")
    if not tm.get("kind") or not tm.get("apiVersion"):
        raise ProtobufError("the protobuf envelope (runtime.Unknown) has no apiVersion/kind")
    obj = decode_message(unknown.get(2, b""), message_for(tm["apiVersion"], tm["kind"]))
    return {"apiVersion": tm["apiVersion"], "kind": tm["kind"], **obj}
