"""The server service's domain: inventory rules, cloud providers, sync and expiry reminders.

Plain functions over a SQLAlchemy session; nothing here knows about nameko.
"""
