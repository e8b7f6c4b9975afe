"""The inside of a simulated container, for ``pods/exec`` (sandbox/shell.py runs commands in it).

``Container(pod, name, lookup)`` builds what a process in that container would see:

* the environment the kubelet gives it: ``PATH``, ``HOSTNAME``, the spec's ``envFrom`` and ``env``
  (plain values with ``$(VAR)`` references, ``configMapKeyRef``, ``secretKeyRef``, ``fieldRef``),
  the ``KUBERNETES_*`` service variables and ``HOME``;
* files: the ``volumeMounts`` of ConfigMap, Secret, projected (ConfigMap/Secret), downwardAPI and
  emptyDir volumes (``items``, ``subPath``), read from the store through ``lookup(resource, ns, name)``,
  plus ``/etc/hostname`` and what commands wrote (``>``, ``tar x``) in this run of the container.
"""
from __future__ import annotations

import base64
import io
import posixpath
import re
import tarfile

BASE_DIRS = ("/bin", "/dev", "/etc", "/home", "/proc", "/root", "/sys", "/tmp", "/usr", "/var")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
VAR = re.compile(r"\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")
KUBERNETES_ENV = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
                  "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
                  "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
                  "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1"}



def _field(pod: dict, path: str) -> str:
    meta, spec, st = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    m = re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    return str({"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
                "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
                "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
                "status.hostIP": st.get("hostIP"), "status.podIP": st.get("podIP"),
                "status.podIPs": st.get("podIP")}.get(path) or "")


class Container:
    def __init__(self, pod: dict, name: str, lookup, written: dict | None = None):
        """``written``: what commands wrote in this container run so far ({path: bytes}; kept and
        updated, so a later exec in the same run sees it, a restarted container does not)."""
        self.pod, self.lookup, self.written = pod, lookup, ({} if written is None else written)
        self.ns = pod["metadata"].get("namespace") or ""
        spec = pod.get("spec") or {}
        self.spec = next(c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
                         if c["name"] == name)
        self.hostname = spec.get("hostname") or pod["metadata"]["name"]
        self.env = self._environment()
        self.files: dict[str, bytes] = {"/etc/hostname": (self.hostname + "\n").encode()}
        self.dirs: set[str] = set(BASE_DIRS) | {"/"}
        self._mount_volumes()
        self.files.update({p: d for p, d in self.written.items() if d is not None})
        self.dirs.update(p for p, d in self.written.items() if d is None)
        for path in list(self.files) + list(self.dirs):
            self._add_parents(path)

    def _add_parents(self, path: str) -> None:
        while path != "/":
            path = posixpath.dirname(path)
            self.dirs.add(path)

    def write(self, path: str, data: bytes | None) -> None:
        """Create a file (``data``) or a directory (None)."""
        if data is None:
            self.dirs.add(path)
        else:
            self.files[path] = data
        self.written[path] = data
        self._add_parents(path)

    # ---------------------------------------------------------------- environment
    def _data(self, kind: str, name: str) -> dict[str, bytes] | None:
        obj = self.lookup(kind, self.ns, name) if name else None
        if obj is None:
            return None
        if kind == "secrets":
            return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        out = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        return out

    def _environment(self) -> dict[str, str]:
        env = {"PATH": PATH, "HOSTNAME": self.hostname}
        declared: dict[str, str] = {}
        for src in self.spec.get("envFrom") or []:
            ref, kind = (src["configMapRef"], "configmaps") if src.get("configMapRef") else (
                (src.get("secretRef") or {}), "secrets")
            for k, v in (self._data(kind, ref.get("name")) or {}).items():
                if ENV_NAME.match(src.get("prefix", "") + k):
                    declared[src.get("prefix", "") + k] = v.decode(errors="replace")
        for e in self.spec.get("env") or []:
            vf = e.get("valueFrom")
            if vf is None:
                value = VAR.sub(lambda m: declared.get(m.group(1), m.group(0)), e.get("value") or "")
            elif vf.get("fieldRef"):
                value = _field(self.pod, vf["fieldRef"].get("fieldPath", ""))
            elif vf.get("configMapKeyRef") or vf.get("secretKeyRef"):
                ref, kind = (vf["configMapKeyRef"], "configmaps") if vf.get("configMapKeyRef") else (
                    vf["secretKeyRef"], "secrets")
                raw = (self._data(kind, ref.get("name")) or {}).get(ref.get("key"))
                if raw is None:
                    continue  # optional and missing: the kubelet leaves the variable out
                value = raw.decode(errors="replace")
            else:
                value = ""  # resourceFieldRef: not simulated
            declared[e["name"]] = value
        env.update(declared)
        env.update({k: v for k, v in KUBERNETES_ENV.items() if k not in env})  # injected even without service links
        env.setdefault("HOME", "/root")
        return env

    # ---------------------------------------------------------------- files
    def _volume_files(self, vol: dict) -> dict[str, bytes] | None:
        """The files of a volume, relative paths; None for a kind that is not simulated."""
        def pick(data: dict[str, bytes] | None, items) -> dict[str, bytes]:
            data = data or {}
            if not items:
                return dict(data)
            return {it["path"]: data[it["key"]] for it in items if it.get("key") in data}

        if "configMap" in vol:
            return pick(self._data("configmaps", vol["configMap"].get("name")), vol["configMap"].get("items"))
        if "secret" in vol:
            return pick(self._data("secrets", vol["secret"].get("secretName")), vol["secret"].get("items"))
        if "downwardAPI" in vol:
            return {it["path"]: _field(self.pod, (it.get("fieldRef") or {}).get("fieldPath", "")).encode()
                    for it in vol["downwardAPI"].get("items") or []}
        if "projected" in vol:
            out: dict[str, bytes] = {}
            for src in vol["projected"].get("sources") or []:
                for field, kind in (("configMap", "configmaps"), ("secret", "secrets")):
                    if src.get(field):
                        out.update(pick(self._data(kind, src[field].get("name")), src[field].get("items")))
            return out
        return {} if "emptyDir" in vol else None

    def _mount_volumes(self) -> None:
        vols = {v["name"]: v for v in (self.pod.get("spec") or {}).get("volumes") or []}
        for m in self.spec.get("volumeMounts") or []:
            files = self._volume_files(vols.get(m.get("name"), {}))
            if files is None:
                continue
            target = posixpath.normpath(m["mountPath"])
            sub = (m.get("subPath") or "").strip("/")
            if sub and sub in files:
                self.files[target] = files[sub]
                continue
            self.dirs.add(target)
            for rel, data in files.items():
                if not sub or rel.startswith(sub + "/"):
                    self.files[posixpath.join(target, rel[len(sub) + 1:] if sub else rel)] = data

    def listing(self, d: str) -> list[str]:
        prefix = d.rstrip("/") + "/"
        return sorted({p[len(prefix):].split("/", 1)[0] for p in list(self.files) + list(self.dirs)
                       if p.startswith(prefix) and p != prefix})

    # ---------------------------------------------------------------- tar (kubectl cp)
    def tar(self, paths: list[tuple[str, str]]) -> tuple[bytes, bytes, int]:
        """``tar cf - ...`` of ``(as given, absolute)`` paths, member names as GNU tar writes them."""
        buf, err = io.BytesIO(), []
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for given, p in paths:
                if p not in self.files and p not in self.dirs:
                    err.append(f"tar: {given}: Cannot stat: No such file or directory\n")
                    continue
                if given.startswith("/"):
                    err.append("tar: Removing leading `/' from member names\n")
                below = [f for f in list(self.files) + list(self.dirs) if f.startswith(p.rstrip("/") + "/")]
                for q in sorted([p] + below):
                    info = tarfile.TarInfo(q.lstrip("/") + ("/" if q in self.dirs else ""))
                    info.type, info.mode = (tarfile.DIRTYPE, 0o755) if q in self.dirs else (tarfile.REGTYPE, 0o644)
                    info.size = len(self.files.get(q, b""))
                    tar.addfile(info, io.BytesIO(self.files.get(q, b"")))
        failed = any("Cannot" in e for e in err)
        if failed:
            err.append("tar: Exiting with failure status due to previous errors\n")
        return buf.getvalue(), "".join(dict.fromkeys(err)).encode(), 2 if failed else 0

    def untar(self, data: bytes, target: str) -> tuple[bytes, bytes, int]:
        """``tar xf - -C target``: the archive's files and directories written into this run."""
        if target not in self.dirs:
            return b"", f"tar: {target}: Cannot open: No such file or directory\n".encode(), 2
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                for m in tar.getmembers():
                    dest = posixpath.normpath(posixpath.join(target, m.name))
                    self.write(dest, None if m.isdir() else (tar.extractfile(m).read() if m.isfile() else b""))
        except tarfile.TarError:
            return b"", b"tar: This does not look like a tar archive\n", 2
        return b"", b"", 0
