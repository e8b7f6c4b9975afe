"""Running kubectl, the independent client: the one implementation the test modules share.

kubectl is a client nobody on this project wrote, so what it accepts and answers is what
an admin or a CI job would get. Every suite runs it through ``kubectl()`` here:

* whom it talks to: ``kubeconfig=`` (a path), or ``server=`` and ``token=`` (with
  ``certificate_authority=``, else TLS is not verified) — a kubeconfig-less call such as
  ``kubectl("kustomize", path)`` passes neither;
* ``stdin=``: text, or an object sent as JSON (``apply -f -``);
* ``check=True``: a non-zero exit fails the test (``KubectlFailed``, an AssertionError)
  with what kubectl said; otherwise the caller reads ``returncode`` itself;
* ``timeout=`` (seconds, for the process) and ``request_timeout=`` (kubectl's own
  ``--request-timeout``, e.g. ``"20s"``); ``cache_dir=`` for the discovery cache.

``kubectl_json`` adds ``-o json`` and parses the answer (None when kubectl failed or
printed nothing, e.g. ``--ignore-not-found``). A suite binds what it always passes with
``functools.partial(kubectl, kubeconfig=..., check=True)``; a call's own keywords win.
"""
from __future__ import annotations

import functools
import json
import shutil
import subprocess
import uuid


class KubectlFailed(AssertionError):
    """kubectl exited non-zero while the caller asked for ``check=True``."""

    def __init__(self, args, proc: subprocess.CompletedProcess):
        self.proc = proc
        super().__init__(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def executable() -> str:
    exe = shutil.which("kubectl")
    assert exe, "kubectl must be installed (it is the independent client these tests rely on)"
    return exe


def kubectl(*args: str, kubeconfig: str | None = None, server: str | None = None, token: str | None = None,
            certificate_authority: str | None = None, cache_dir: str | None = None,
            request_timeout: str | None = None, stdin=None, check: bool = False,
            timeout: float = 60) -> subprocess.CompletedProcess:
    """``kubectl *args`` (see the module doc for the options); the finished process, text mode."""
    cmd = [executable()]
    if kubeconfig is not None:
        cmd += ["--kubeconfig", str(kubeconfig)]
    if server is not None:
        cmd += ["--server", server]
        cmd += [f"--certificate-authority={certificate_authority}"] if certificate_authority \
            else ["--insecure-skip-tls-verify=true"]
    if token is not None:
        cmd += ["--token", token]
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    if request_timeout is not None:
        cmd.append(f"--request-timeout={request_timeout}")
    if stdin is not None and not isinstance(stdin, str):
        stdin = json.dumps(stdin)
    proc = subprocess.run([*cmd, *map(str, args)], input=stdin, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise KubectlFailed(args, proc)
    return proc


def kubectl_json(*args: str, **options):
    """``kubectl *args -o json``, parsed; None when kubectl failed (unless ``check=True``,
    which fails the test instead) or printed nothing."""
    proc = kubectl(*args, "-o", "json", **options)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return json.loads(proc.stdout)


def on_cluster(info: dict, *args: str, stdin=None, timeout: float = 30) -> subprocess.CompletedProcess:
    """``kubectl *args`` against a cluster the tests registered (``info["kubeconfig"]``:
    its admin kubeconfig, a client independent of MAE)."""
    return kubectl(*args, kubeconfig=info["kubeconfig"], stdin=stdin, timeout=timeout)


def kubectl_for(kubeconfig: str, tmp_path) -> "functools.partial":
    """The ``kubectl`` fixture of a cluster suite: ``kubectl(*args, timeout=60, check=True, stdin=None)``
    with that kubeconfig and a per-test discovery cache."""
    return functools.partial(kubectl, kubeconfig=kubeconfig, cache_dir=tmp_path / "kube-cache", check=True)


def fresh_namespace(core, prefix: str, hex_chars: int):
    """The body of a ``ns`` fixture: create ``prefix`` + random hex, yield its name, delete it
    afterwards (the cluster's namespace controller cleans up what is in it)."""
    from kubernetes import client

    name = prefix + uuid.uuid4().hex[:hex_chars]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException:
        pass
