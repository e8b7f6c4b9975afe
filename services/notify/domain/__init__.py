"""The notify service's domain (the seed design calls it MUMS, its message service): channels, what events they hear, how each
kind of target is signed and rendered, and deliveries with bounded retries.

Plain functions; nothing here knows about nameko.
"""
