"""MKE — MAE's Kubernetes engine, the part of the cluster service that talks to clusters.

Plain Python, no nameko inside, except ``clients`` (the service's dependency that
keeps one client per cluster):

* ``kinds``   — which kinds MAE applies, where they live in the API, in which order;
* ``diff``    — does the live object already have what we want? (pure, unit-tested);
* ``client``  — one ``ClusterClient`` per cluster (official kubernetes client, a
  timeout on every call, bounded retries through ``shared.retry``);
* ``engine``  — ``apply`` / ``delete`` of a list of manifests, reporting through the
  callback interface: ``done(result)`` / ``log(level, line)`` / ``delete(result)``.
"""
from services.cluster.mke.client import ClusterClient, ClusterError  # noqa: F401
from services.cluster.mke.engine import Callback, apply, delete  # noqa: F401
