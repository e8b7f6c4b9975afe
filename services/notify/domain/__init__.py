"""Domain logic of the notify service: notification channels, subscriptions and deliveries (MUMS).

Plain Python with no nameko inside, so it can be unit-tested without I/O.
"""
