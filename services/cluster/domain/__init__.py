"""Domain logic of the cluster service: clusters, their credentials, apply results and operator reports.

Plain Python with no nameko inside, so it can be unit-tested without I/O; what talks to
a cluster is in ``services/cluster/mke`` (handed in as a client).
"""
