"""MAE's per-cluster operator: watches what MAE manages and reports it to MAE.

A plain watch loop on the official kubernetes client, threads not asyncio (see
docs/operator.md for why not kopf). Layers, each importing only the ones below:

* ``__main__`` — command line, wiring, signals;
* ``sender``   — batches reports and POSTs them until MAE answers 202 (backoff);
* ``watcher``  — list, then watch from the last resourceVersion; 410 → list again;
* ``state``    — the objects seen, which Deployment each belongs to, what changed;
* ``reports``  — pure: a Deployment and its ReplicaSets/Pods → one compact report.
"""
SELECTOR = "app.kubernetes.io/managed-by=mae"
