"""Domain logic of the server service: the server inventory, cloud accounts and expiry reminders.

Plain Python with no nameko inside, so it can be unit-tested without I/O.
"""
