"""MKE — MAE's Kubernetes engine: plain Python, no nameko inside.

* ``kinds``   — which kinds MAE applies, where they live in the API, in which order;
* ``diff``    — does the live object already have what we want? (pure, unit-tested);
* ``client``  — one ``ClusterClient`` per cluster (official kubernetes client, a
  timeout on every call, bounded retries through ``shared.retry``);
* ``engine``  — ``apply`` / ``delete`` of a list of manifests, reporting through the
  seed's callback interface (``done`` / ``log`` / ``delete``).
"""
from services.cluster.mke.client import ClusterClient, ClusterError  # noqa: F401
from services.cluster.mke.engine import Callback, apply, delete  # noqa: F401
