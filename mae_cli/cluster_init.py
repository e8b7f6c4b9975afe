"""``mae cluster init --kubeconfig FILE --name N --env test|prod``: prepare a cluster for MAE
with its admin's kubeconfig and register it, in one step and safely repeatable.

1. Applies MAE's access as it ships — ``k8s/operator/mke-rbac.yaml``, the one source of the
   deployer's least-privilege set (namespace ``mae-system``, ServiceAccount ``mae-deployer``,
   its ClusterRole and binding, the ValidatingAdmissionPolicy confining it, and its
   long-lived token Secret) — with the official kubernetes client: each object is created,
   or replaced where it differs from the file (labels and annotations others added are
   kept); the token Secret, once there, is left as the token controller filled it.
2. Waits for the token controller to fill that Secret. A cluster without one (the sandbox
   has none) gets a token from the TokenRequest API instead, valid ``--token-days``; if the
   cluster offers neither, it stops and says so.
3. Registers the cluster with MAE as the logged-in user (``POST /clusters``). Already
   registered: its credentials are replaced (``POST /clusters/{name}/credentials``, checked
   by MAE first) and a new report token is made (the old one works ten more minutes).
4. Keeps the report token in the Secret ``mae-system/mae-operator`` that
   ``k8s/operator/operator.yaml`` mounts, and prints it with the operator's command.
"""
from __future__ import annotations

import base64
import copy
import time
from contextlib import contextmanager
from pathlib import Path

import click
import yaml

from mae_cli.client import ApiError
from mae_cli.common import EXIT_ERROR, Ctx, command, emit, err, pass_ctx, q

ROOT = Path(__file__).resolve().parent.parent
RBAC = ROOT / "k8s" / "operator" / "mke-rbac.yaml"
OPERATOR_SECRET = "mae-operator"
TOKEN_TYPE = "kubernetes.io/service-account-token"


class InitFailed(click.ClickException):
    exit_code = EXIT_ERROR


def load_manifests(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def token_secret(manifests: list[dict]) -> dict:
    """The file's long-lived token Secret (its namespace, name and ServiceAccount)."""
    for m in manifests:
        if m["kind"] == "Secret" and m.get("type") == TOKEN_TYPE:
            return {"namespace": m["metadata"]["namespace"], "name": m["metadata"]["name"],
                    "account": m["metadata"]["annotations"]["kubernetes.io/service-account.name"]}
    raise InitFailed("The RBAC file has no service-account-token Secret for MAE's deployer.")


def contains(live, wanted) -> bool:
    """Whether ``live`` holds everything ``wanted`` says (what the server adds is ignored)."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(contains(live.get(k), v) for k, v in wanted.items())
    return live == wanted


def ensure(dyn, manifest: dict) -> str:
    """Create the object, or replace it where it differs: ``created``/``updated``/``unchanged``/``kept``."""
    from kubernetes.dynamic.exceptions import NotFoundError

    resource = dyn.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
    meta = manifest["metadata"]
    namespace = meta.get("namespace")
    try:
        live = resource.get(name=meta["name"], namespace=namespace).to_dict()
    except NotFoundError:
        resource.create(body=manifest, namespace=namespace)
        return "created"
    if manifest.get("type") == TOKEN_TYPE:
        return "kept"  # the token controller's data stays as it is
    if contains(live, manifest):
        return "unchanged"
    body = copy.deepcopy(manifest)
    live_meta = live.get("metadata") or {}
    for key in ("labels", "annotations"):
        body["metadata"][key] = {**(live_meta.get(key) or {}), **(meta.get(key) or {})}
    body["metadata"]["resourceVersion"] = live_meta.get("resourceVersion")
    resource.replace(body=body, namespace=namespace)
    return "updated"


def wait_for_token(core, secret: dict, timeout: float) -> str | None:
    from kubernetes.client.exceptions import ApiException

    deadline = time.monotonic() + timeout
    while True:
        try:
            data = core.read_namespaced_secret(secret["name"], secret["namespace"]).data or {}
        except ApiException as exc:
            if exc.status != 404:
                raise
            data = {}
        if data.get("token"):
            return base64.b64decode(data["token"]).decode()
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)


def mint_token(core, secret: dict, days: int) -> str:
    """A token from the TokenRequest API, valid ``days`` (the API server may cap it)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=days * 86400))
    try:
        answer = core.create_namespaced_service_account_token(secret["account"], secret["namespace"], request)
    except ApiException as exc:
        raise InitFailed(
            f"The cluster did not fill the token Secret {secret['namespace']}/{secret['name']} (no token "
            f"controller?) and refused a TokenRequest for {secret['account']} (HTTP {exc.status} {exc.reason}). "
            f"Give MAE a token by hand: mae clusters rotate-credentials.")
    return answer.status.token


def keep_report_token(core, namespace: str, token: str) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    body = client.V1Secret(metadata=client.V1ObjectMeta(name=OPERATOR_SECRET, namespace=namespace,
                                                        labels={"app.kubernetes.io/part-of": "mae"}),
                           string_data={"report-token": token}, type="Opaque")
    try:
        core.create_namespaced_secret(namespace, body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        core.replace_namespaced_secret(OPERATOR_SECRET, namespace, body)


def register(api, name: str, env: str, server: str, ca_cert: str, token: str) -> tuple[str, str]:
    """Register with MAE, or (registered already) replace its credentials and make a new report
    token. Returns the report token and what was done."""
    try:
        answer = api.post("/clusters", {"name": name, "env": env, "server": server, "ca_cert": ca_cert,
                                        "token": token})
        return answer["report_token"], "registered"
    except ApiError as exc:
        if exc.status != 409:
            raise
    existing = api.get(f"/clusters/{q(name)}")
    if existing.get("env") != env:
        raise InitFailed(f"Cluster {name} is registered with env {existing.get('env')}, not {env}; "
                         f"delete it first to change its environment.")
    api.post(f"/clusters/{q(name)}/credentials", {"server": server, "ca_cert": ca_cert, "token": token})
    return api.post(f"/clusters/{q(name)}/report-token")["report_token"], "credentials replaced"


@contextmanager
def cluster_errors(host: str):
    """The cluster's refusals and silence as one clear line, not a traceback."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as exc:
        raise InitFailed(f"The cluster at {host} refused: HTTP {exc.status} {exc.reason} {(exc.body or '')[:300]}")
    except HTTPError as exc:
        raise InitFailed(f"The cluster at {host} did not answer: {exc}")


@click.group("cluster")
def cluster():
    """Prepare a cluster for MAE."""


@command(cluster, "init")
@click.option("--kubeconfig", "kubeconfig", type=click.Path(exists=True, dir_okay=False), required=True,
              help="A kubeconfig with admin access to the cluster.")
@click.option("--context", "context", help="The kubeconfig's context (default: its current one).")
@click.option("--name", required=True, help="The cluster's name in MAE (an RFC 1123 label).")
@click.option("--env", "env", type=click.Choice(["test", "prod"]), required=True)
@click.option("--server", help="The API server's URL as MAE reaches it (default: the kubeconfig's).")
@click.option("--rbac", "rbac", type=click.Path(exists=True, dir_okay=False), default=str(RBAC),
              show_default=True, help="MAE's access to apply.")
@click.option("--token-timeout", default=60.0, show_default=True,
              help="Seconds to wait for the token controller to fill the token Secret.")
@click.option("--token-days", default=365, show_default=True,
              help="Validity of a token from the TokenRequest API, when the cluster fills no Secret.")
@pass_ctx
def init(ctx: Ctx, kubeconfig, context, name, env, server, rbac, token_timeout, token_days):
    """Create MAE's service account, least-privilege RBAC and token on a cluster, and register it."""
    from kubernetes import client, config
    from kubernetes.dynamic import DynamicClient

    me = ctx.client.get("/me")  # before touching the cluster: only admins register clusters
    if not me.get("is_admin"):
        raise InitFailed(f"Only a platform administrator may register clusters ({me.get('username')} is not one).")
    settings = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=settings)
    if not settings.ssl_ca_cert:
        raise InitFailed("The kubeconfig names no certificate authority for the cluster; MAE needs its CA.")
    ca_cert = Path(settings.ssl_ca_cert).read_text()
    api_client = client.ApiClient(settings)
    manifests = load_manifests(Path(rbac))
    secret = token_secret(manifests)
    core = client.CoreV1Api(api_client)
    with cluster_errors(settings.host):
        objects = [{"kind": m["kind"], "name": m["metadata"]["name"], "done": ensure(DynamicClient(api_client), m)}
                   for m in manifests]
        for o in objects:
            err.print(f"{o['kind']}/{o['name']}: {o['done']}", markup=False)
        token, token_source = wait_for_token(core, secret, token_timeout), "secret"
        if token is None:
            token, token_source = mint_token(core, secret, token_days), f"token-request ({token_days} days)"
            err.print(f"The cluster did not fill {secret['namespace']}/{secret['name']}: using a TokenRequest "
                      f"token valid {token_days} days instead; renew it with `mae cluster init` before then.",
                      markup=False)
    report_token, done = register(ctx.client, name, env, (server or settings.host).rstrip("/"), ca_cert, token)
    with cluster_errors(settings.host):
        keep_report_token(core, secret["namespace"], report_token)
    mae_url = ctx.client.settings.url
    operator = (f"python -m mae_operator --cluster {name} --kubeconfig {kubeconfig} --mae-url {mae_url} "
                f"--report-token-file <file holding the report token>")
    emit({"name": name, "env": env, "done": done, "objects": objects, "token_source": token_source,
          "report_token": report_token, "operator_secret": f"{secret['namespace']}/{OPERATOR_SECRET}",
          "operator_command": operator},
         text=(f"Cluster {name} ({env}): {done}.\nReport token: {report_token}\n"
               f"It is kept in the Secret {secret['namespace']}/{OPERATOR_SECRET} that "
               f"k8s/operator/operator.yaml mounts. Start the operator in the cluster:\n"
               f"  kubectl apply -f k8s/operator/operator.yaml   # CLUSTER_NAME={name}, MAE_URL={mae_url}\n"
               f"or beside it:\n  {operator}"))

