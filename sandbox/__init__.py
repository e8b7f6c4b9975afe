"""MAE's sandbox Kubernetes cluster: the real Kubernetes HTTP API over HTTPS, with
simulated Deployment/ReplicaSet controllers and a kubelet (in the spirit of kwok).

Run one with ``python -m sandbox --name NAME --port PORT --state-dir DIR``; from tests use
:func:`sandbox.testing.start_sandbox`.  See README.md in this directory.
"""
