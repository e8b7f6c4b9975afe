"""Route groups of the gateway, one module per area of the API.

Each module defines a mixin class whose methods are ``@route`` entrypoints;
``gateway.service.GatewayService`` inherits them all (nameko collects
inherited entrypoints and dependencies), so areas can grow independently.
"""
