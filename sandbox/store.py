"""The object store: etcd + the API server's watch cache, in one asyncio process.

Design choices:

* One global, monotonically increasing integer ``resourceVersion`` for every write of
  every resource, exactly like etcd's revision.  It survives restarts via the
  snapshot, so clients never see a resourceVersion go backwards.
* Objects are plain JSON-able dicts that are *never mutated once stored*; every write
  stores a new dict.  That makes reads lock-free (asyncio has no preemption anyway)
  and lets an ``Entry`` cache its serialised bytes: a GET, a LIST, every watcher
  and the snapshot all reuse the same bytes instead of re-encoding.  Callers that
  need a mutable copy decode those bytes (``Entry.copy()``), which is faster than
  ``copy.deepcopy``.
* Watch fan-out is synchronous inside the write: the event is appended to a bounded
  history ring (the "watch cache") and offered to every watcher of that resource,
  which filters it (namespace, label and field selectors) and buffers the encoded
  line.  A watch that starts from a resourceVersion replays the ring; one that starts
  from before the oldest retained event gets ``410 Expired``, as a real API server
  does after compaction.  Because history is not snapshotted, watches from before a
  restart also get 410 and must re-list - the behaviour informers are built for.
* Controllers subscribe as *listeners*: they get ``(resource, type, obj, old)`` and
  only enqueue keys, so a write never runs controller logic inline.
"""
from __future__ import annotations

import asyncio
import json
import os
from collections import deque

from .selectors import fields_match, labels_match

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
SNAPSHOT_FORMAT = "mae-sandbox-snapshot/1"

# check_circular=False: what is encoded is JSON data (parsed or built here), never cyclic, and
# the encoder's per-container cycle bookkeeping is a fifth of its time on a stored object.
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False).encode


def dumps(obj) -> bytes:
    return _dumps(obj).encode()


class Entry:
    """One stored version of one object."""

    __slots__ = ("res", "ns", "name", "obj", "_raw")

    def __init__(self, res: str, ns: str, name: str, obj: dict, raw: bytes | None = None):
        self.res, self.ns, self.name, self.obj, self._raw = res, ns, name, obj, raw

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = dumps(self.obj)
        return self._raw

    def copy(self) -> dict:
        return json.loads(self.raw)

    def shallow(self, **replace) -> dict:
        """A new top-level dict with a fresh ``metadata`` dict, sharing everything else.

        Stored objects are never mutated, so sharing ``spec`` between two versions is
        safe; this is what status writers use instead of a full deep copy."""
        out = dict(self.obj)
        out["metadata"] = dict(self.obj["metadata"])
        out.update(replace)
        return out

    @property
    def rv(self) -> int:
        return int(self.obj["metadata"]["resourceVersion"])


class Watcher:
    """A server-side watch: filters events and buffers encoded lines for one client."""

    MAX_BUFFER = 200_000  # a client this far behind is cut off, as a real server would

    def __init__(self, res: str, ns: str | None, lreqs: tuple, freqs: tuple):
        self.res, self.ns, self.lreqs, self.freqs = res, ns, lreqs, freqs
        self.buf: deque[bytes] = deque()
        self.wakeup = asyncio.Event()
        self.closed = False

    def matches(self, entry: Entry) -> bool:
        if self.ns is not None and entry.ns != self.ns:
            return False
        obj = entry.obj
        if self.lreqs and not labels_match(self.lreqs, obj["metadata"].get("labels")):
            return False
        if self.freqs and not fields_match(self.freqs, obj):
            return False
        return True

    def offer(self, etype: str, entry: Entry, old: Entry | None) -> None:
        now = self.matches(entry)
        if etype == MODIFIED and (self.lreqs or self.freqs):
            before = old is not None and self.matches(old)
            # An object moving in or out of a selector looks like ADDED / DELETED to
            # the watcher, which is how the real watch cache filters.
            if now and not before:
                etype = ADDED
            elif before and not now:
                etype, now = DELETED, True
        if now:
            self.push(b'{"type":"' + etype.encode() + b'","object":' + entry.raw + b"}\n")

    def push(self, line: bytes) -> None:
        if self.closed:
            return
        self.buf.append(line)
        if len(self.buf) > self.MAX_BUFFER:
            self.close()
        self.wakeup.set()

    def close(self) -> None:
        self.closed = True
        self.wakeup.set()


class TooOld(Exception):
    def __init__(self, requested: int, oldest: int):
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested, self.oldest = requested, oldest


class Store:
    def __init__(self, history: int = 20_000):
        self.rv = 0
        self.data: dict[str, dict[str, dict[str, Entry]]] = {}
        self.by_uid: dict[str, tuple[str, str, str]] = {}
        self.dependents: dict[str, set[tuple[str, str, str]]] = {}
        self.history: deque = deque()
        self.history_max = max(1, history)
        self.compacted_rv = 0  # events at or below this rv are no longer replayable
        self.watchers: dict[str, set[Watcher]] = {}
        self.listeners: list = []
        self.dirty = False

    # ---------------------------------------------------------------- reads

    def get(self, res: str, ns: str, name: str) -> Entry | None:
        by_ns = self.data.get(res)
        if by_ns is None:
            return None
        names = by_ns.get(ns)
        return names.get(name) if names else None

    def get_by_uid(self, uid: str) -> Entry | None:
        key = self.by_uid.get(uid)
        return self.get(*key) if key else None

    def iter(self, res: str, ns: str | None = None):
        by_ns = self.data.get(res) or {}
        if ns is not None:
            yield from (by_ns.get(ns) or {}).values()
        else:
            for names in by_ns.values():
                yield from names.values()

    def sorted_entries(self, res: str, ns: str | None = None) -> list[Entry]:
        """Entries in etcd key order (namespace, then name), which paging relies on."""
        by_ns = self.data.get(res) or {}
        if ns is not None:
            names = by_ns.get(ns) or {}
            return [names[n] for n in sorted(names)]
        out = []
        for n in sorted(by_ns):
            names = by_ns[n]
            out.extend(names[k] for k in sorted(names))
        return out

    def sorted_entries_at(self, res: str, ns: str | None, rv: int) -> list[Entry]:
        """``sorted_entries`` as they were at resourceVersion ``rv`` (etcd's MVCC read, for paging
        and ``resourceVersionMatch=Exact``): the current state with the history after ``rv``
        undone. ``TooOld`` once that history is compacted."""
        if rv >= self.rv:
            return self.sorted_entries(res, ns)
        if rv < self.compacted_rv:
            raise TooOld(rv, self.compacted_rv + 1)
        state = {(e.ns, e.name): e for e in self.iter(res, ns)}
        for erv, r, etype, entry, old in reversed(self.history):
            if erv <= rv:
                break
            if r == res and (ns is None or entry.ns == ns):
                if etype == ADDED:
                    state.pop((entry.ns, entry.name), None)
                else:
                    state[(entry.ns, entry.name)] = old
        return [state[k] for k in sorted(state)]

    def count(self, res: str, ns: str | None = None) -> int:
        by_ns = self.data.get(res) or {}
        if ns is not None:
            return len(by_ns.get(ns) or {})
        return sum(len(v) for v in by_ns.values())

    def dependents_of(self, uid: str) -> list[Entry]:
        out = []
        for key in list(self.dependents.get(uid, ())):
            e = self.get(*key)
            if e is not None:
                out.append(e)
        return out

    # ---------------------------------------------------------------- writes

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def put(self, res: str, obj: dict) -> Entry:
        """Store *obj* (which must not be mutated afterwards) as the newest version."""
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        rv = self.next_rv()
        meta["resourceVersion"] = str(rv)
        old = self.get(res, ns, name)
        entry = Entry(res, ns, name, obj)
        self.data.setdefault(res, {}).setdefault(ns, {})[name] = entry
        self._index(entry, old)
        self._emit(rv, MODIFIED if old is not None else ADDED, entry, old)
        return entry

    def remove(self, res: str, ns: str, name: str) -> Entry | None:
        old = self.get(res, ns, name)
        if old is None:
            return None
        del self.data[res][ns][name]
        if not self.data[res][ns]:
            del self.data[res][ns]
        rv = self.next_rv()
        # The DELETED event carries the object at the deletion's resourceVersion.
        obj = old.shallow()
        obj["metadata"]["resourceVersion"] = str(rv)
        entry = Entry(res, ns, name, obj)
        self._index(None, old)
        self._emit(rv, DELETED, entry, old)
        return entry

    def _index(self, new: Entry | None, old: Entry | None) -> None:
        key = (new or old).res, (new or old).ns, (new or old).name
        old_owners = {r.get("uid") for r in (old.obj["metadata"].get("ownerReferences") or [])} if old else set()
        new_owners = {r.get("uid") for r in (new.obj["metadata"].get("ownerReferences") or [])} if new else set()
        for uid in old_owners - new_owners:
            deps = self.dependents.get(uid)
            if deps:
                deps.discard(key)
                if not deps:
                    del self.dependents[uid]
        for uid in new_owners - old_owners:
            self.dependents.setdefault(uid, set()).add(key)
        if old is not None and new is None:
            self.by_uid.pop(old.obj["metadata"].get("uid"), None)
        if new is not None:
            self.by_uid[new.obj["metadata"]["uid"]] = key

    def _emit(self, rv: int, etype: str, entry: Entry, old: Entry | None) -> None:
        self.dirty = True
        if len(self.history) >= self.history_max:
            self.compacted_rv = self.history.popleft()[0]
        self.history.append((rv, entry.res, etype, entry, old))
        for w in self.watchers.get(entry.res, ()):
            w.offer(etype, entry, old)
        for listener in self.listeners:
            listener(entry.res, etype, entry.obj, old.obj if old is not None else None)

    # ---------------------------------------------------------------- watches

    def watch(self, res: str, ns: str | None, lreqs: tuple, freqs: tuple,
              since: int | None) -> Watcher:
        """Register a watcher.  ``since=None`` means "current state, then changes"
        (synthetic ADDED events); otherwise replay changes after *since*."""
        w = Watcher(res, ns, lreqs, freqs)
        if since is None:
            for entry in self.sorted_entries(res, ns):
                w.offer(ADDED, entry, None)
        else:
            if since < self.compacted_rv:
                raise TooOld(since, self.compacted_rv + 1)
            if self.history and since < self.history[-1][0]:
                for rv, r, etype, entry, old in self.history:
                    if rv > since and r == res:
                        w.offer(etype, entry, old)
        self.watchers.setdefault(res, set()).add(w)
        return w

    def unwatch(self, w: Watcher) -> None:
        ws = self.watchers.get(w.res)
        if ws:
            ws.discard(w)
        w.close()

    def close_watchers(self) -> None:
        for ws in self.watchers.values():
            for w in list(ws):
                w.close()
        self.watchers.clear()

    # ---------------------------------------------------------------- snapshot

    def snapshot(self, path: str, meta: dict | None = None) -> None:
        """Write all objects atomically."""
        data = self.snapshot_data(meta)
        try:
            write_snapshot(path, data)
        except OSError:
            self.dirty = True
            raise

    def snapshot_data(self, meta: dict | None = None) -> bytes:
        """The snapshot of the current state, and the store marked clean (a failed write must set
        ``dirty`` again).  Runs in the event loop; the cached raw bytes make it a join, not an
        encode, so it is cheap even for large states - the file write can go to a thread."""
        header = {"format": SNAPSHOT_FORMAT, "resourceVersion": self.rv, **(meta or {})}
        chunks = [dumps(header), b"\n"]
        for res, by_ns in self.data.items():
            prefix = res.encode() + b"\t"
            for names in by_ns.values():
                for entry in names.values():
                    chunks.append(prefix)
                    chunks.append(entry.raw)
                    chunks.append(b"\n")
        self.dirty = False
        return b"".join(chunks)

    def load(self, path: str) -> dict:
        """Load a snapshot written by :meth:`snapshot`; returns its header."""
        with open(path, "rb") as fh:
            header = json.loads(fh.readline())
            if header.get("format") != SNAPSHOT_FORMAT:
                raise ValueError(f"{path}: not a sandbox snapshot")
            for line in fh:
                line = line.rstrip(b"\n")
                if not line:
                    continue
                res, raw = line.split(b"\t", 1)
                obj = json.loads(raw)
                meta = obj["metadata"]
                entry = Entry(res.decode(), meta.get("namespace", ""), meta["name"], obj, raw)
                self.data.setdefault(entry.res, {}).setdefault(entry.ns, {})[entry.name] = entry
                self._index(entry, None)
        self.rv = int(header["resourceVersion"])
        # Nothing before the snapshot can be replayed: watches from older versions get 410.
        self.compacted_rv = self.rv
        self.dirty = False
        return header


def write_snapshot(path: str, data: bytes) -> None:
    """``data`` to ``path`` atomically (temporary file, fsync, rename); safe in a thread."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
