"""A small shell for ``pods/exec``, run inside a ``container.Container``.

``run(box, argv, stdin)`` runs one command line as the container runtime would exec it: a missing
executable is an ``ExecFailed`` with the OCI runtime's words; ``sh -c SCRIPT`` runs a script of
``;``, newline, ``&&``, ``||`` and ``|`` separated commands with quoting, ``$VAR`` / ``$?``
expansion and the redirections ``>``, ``>>``, ``2>&1``, ``>&2``.  Commands: ``echo``, ``env``,
``printenv``, ``cat``, ``grep``, ``head``, ``ls``, ``hostname``, ``pwd``, ``cd``, ``id``, ``true``,
``false``, ``test -d|-f|-e``, ``tar cf -`` / ``tar xf -`` (for ``kubectl cp``), ``export``,
``VAR=value``, ``exit N``; anything else is ``sh: X: not found`` with exit code 127, as busybox's
sh says it.
"""
from __future__ import annotations

import posixpath
import re

from .container import PATH, Container

EXECUTABLES = {"echo", "env", "printenv", "cat", "grep", "head", "ls", "hostname", "pwd", "id", "true", "false",
               "test", "tar", "sh", "bash"}
SHELLS = {"sh", "bash", "ash"}


class ExecFailed(Exception):
    """The runtime could not start the process (the message is what containerd/runc report)."""


def run(box: Container, argv: list[str], stdin: bytes = b"") -> tuple[bytes, bytes, int]:
    """Exec ``argv`` as the runtime would: (stdout, stderr, exit code), or ``ExecFailed``."""
    name = posixpath.basename(argv[0]) if argv else ""
    if name not in EXECUTABLES or ("/" in argv[0] and posixpath.dirname(argv[0]) not in PATH.split(":")):
        where = "no such file or directory" if "/" in argv[0] else "executable file not found in $PATH"
        raise ExecFailed(f'exec: "{argv[0]}": {where}')
    return Shell(box).command(argv, stdin)


def interactive(argv: list[str]) -> bool:
    """``sh`` / ``bash`` without a script: a shell reading commands from stdin."""
    return bool(argv) and posixpath.basename(argv[0]) in SHELLS and (
        len(argv) == 1 or (len(argv) == 2 and argv[1] in ("-i", "-l", "-il")))


def reads_stdin(argv: list[str]) -> bool:
    """Whether the command reads its stdin (``cat`` without files, also inside ``sh -c``)."""
    if len(argv) >= 3 and posixpath.basename(argv[0]) in SHELLS and argv[1] == "-c":
        return any(_bare_cat(seg) for _, seg in split_commands(argv[2]))
    name = posixpath.basename(argv[0]) if argv else ""
    return (name == "cat" and all(a == "-" for a in argv[1:])) or (
        name == "tar" and "x" in argv[1] and argv[2:3] == ["-"] if len(argv) > 2 else False)


def _bare_cat(segment: str) -> bool:
    words = segment.split()
    return bool(words) and posixpath.basename(words[0]) == "cat" and all(w == "-" for w in words[1:])


def _redirections(argv: list[str]) -> tuple[list[str], list[tuple[str, str, str]]]:
    """``argv`` without its redirections, and those as ``(fd, ">"|">>", "&N"|path)``."""
    words, redirects, k = [], [], 0
    while k < len(argv):
        m = re.match(r"^(\d?)(>>|>)(.*)$", argv[k])
        if not m:
            words.append(argv[k])
        else:
            target = m.group(3)
            if not target and k + 1 < len(argv):
                k += 1
                target = argv[k]
            redirects.append((m.group(1) or "1", m.group(2), target))
        k += 1
    return words, redirects


def split_commands(script: str) -> list[tuple[str, str]]:
    """``[(operator before it, command text)]``, split on ``;``, newlines, ``&&``, ``||`` and ``|``
    outside quotes; comments dropped."""
    out, cur, op, i, quote = [], [], "", 0, ""
    while i < len(script):
        c = script[i]
        if quote:
            if c == "\\" and quote == '"' and i + 1 < len(script):
                cur.append(script[i:i + 2])
                i += 2
                continue
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "\\":
            cur.append(script[i:i + 2])
            i += 2
            continue
        elif c == "#" and (not cur or cur[-1][-1:] in " \t"):
            while i < len(script) and script[i] != "\n":
                i += 1
            continue
        elif c in ";\n|&":
            two = script[i:i + 2]
            nxt = two if two in ("&&", "||") else c if c != "&" else None
            if nxt:
                out.append((op, "".join(cur)))
                cur, op = [], ";" if nxt == "\n" else nxt
                i += len(nxt)
                continue
        cur.append(c)
        i += 1
    out.append((op, "".join(cur)))
    return [(o, s) for o, s in out if s.strip()]


class Shell:
    """One ``sh``: variables, working directory and ``$?`` live as long as it does."""

    def __init__(self, box: Container):
        self.box, self.vars, self.cwd, self.status = box, dict(box.env), "/", 0
        self.exited = False  # `exit N` ran: the shell is done, ``status`` is N

    def words(self, text: str) -> list[str]:
        words, word, i, quote = [], None, 0, ""
        while i < len(text):
            c = text[i]
            if quote == "'":
                if c == "'":
                    quote = ""
                else:
                    word += c
            elif c == "\\" and i + 1 < len(text) and (not quote or text[i + 1] in '"\\$`'):
                word = (word or "") + text[i + 1]
                i += 1
            elif c == "$" and i + 1 < len(text):
                m = re.match(r"\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*)|([?$#0])", text[i + 1:])
                if m:
                    key = next(g for g in m.groups() if g is not None)
                    value = {"?": str(self.status), "$": "1", "#": "0", "0": "sh"}.get(key, self.vars.get(key, ""))
                    word = (word or "") + value
                    i += m.end() + 1
                    continue
                word = (word or "") + c
            elif c in "'\"" and not quote:
                quote, word = c, word or ""
            elif c == '"' and quote == '"':
                quote = ""
            elif c in " \t" and not quote:
                if word is not None:
                    words.append(word)
                word = None
            else:
                word = (word or "") + c
            i += 1
        if quote:
            raise SyntaxError("unterminated quoted string")
        if word is not None:
            words.append(word)
        return words

    def script(self, text: str, stdin: bytes = b"") -> tuple[bytes, bytes, int]:
        """Run ``text`` as ``sh -c`` does, up to the end or an ``exit``."""
        out, err, piped = [], [], None
        parsed = split_commands(text)
        for k, (op, segment) in enumerate(parsed):
            if self.exited:
                break
            if (op == "&&" and self.status != 0) or (op == "||" and self.status == 0):
                continue
            try:
                argv = self.words(segment)  # expanded now: `$?` is the status of the command before
            except SyntaxError as exc:
                return b"".join(out), b"".join(err) + f"sh: syntax error: {exc}\n".encode(), 2
            o, e, self.status = self.command(argv, piped if op == "|" and piped is not None else stdin)
            err.append(e)
            if k + 1 < len(parsed) and parsed[k + 1][0] == "|":
                piped = o
            else:
                out.append(o)
                piped = None
        return b"".join(out), b"".join(err), self.status

    def command(self, argv: list[str], stdin: bytes) -> tuple[bytes, bytes, int]:
        while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
            k, v = argv[0].split("=", 1)
            self.vars[k] = v
            argv = argv[1:]
        if not argv:
            return b"", b"", 0
        argv, redirects = _redirections(argv)
        if not argv:
            return self._route(redirects, b"", b"", 0)
        name, args = posixpath.basename(argv[0]), argv[1:]
        if name in SHELLS and args[:1] == ["-c"]:
            o, e, code = Shell(self.box).script(args[1], stdin) if len(args) > 1 else (
                b"", b"sh: -c requires an argument\n", 2)
        elif name in EXECUTABLES | {"exit", "export", "cd"}:
            o, e, code = getattr(self, "cmd_" + name)(args, stdin)
        else:
            o, e, code = b"", f"sh: {argv[0]}: not found\n".encode(), 127
        return self._route(redirects, o, e, code)

    def _route(self, redirects, out: bytes, err: bytes, code: int) -> tuple[bytes, bytes, int]:
        """Apply ``>``, ``>>``, ``2>&1``, ``>&2``: files are written to this exec's memory only."""
        dest: dict[str, object] = {"1": "1", "2": "2"}
        for fd, op, target in redirects:
            dest[fd] = dest.get(target[1:], target[1:]) if target.startswith("&") else (op, self.path(target))
        parts = {"1": [], "2": []}
        for fd, data in (("1", out), ("2", err)):
            d = dest.get(fd, fd)
            if isinstance(d, tuple):
                if d[1] != "/dev/null":
                    old = self.box.files.get(d[1], b"") if d[0] == ">>" else b""
                    self.box.write(d[1], old + data)
            else:
                parts[d].append(data)
        return b"".join(parts["1"]), b"".join(parts["2"]), code

    def path(self, p: str) -> str:
        return posixpath.normpath(posixpath.join(self.cwd, p))

    # ---------------------------------------------------------------- commands
    def cmd_echo(self, args, stdin):
        newline = True
        if args[:1] == ["-n"]:
            newline, args = False, args[1:]
        return (" ".join(args) + ("\n" if newline else "")).encode(), b"", 0

    def cmd_env(self, args, stdin):
        return "".join(f"{k}={v}\n" for k, v in self.vars.items()).encode(), b"", 0

    def cmd_printenv(self, args, stdin):
        if not args:
            return self.cmd_env(args, stdin)
        found = [self.vars[a] for a in args if a in self.vars]
        return "".join(v + "\n" for v in found).encode(), b"", 0 if len(found) == len(args) else 1

    def cmd_cat(self, args, stdin):
        out, err = [], []
        for a in args or ["-"]:
            p = self.path(a)
            if a == "-":
                out.append(stdin)
            elif p in self.box.files:
                out.append(self.box.files[p])
            elif p in self.box.dirs:
                err.append(f"cat: read error: Is a directory\n")
            else:
                err.append(f"cat: can't open '{a}': No such file or directory\n")
        return b"".join(out), "".join(err).encode(), 1 if err else 0

    def cmd_ls(self, args, stdin):
        show_all = any(a.startswith("-") and "a" in a for a in args)
        paths = [a for a in args if not a.startswith("-")] or ["."]
        out, err = [], []
        for a in paths:
            p = self.path(a)
            if p in self.box.files:
                out.append(a + "\n")
            elif p in self.box.dirs:
                names = ([".", ".."] if show_all else []) + self.box.listing(p)
                head = f"{a}:\n" if len(paths) > 1 else ""
                out.append(head + "".join(n + "\n" for n in names if show_all or not n.startswith(".")))
            else:
                err.append(f"ls: {a}: No such file or directory\n")
        return "".join(out).encode(), "".join(err).encode(), 1 if err else 0

    def cmd_hostname(self, args, stdin):
        return (self.box.hostname + "\n").encode(), b"", 0

    def cmd_pwd(self, args, stdin):
        return (self.cwd + "\n").encode(), b"", 0

    def cmd_cd(self, args, stdin):
        p = self.path(args[0] if args else self.vars.get("HOME", "/"))
        if p not in self.box.dirs:
            return b"", f"sh: cd: can't cd to {args[0]}: No such file or directory\n".encode(), 2
        self.cwd = p
        return b"", b"", 0

    def cmd_id(self, args, stdin):
        sc = {**((self.box.pod.get("spec") or {}).get("securityContext") or {}),
              **(self.box.spec.get("securityContext") or {})}
        uid, gid = sc.get("runAsUser", 0), sc.get("runAsGroup", sc.get("runAsUser", 0))
        uname, gname = ("root" if uid == 0 else str(uid)), ("root" if gid == 0 else str(gid))
        return f"uid={uid}({uname}) gid={gid}({gname}) groups={gid}({gname})\n".encode(), b"", 0

    def cmd_grep(self, args, stdin):
        flags = "".join(a[1:] for a in args if a.startswith("-") and len(a) > 1)
        rest = [a for a in args if not a.startswith("-") or len(a) == 1]
        if not rest:
            return b"", b"Usage: grep [-ivqc] PATTERN [FILE]...\n", 2
        pattern = re.compile(rest[0], re.I if "i" in flags else 0)
        text = self.cmd_cat(rest[1:], stdin) if rest[1:] else (stdin, b"", 0)
        hits = [ln for ln in text[0].decode(errors="replace").splitlines(True)
                if bool(pattern.search(ln)) != ("v" in flags)]
        shown = "" if "q" in flags else f"{len(hits)}\n" if "c" in flags else "".join(hits)
        return shown.encode(), text[1], 0 if hits else 1

    def cmd_head(self, args, stdin):
        n = int(args[args.index("-n") + 1]) if "-n" in args[:-1] else 10
        files = [a for k, a in enumerate(args) if not a.startswith("-") and (k == 0 or args[k - 1] != "-n")]
        o, e, code = self.cmd_cat(files, stdin)
        return b"".join(o.splitlines(True)[:n]), e, code

    def cmd_test(self, args, stdin):
        """Only the file tests (``kubectl cp`` asks ``test -d DEST``)."""
        if len(args) == 2 and args[0] in ("-d", "-f", "-e"):
            p = self.path(args[1])
            ok = {"-d": p in self.box.dirs, "-f": p in self.box.files}.get(
                args[0], p in self.box.dirs or p in self.box.files)
            return b"", b"", 0 if ok else 1
        return b"", b"sh: test: unsupported expression\n", 2

    def cmd_tar(self, args, stdin):
        """``tar cf - PATH...`` and ``tar xf - [-C DIR]`` (what ``kubectl cp`` runs)."""
        mode, rest = (args[0].lstrip("-") if args else ""), args[1:]
        if rest[:1] != ["-"] or not ({"c", "x"} & set(mode)) or "f" not in mode:
            return b"", b"tar: only 'tar cf - PATH...' and 'tar xf - [-C DIR]' are simulated\n", 2
        if "c" in mode:
            return self.box.tar([(a, self.path(a)) for a in rest[1:]])
        target = self.path(rest[rest.index("-C") + 1]) if "-C" in rest[:-1] else self.cwd
        return self.box.untar(stdin, target)

    def cmd_true(self, args, stdin):
        return b"", b"", 0

    def cmd_false(self, args, stdin):
        return b"", b"", 1

    def cmd_export(self, args, stdin):
        return self.command([a for a in args if "=" in a], stdin)

    def cmd_exit(self, args, stdin):
        if args and not re.match(r"^-?\d+$", args[0]):
            return b"", f"sh: exit: Illegal number: {args[0]}\n".encode(), 2
        self.exited = True
        return b"", b"", int(args[0]) & 0xFF if args else self.status

    def cmd_sh(self, args, stdin):
        return Shell(self.box).script(stdin.decode(errors="replace"))

    cmd_bash = cmd_sh
