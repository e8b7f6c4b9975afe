"""A small, real OAuth2 authorization server for this machine.

MAE logs people in through their team's OAuth2/OIDC server. On a developer's
machine (``make up``) and in the tests there is none, so this package serves
one: authorization-code grant with PKCE required, confidential clients
(client_secret_post or HTTP Basic), single-use codes bound to their client and
redirect URI, bearer access tokens and a ``/userinfo`` endpoint. The protocol
work is oauthlib's ``WebApplicationServer``; only storage is ours (memory).

There are no passwords: the login page asks who you are. It is a development
and test stand-in for the team's server, never something to expose.
"""
