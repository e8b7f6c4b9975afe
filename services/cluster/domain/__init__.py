"""Domain logic of the cluster service: clusters, their credentials, apply results and operator reports (MKE).

Plain Python with no nameko inside, so it can be unit-tested without I/O.
"""
