"""Simulated container logs, served like a kubelet serves ``/containerLogs``.

Shared by the sandbox's ``pods/log`` (``api.py``) and the real-control-plane tier's hollow
node (``tests/realkube/hollow_node.py``), so both clusters print the same lines.

A container run (one start of one container) writes, at nanosecond times counted from
its start:

* line 0 at the start: ``<time> sandbox: container NAME (IMAGE) started on NODE``;
* a ``:crash`` image (or a run that ended with a non-zero exit code) then only its last
  words at the end of the run: ``<time> sandbox: fatal error, exiting with status 1``;
* any other image one access-log line every ``interval`` seconds while it runs:
  line k at ``start + k * interval`` reads ``<time> GET / 200 seq=<k>``.

``<time>`` is RFC 3339 with milliseconds.  Nothing is stored: the lines so far are a
function of the run's start (and end) and the clock, so ``tailLines``, ``sinceSeconds``,
``sinceTime``, ``limitBytes`` and ``timestamps`` (each line prefixed with its time in
RFC3339Nano with nine digits, as the kubelet does) all see one consistent history; only
the last ``MAX_HISTORY`` lines are kept (log rotation).  ``follow`` goes on from there.

Options are parsed and validated as the API server does (``PodLogOptions``: 422 for a
negative ``tailLines``, both ``sinceTime`` and ``sinceSeconds``, ...), and which run a
request reads - or why there is none - as the kubelet decides it (``previous``, a
crash-looping container's last run, "is waiting to start: ...").
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

MAX_HISTORY = 100_000
TRUE = {"1", "t", "T", "true", "TRUE", "True"}
FALSE = {"0", "f", "F", "false", "FALSE", "False"}


class LogOptionsError(Exception):
    """A request the API server refuses (code 400 BadRequest or 422 Invalid)."""

    def __init__(self, code: int, reason: str, message: str, causes: list | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.causes = code, reason, message, causes


class LogUnavailable(Exception):
    """The kubelet has no logs for this request (it answers 400 with this text)."""


@dataclass
class LogOptions:
    container: str | None = None
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: float | None = None
    limit_bytes: int | None = None


def _bool(query, key: str) -> bool:
    raw = query.get(key)
    if raw is None or raw == "":
        return False
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise LogOptionsError(400, "BadRequest", f'strconv.ParseBool: parsing "{raw}": invalid syntax')


def _int(query, key: str) -> int | None:
    raw = query.get(key)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise LogOptionsError(400, "BadRequest", f'strconv.ParseInt: parsing "{raw}": invalid syntax') from None


def parse_rfc3339(raw: str) -> float:
    s = raw.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    if "." in s:  # Python wants at most 6 fractional digits
        head, rest = s.split(".", 1)
        digits = "".join(ch for ch in rest if ch.isdigit())
        s = head + "." + digits[:6] + rest[len(digits):]
    return datetime.fromisoformat(s).timestamp()


def parse_options(query, pod: str) -> LogOptions:
    """``PodLogOptions`` from the query of a ``pods/log`` request, validated like the API server."""
    opts = LogOptions(container=query.get("container") or None, follow=_bool(query, "follow"),
                      previous=_bool(query, "previous"), timestamps=_bool(query, "timestamps"),
                      tail_lines=_int(query, "tailLines"), since_seconds=_int(query, "sinceSeconds"),
                      limit_bytes=_int(query, "limitBytes"))
    if query.get("sinceTime"):
        try:
            opts.since_time = parse_rfc3339(query["sinceTime"])
        except ValueError:
            raise LogOptionsError(400, "BadRequest",
                                  f'parsing time "{query["sinceTime"]}" as "2006-01-02T15:04:05Z07:00": '
                                  f'cannot parse "{query["sinceTime"]}" as "2006"') from None
    causes = []
    if opts.tail_lines is not None and opts.tail_lines < 0:
        causes.append(("FieldValueInvalid", "tailLines",
                       f"Invalid value: {opts.tail_lines}: must be greater than or equal to 0"))
    if opts.limit_bytes is not None and opts.limit_bytes < 1:
        causes.append(("FieldValueInvalid", "limitBytes", f"Invalid value: {opts.limit_bytes}: must be greater than 0"))
    if opts.since_seconds is not None and opts.since_time is not None:
        causes.append(("FieldValueForbidden", "[]", "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be "
                                                    "specified"))
    elif opts.since_seconds is not None and opts.since_seconds < 1:
        causes.append(("FieldValueInvalid", "sinceSeconds",
                       f"Invalid value: {opts.since_seconds}: must be greater than 0"))
    if causes:
        msgs = [f"{f}: {m}" for _, f, m in causes]
        joined = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
        raise LogOptionsError(422, "Invalid", f'PodLogOptions "{pod}" is invalid: {joined}',
                              [{"reason": r, "message": m, "field": f} for r, f, m in causes])
    return opts


def pick_container(pod: dict, container: str | None) -> str:
    """The container a request means, refused as the API server words it (400)."""
    names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    init = [c["name"] for c in (pod.get("spec") or {}).get("initContainers") or []]
    name = pod["metadata"]["name"]
    if not container:
        if len(names) == 1:
            return names[0]
        if not names:
            raise LogOptionsError(400, "BadRequest", f"a container name must be specified for pod {name}")
        raise LogOptionsError(400, "BadRequest",
                              f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
                              + (f" or one of the init containers: [{' '.join(init)}]" if init else ""))
    if container not in names and container not in init:
        raise LogOptionsError(400, "BadRequest", f"container {container} is not valid for pod {name}")
    return container


# ---------------------------------------------------------------------- runs

@dataclass
class Run:
    """One start of one container: what its log is a function of."""
    container: str
    image: str
    node: str
    container_id: str
    start_ns: int
    end_ns: int | None = None  # None while it runs
    crash: bool = False


def _ns(ts: str | None) -> int | None:
    return int(round(parse_rfc3339(ts) * 1e9)) if ts else None


def _tag(image: str) -> str:
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def select_run(pod: dict, container: str, previous: bool = False) -> Run:
    """The run a log request reads, chosen from the pod's status as the kubelet does."""
    st = pod.get("status") or {}
    statuses = (st.get("containerStatuses") or []) + (st.get("initContainerStatuses") or [])
    cs = next((s for s in statuses if s.get("name") == container), None)
    name = pod["metadata"]["name"]
    if cs is None:
        raise LogUnavailable(f'container "{container}" in pod "{name}" is not available')
    spec = next((c for c in (pod["spec"].get("containers") or []) + (pod["spec"].get("initContainers") or [])
                 if c["name"] == container), {})
    image = spec.get("image") or cs.get("image") or ""
    node = pod["spec"].get("nodeName") or ""
    state, last = cs.get("state") or {}, cs.get("lastState") or {}

    def ended(term: dict) -> Run:
        return Run(container, image, node, term.get("containerID") or "", _ns(term.get("startedAt")) or 0,
                   _ns(term.get("finishedAt")) or _ns(term.get("startedAt")) or 0,
                   bool(term.get("exitCode")) or _tag(image) == "crash")

    last_term = last.get("terminated")
    if previous:
        if not last_term or not last_term.get("containerID"):
            raise LogUnavailable(f'previous terminated container "{container}" in pod "{name}" not found')
        return ended(last_term)
    if "running" in state:
        return Run(container, image, node, cs.get("containerID") or "", _ns(state["running"].get("startedAt")) or 0,
                   None, _tag(image) == "crash")
    if "terminated" in state:
        if state["terminated"].get("containerID"):
            return ended(state["terminated"])
        if last_term and last_term.get("containerID"):
            return ended(last_term)
        raise LogUnavailable(f'container "{container}" in pod "{name}" is terminated')
    if last_term:
        if not last_term.get("containerID"):
            raise LogUnavailable(f'container "{container}" in pod "{name}" is terminated')
        return ended(last_term)
    if "waiting" in state:
        reason = state["waiting"].get("reason") or ""
        why = {"ErrImagePull": "image can't be pulled",
               "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
        raise LogUnavailable(f'container "{container}" in pod "{name}" is waiting to start: {why}')
    raise LogUnavailable(f'container "{container}" in pod "{name}" is waiting to start - no logs yet')


# ---------------------------------------------------------------------- lines

def stamp(t_ns: int, digits: int) -> str:
    sec, frac = divmod(t_ns, 1_000_000_000)
    base = datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac // 10 ** (9 - digits):0{digits}d}Z"


class LogReader:
    """The lines of one run for one request: history first, then (``follow``) what comes."""

    def __init__(self, run: Run, opts: LogOptions, interval: float, now: float | None = None):
        self.run, self.opts = run, opts
        self.interval_ns = max(1, int(round(interval * 1e9)))
        self.left = opts.limit_bytes  # bytes still allowed (None: no limit)
        now_ns = int((time.time() if now is None else now) * 1e9)
        n = self.count_upto(now_ns)
        lo = max(0, n - MAX_HISTORY)
        if opts.tail_lines is not None:
            lo = max(lo, n - opts.tail_lines)
        since_ns = None
        if opts.since_seconds is not None:
            since_ns = now_ns - opts.since_seconds * 1_000_000_000
        elif opts.since_time is not None:
            since_ns = int(opts.since_time * 1e9)
        if since_ns is not None:
            lo = max(lo, self.first_at_or_after(since_ns))
        self.next = min(lo, n)
        self.upto = n

    # -- the run's line times
    def time_of(self, k: int) -> int:
        if self.run.crash:
            return self.run.start_ns if k == 0 else (self.run.end_ns or self.run.start_ns)
        return self.run.start_ns + k * self.interval_ns

    def count_upto(self, t_ns: int) -> int:
        run = self.run
        if t_ns < run.start_ns:
            return 0
        if run.crash:
            return 2 if run.end_ns is not None and t_ns >= run.end_ns else 1
        end = t_ns if run.end_ns is None else min(t_ns, run.end_ns)
        return 1 + max(0, end - run.start_ns) // self.interval_ns

    def first_at_or_after(self, t_ns: int) -> int:
        if self.run.crash:
            return 0 if t_ns <= self.run.start_ns else (1 if t_ns <= self.time_of(1) else 2)
        if t_ns <= self.run.start_ns:
            return 0
        return -(-(t_ns - self.run.start_ns) // self.interval_ns)

    def text(self, k: int) -> str:
        t = self.time_of(k)
        run = self.run
        if k == 0:
            body = f"sandbox: container {run.container} ({run.image}) started on {run.node}"
        elif run.crash:
            body = "sandbox: fatal error, exiting with status 1"
        else:
            body = f"GET / 200 seq={k}"
        line = f"{stamp(t, 3)} {body}\n"
        return f"{stamp(t, 9)} {line}" if self.opts.timestamps else line

    # -- reading
    @property
    def exhausted(self) -> bool:
        return self.left is not None and self.left <= 0

    def read(self, upto: int | None = None) -> bytes:
        """Lines from where the reader stands up to ``upto`` (exclusive; default: all seen so far)."""
        upto = self.upto if upto is None else upto
        if self.exhausted or self.next >= upto:
            return b""
        out = "".join(self.text(k) for k in range(self.next, upto)).encode()
        self.next = upto
        if self.left is not None:
            out = out[:self.left]
            self.left -= len(out)
        return out

    def advance(self, now: float | None = None, ended_ns: int | None = None) -> bytes:
        """Lines that came due since the last read (follow); ``ended_ns``: the run stopped then."""
        if ended_ns is not None and self.run.end_ns is None:
            self.run.end_ns = ended_ns
        self.upto = self.count_upto(int((time.time() if now is None else now) * 1e9))
        return self.read()

    def next_due(self) -> float | None:
        """Unix time of the next line, or None when the run has no more (it ended, or a crash
        run already said its last words)."""
        if self.exhausted:
            return None
        if self.run.crash:
            return None if self.upto >= 2 or self.run.end_ns is not None else time.time() + 0.5
        t = self.time_of(self.upto)
        if self.run.end_ns is not None and t > self.run.end_ns:
            return None
        return t / 1e9


def still_running(pod: dict | None, run: Run) -> bool:
    """Whether ``run`` is still the running instance of its container in ``pod``."""
    if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == run.container:
            return "running" in (cs.get("state") or {}) and (cs.get("containerID") or "") == run.container_id
    return False
