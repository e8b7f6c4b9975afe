"""Build ``protobuf_schema.json`` from the Kubernetes sources (run by hand, output checked in).

    python -m sandbox.protobuf_gen API_DIR APIMACHINERY_DIR > sandbox/protobuf_schema.json

``API_DIR`` is a checkout of k8s.io/api, ``APIMACHINERY_DIR`` one of k8s.io/apimachinery.
The ``generated.proto`` files give each message's fields (number, proto type, repeated or
map); the Go ``types.go`` next to them give what the protobuf does not say and JSON and
server-side apply need: the JSON name (or ``inline`` for embedded structs such as a
Volume's ``VolumeSource``), ``omitempty``, whether the Go field is a pointer, and the
structured-merge-diff shape (``+listType``/``+listMapKey``, ``patchMergeKey`` with
``patchStrategy:"merge"``, ``+mapType``/``+structType=atomic``).

Schema: ``{"messages": {"api.apps.v1.DeploymentSpec": {"atomic": bool, "fields":
[[number, proto_name, json_name, type, label, flags, keys], ...]}}}`` where ``type`` is a
proto scalar or a message name without the ``k8s.io.`` prefix, label is ``o``/``r``/``m``
(optional, repeated, map — a map's type is ``"K,V"``), flags has ``p`` pointer, ``e``
omitempty, ``i`` inline, ``a`` atomic, ``s`` set, ``g`` granular (list-map/map), and
``keys`` the list-map keys.
"""
from __future__ import annotations

import json
import os
import re
import sys

API_PACKAGES = ["core/v1", "apps/v1", "batch/v1", "networking/v1", "rbac/v1", "policy/v1",
                "autoscaling/v1", "autoscaling/v2", "admissionregistration/v1", "events/v1",
                "coordination/v1", "scheduling/v1", "storage/v1", "discovery/v1"]
MACHINERY_PACKAGES = ["pkg/apis/meta/v1", "pkg/runtime", "pkg/runtime/schema", "pkg/api/resource",
                      "pkg/util/intstr"]
_MSG = re.compile(r"^message (\w+) \{")
_FIELD = re.compile(r"^\s+(optional|repeated)\s+(\S+)\s+(\w+)\s*=\s*(\d+)")
_MAP = re.compile(r"^\s+map<(\S+),\s*(\S+)>\s+(\w+)\s*=\s*(\d+)")
_TAG = re.compile(r'(\w+):"([^"]*)"')


def parse_proto(text: str) -> tuple[str, dict]:
    pkg = re.search(r"^package ([\w.]+);", text, re.M).group(1)

    def qual(t: str) -> str:
        if t.startswith("."):
            t = t[1:]
        elif "." not in t and t[0].isupper():
            t = f"{pkg}.{t}"
        return t[len("k8s.io."):] if t.startswith("k8s.io.") else t

    msgs: dict = {}
    cur = None
    for line in text.splitlines():
        m = _MSG.match(line)
        if m:
            cur = msgs.setdefault(m.group(1), [])
            continue
        if line.startswith("}"):
            cur = None
        if cur is None:
            continue
        m = _FIELD.match(line)
        if m:
            cur.append((int(m.group(4)), m.group(3), qual(m.group(2)), "o" if m.group(1) == "optional" else "r"))
            continue
        m = _MAP.match(line)
        if m:
            cur.append((int(m.group(4)), m.group(3), f"{qual(m.group(1))},{qual(m.group(2))}", "m"))
    return pkg, msgs


def parse_go(directory: str) -> dict:
    """struct name -> {"atomic": bool, "fields": {proto_name: info}} from the Go files."""
    structs: dict = {}
    for fn in sorted(os.listdir(directory)):
        if not fn.endswith(".go") or fn.endswith("_test.go") or fn.startswith("zz_"):
            continue
        with open(os.path.join(directory, fn)) as f:
            lines = f.read().splitlines()
        comments: list[str] = []
        cur = None
        for line in lines:
            s = line.strip()
            if s.startswith("//"):
                comments.append(s)
                continue
            m = re.match(r"^type (\w+) struct \{", line)
            if m:
                cur = structs.setdefault(m.group(1), {"atomic": any("+structType=atomic" in c for c in comments),
                                                      "fields": {}})
                comments = []
                continue
            if line.startswith("}"):
                cur = None
            if cur is not None and "`" in line and 'protobuf:"' in line:
                head, tags = line.split("`", 1)
                words = head.split()
                gotype = words[-1]
                tagd = dict(_TAG.findall(tags))
                jname, *jopts = tagd.get("json", "").split(",")
                pname = next((p[5:] for p in tagd["protobuf"].split(",") if p.startswith("name=")),
                             gotype[0].lower() + gotype[1:])  # EphemeralContainerCommon
                marks = " ".join(comments)
                cur["fields"][pname] = {
                    "json": jname, "inline": jname == "" and len(words) == 1 or "inline" in jopts,
                    "omitempty": "omitempty" in jopts, "pointer": gotype.startswith("*"),
                    "listType": _mark(marks, "listType") or _strategy(tagd), "mapType": _mark(marks, "mapType"),
                    "keys": re.findall(r"\+listMapKey=(\w+)", marks) or (
                        [tagd["patchMergeKey"]] if _strategy(tagd) == "map" else []),
                }
            if not s.startswith("//"):
                comments = [] if s or cur is None else comments
    return structs


def _mark(marks: str, name: str) -> str | None:
    m = re.search(rf"\+{name}=(\w+)", marks)
    return m.group(1) if m else None


def _strategy(tagd: dict) -> str | None:
    if "merge" in tagd.get("patchStrategy", "").split(","):
        return "map" if tagd.get("patchMergeKey") else "set"
    return None


def build(api_dir: str, machinery_dir: str) -> dict:
    out: dict = {}
    dirs = [os.path.join(api_dir, p) for p in API_PACKAGES] + [os.path.join(machinery_dir, p) for p in MACHINERY_PACKAGES]
    for d in dirs:
        with open(os.path.join(d, "generated.proto")) as f:
            pkg, msgs = parse_proto(f.read())
        structs = parse_go(d)
        short = pkg[len("k8s.io."):]
        for name, fields in msgs.items():
            st = structs.get(name, {"atomic": False, "fields": {}})
            rows = []
            for num, pname, ptype, label in fields:
                info = st["fields"].get(pname) or {"json": pname, "inline": False, "omitempty": True,
                                                   "pointer": False, "listType": None, "mapType": None, "keys": []}
                flags = "".join(c for c, on in (("p", info["pointer"]), ("e", info["omitempty"]),
                                                ("i", info["inline"])) if on)
                if label == "r":
                    lt = info["listType"] or "atomic"
                    flags += {"atomic": "a", "set": "s", "map": "g"}[lt]
                elif label == "m":
                    flags += "a" if info["mapType"] == "atomic" else "g"
                rows.append([num, pname, info["json"] or pname, ptype, label, flags, info["keys"]])
            out[f"{short}.{name}"] = {"atomic": st["atomic"], "fields": rows}
    return {"messages": out}


if __name__ == "__main__":
    json.dump(build(sys.argv[1], sys.argv[2]), sys.stdout, separators=(",", ":"), sort_keys=True)
    sys.stdout.write("\n")
