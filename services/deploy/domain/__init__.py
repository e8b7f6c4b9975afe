"""Domain logic of the deploy service: services, versions, ingresses, templates, deploy records and their logs.

Plain Python with no nameko inside, so it can be unit-tested without I/O.
"""
