"""Tests against a REAL Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler) with "hollow nodes" playing the kubelet.

    from tests.realkube.controlplane import start_control_plane

    with start_control_plane(tmp_path / "kube", hollow_nodes=1, ready_delay=0.2) as kp:
        kp.url, kp.token, kp.ca_path, kp.kubeconfig_path
        kp.api_client()                     # a configured kubernetes.client.ApiClient

The binaries come from ``scripts/kube-bin.sh`` (``$KUBE_BIN``, or the shared archive beside the
repo).  See ``controlplane.py`` for the handle and ``hollow_node.py`` for the kubelet rules.
"""
