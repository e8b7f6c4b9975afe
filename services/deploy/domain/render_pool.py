"""Render workers: child processes that run user templates under rlimits and a wall clock.

Why a process and not a budget inside the sandbox: see ``templates``' docstring. Two
sides in one module:

* the worker (``python -I render_pool.py MEMORY_MB CPU_SECONDS``, started by the pool):
  imports ``templates``, then limits its own address space (``RLIMIT_AS``: what it
  has after the imports + MEMORY_MB) and core files, and serves requests read from
  stdin, one at a time, each under an ``RLIMIT_CPU`` raised to "used so far +
  CPU_SECONDS" before it starts. A render that allocates past the limit gets a
  ``MemoryError`` (refused; the worker exits after replying, so nothing of it
  lingers); one that spins past the CPU limit is killed by the kernel.
* the pool (in the deploy service, green): at most ``size`` workers, started on
  demand, kept for the next render. Each request waits for its reply on a green
  pipe read under an ``eventlet.Timeout``; past the deadline the worker is
  SIGKILLed (its reply never read) and a replacement started in the background.
  Waiting is a trampoline on a pipe, so other green threads run meanwhile: a
  template can cost a deploy worker its deadline, never the process.

Frames are a 4-byte big-endian length and JSON (requests), or a byte T and the
rendered text's UTF-8, or a byte J and JSON (replies): ``{"text": ...}`` (render),
``{}`` (checks passed), ``{"refused": reason}``, ``{"error": ...}`` (a bug of ours),
``"recycle": true`` when the worker exits after replying.
"""
from __future__ import annotations

import fcntl
import gc
import json
import os
import resource
import struct
import subprocess
import sys
from pathlib import Path

HEADER = struct.Struct(">I")
PIPE_BYTES = 1 << 20  # Linux's default pipe-max-size
ROOT = Path(__file__).resolve().parents[3]
START_SECONDS = 60.0  # a worker that is not ready by then is a broken install, not a template


class Late(Exception):
    """The worker did not reply within the deadline (it has been killed)."""


class Died(Exception):
    """The worker exited without replying: the kernel stopped it (CPU limit) or it crashed."""


# -- the worker side ---------------------------------------------------------------

def _read_exact(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _write_all(fd: int, *parts: bytes) -> None:
    left = sum(map(len, parts))
    while left:
        done = os.writev(fd, parts)
        left -= done
        if left:  # rare: a partial write (the pipe holds a whole reply)
            data = b"".join(parts)[done:]
            parts = (data,)


def _vm_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _handle(templates, request: dict, memory_mb: int) -> dict:
    body = request["body"]

    def run() -> dict:
        if request["op"] == "render":
            return {"text": templates.render_here(body, request["context"])}
        if request["op"] == "check":
            templates.compiled(body)
            return {}
        if request["op"] == "names":
            templates.check_names_here(body, set(request["given"]))
            return {}
        return {"error": f"unknown op {request['op']!r}"}

    try:
        try:
            return run()
        except MemoryError:
            if not templates.clear_cache():
                raise
        # out of the except clause: its traceback (and what the render held) is gone
        gc.collect()
        return run()  # once more without the compiled templates of others
    except templates.TemplateRefused as exc:
        return {"refused": str(exc)}
    except RecursionError:
        return {"refused": "the template nests or calls itself too deeply"}
    except MemoryError:
        return {"refused": f"the template needs more than {memory_mb} MB of memory to render", "recycle": True}


def serve(memory_mb: int, cpu_seconds: int) -> None:
    sys.path.insert(0, str(ROOT))
    from services.deploy.domain import templates

    requests, replies = 0, os.dup(1)
    os.dup2(2, 1)  # a stray print goes to stderr, never into a reply
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    limit = _vm_bytes() + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)

    def send(reply: dict) -> None:
        # a rendered text goes as it is (T + UTF-8): escaping 500 KB into JSON is work for nothing
        # (surrogatepass: a lone surrogate from the values comes back as it went, as in-process)
        if set(reply) == {"text"}:
            kind, data = b"T", reply["text"].encode("utf-8", "surrogatepass")
        else:
            kind, data = b"J", json.dumps(reply).encode()
        _write_all(replies, HEADER.pack(len(data) + 1), kind, data)

    send({"ready": True})
    while True:
        header = _read_exact(requests, HEADER.size)
        data = header and _read_exact(requests, HEADER.unpack(header)[0])
        if not data:
            return  # the service closed the pipe: it is gone or done with us
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(usage.ru_utime + usage.ru_stime) + cpu_seconds + 1
        if cpu_hard == resource.RLIM_INFINITY or soft <= cpu_hard:
            resource.setrlimit(resource.RLIMIT_CPU, (soft, cpu_hard))
        try:
            reply = _handle(templates, json.loads(data), memory_mb)
        except MemoryError:
            reply = {"refused": f"the template needs more than {memory_mb} MB of memory to render", "recycle": True}
        except Exception as exc:  # our bug: say so, and start afresh
            reply = {"error": f"{type(exc).__name__}: {exc}", "recycle": True}
        send(reply)
        if reply.get("recycle"):
            return


# -- the service side --------------------------------------------------------------

class _Worker:
    def __init__(self, proc: subprocess.Popen, green):
        self.proc, self.g = proc, green
        self.wfd, self.rfd = proc.stdin.fileno(), proc.stdout.fileno()
        for fd in (self.wfd, self.rfd):
            os.set_blocking(fd, False)
            try:  # a whole request or reply fits in the pipe: one wake-up each way, not one per 64 KiB
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            except (OSError, AttributeError):
                pass
        self.buf = bytearray(4096)  # grows to the largest reply yet
        self.dead = False

    @classmethod
    def start(cls, green, memory_mb: int, cpu_seconds: int) -> "_Worker":
        # -I: no PYTHON* variables, no user site; a bare environment: a sandbox escape
        # inside the worker finds no credentials in its own environment.
        proc = subprocess.Popen(
            [sys.executable, "-I", str(Path(__file__).resolve()), str(memory_mb), str(cpu_seconds)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
            env={"PATH": os.defpath, "LANG": "C.UTF-8"})
        worker = cls(proc, green)
        try:
            if worker.exchange(None, START_SECONDS) != {"ready": True}:
                raise RuntimeError("a template render worker answered nonsense at start")
        except (Late, Died) as exc:
            worker.kill()
            raise RuntimeError(f"a template render worker did not start ({type(exc).__name__})") from None
        except BaseException:
            worker.kill()
            raise
        return worker

    def exchange(self, data: bytes | None, seconds: float) -> dict:
        """Send ``data`` (None: send nothing) and wait for a reply at most ``seconds``."""
        g = self.g
        timer = g.Timeout(seconds)
        try:
            if data is not None:
                self._send(HEADER.pack(len(data)) + data)
            return self._receive()
        except g.Timeout as exc:
            if exc is not timer:
                raise
            self.kill()
            raise Late() from None
        except (BrokenPipeError, EOFError):
            self.kill()
            raise Died() from None
        finally:
            timer.cancel()

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.g.write(self.wfd, view):]
            except BlockingIOError:
                self.g.trampoline(self.wfd, write=True)

    def _receive(self) -> dict:
        """One reply. The worker writes nothing unasked: a read never runs into the next frame."""
        got, need, sized = 0, HEADER.size, False
        while True:
            if not sized and got >= HEADER.size:
                need, sized = HEADER.size + HEADER.unpack_from(self.buf)[0], True
                if need > len(self.buf):
                    self.buf.extend(bytes(need - len(self.buf)))  # the largest reply yet
            if sized and got >= need:
                break
            try:
                with memoryview(self.buf) as view:
                    n = self.g.readv(self.rfd, [view[got:]])
            except BlockingIOError:
                self.g.trampoline(self.rfd, read=True)
                continue
            if not n:
                raise EOFError
            got += n
        with memoryview(self.buf) as view:
            if view[HEADER.size] == ord("T"):
                return {"text": str(view[HEADER.size + 1:need], "utf-8", "surrogatepass")}
            return json.loads(bytes(view[HEADER.size + 1:need]))

    def kill(self) -> None:
        if self.dead:
            return
        self.dead = True
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        self.g.spawn_n(self._reap)

    def _reap(self) -> None:
        for _ in range(1000):  # a SIGKILLed process is gone within milliseconds
            if self.proc.poll() is not None:
                return
            self.g.sleep(0.01)


class _Green:
    """eventlet, imported only on the service side (the worker never needs it). readv/write
    are the unpatched os functions: the patched ones wait on their own, without our timer."""

    def __init__(self):
        import eventlet
        from eventlet import patcher
        from eventlet.hubs import trampoline

        os_ = patcher.original("os")
        self.Timeout, self.spawn_n, self.sleep = eventlet.Timeout, eventlet.spawn_n, eventlet.sleep
        self.trampoline, self.readv, self.write = trampoline, os_.readv, os_.write


class Pool:
    """At most ``size`` render workers. ``call`` raises ``Late`` or ``Died``."""

    def __init__(self, size: int, memory_mb: int, cpu_seconds: int):
        from eventlet.semaphore import Semaphore

        self.size, self.memory_mb, self.cpu_seconds = size, memory_mb, cpu_seconds
        self.g = _Green()
        self._slots = Semaphore(size)  # requests in flight
        self._idle: list[_Worker] = []
        self._live = 0  # idle + busy + starting

    def call(self, request: dict, seconds: float) -> dict:
        data = json.dumps(request).encode()  # TypeError: not plain data (our bug, not the template's)
        with self._slots:
            worker = self._take()
            try:
                reply = worker.exchange(data, seconds)
            except BaseException:
                self._lost(worker)
                raise
            if reply.get("recycle"):
                self._lost(worker)
            elif self._live > self.size:
                worker.kill()
                self._live -= 1
            else:
                self._idle.append(worker)
        if "error" in reply:
            raise RuntimeError(f"template render worker: {reply['error']}")
        return reply

    def warm(self) -> None:
        """Have one worker idle (start it if there is none and there is room)."""
        if self._idle or self._live >= self.size:
            return
        self._live += 1
        try:
            worker = _Worker.start(self.g, self.memory_mb, self.cpu_seconds)
        except BaseException:
            self._live -= 1
            raise
        self._idle.append(worker)

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._idle]

    def close(self) -> None:
        while self._idle:
            self._idle.pop().kill()
            self._live -= 1

    def _take(self) -> _Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.proc.poll() is None:
                return worker
            self._lost(worker)  # died while idle (OOM killer, an operator): not this template's doing
        self._live += 1
        try:
            return _Worker.start(self.g, self.memory_mb, self.cpu_seconds)
        except BaseException:
            self._live -= 1
            raise

    def _lost(self, worker: _Worker) -> None:
        worker.kill()
        self._live -= 1
        self.g.spawn_n(self._replace)

    def _replace(self) -> None:
        try:
            self.warm()  # so the next render does not wait for a cold start
        except Exception:
            pass  # the next render starts one itself, and reports why it cannot


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
