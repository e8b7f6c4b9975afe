"""Domain logic of the auth service: users, OAuth identities, sessions, personal access tokens and the blacklist.

Plain Python with no nameko inside, so it can be unit-tested without I/O.
"""
