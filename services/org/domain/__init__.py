"""Domain logic of the org service: applications, their members and roles.

Plain Python with no nameko inside, so it can be unit-tested without I/O.
"""
