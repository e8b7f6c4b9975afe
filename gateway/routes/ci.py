"""CI hand-off: link a service to its CI repository, builds, and the CI's webhook."""
from __future__ import annotations

from gateway.auth import require_app_role
from gateway.schemas import json_response, obj
from shared.errors import BadRequest
from shared.web import read_object, route

TAGS = ["ci"]
STR = {"type": "string"}
LINK = obj(["provider", "server", "repo", "image"], provider={"type": "string", "enum": ["drone"]},
           server=STR, repo=STR, image=STR, auto_deploy_env={"type": ["string", "null"], "enum": ["test", "prod", None]})
BUILD = obj(["number", "status", "ref"], number={"type": "integer"}, status=STR, event=STR, ref=STR,
            tag={"type": ["string", "null"]}, link=STR, commit=STR, message=STR,
            created_at={"type": ["string", "null"]})


class CIRoutes:
    @route("PUT", "/api/v1/apps/<app>/services/<svc>/ci", summary="Link a service to a CI repository",
           tags=TAGS, auth=True,
           body=obj(["provider", "server", "repo", "token", "image"], provider={"type": "string", "enum": ["drone"]},
                    server=STR, repo=STR, token=STR, image=STR, webhook_secret=STR,
                    auto_deploy_env={"type": ["string", "null"], "enum": ["test", "prod", None]}),
           responses=json_response(LINK), errors=[400, 401, 403, 404, 422])
    def link_ci(self, request, app, svc):
        caller, _ = require_app_role(self, request, app, "ci.link")
        return self.deploy.link_ci(app, svc, read_object(request), caller.actor, caller.source_ip)

    @route("GET", "/api/v1/apps/<app>/services/<svc>/builds", summary="Recent builds of the linked repository",
           tags=TAGS, auth=True, responses=json_response(obj(["items"], items={"type": "array", "items": BUILD})),
           errors=[400, 401, 404, 422, 503])
    def list_builds(self, request, app, svc):
        require_app_role(self, request, app, "ci.builds")
        return self.deploy.list_builds(app, svc)

    @route("POST", "/api/v1/apps/<app>/services/<svc>/builds", summary="Ask the CI to build a ref (a branch)",
           tags=TAGS, auth=True, body=obj(["ref"], ref=STR),
           responses=json_response(BUILD, 202, "Accepted"), errors=[400, 401, 403, 404, 422, 503])
    def trigger_build(self, request, app, svc):
        require_app_role(self, request, app, "ci.build")
        return 202, self.deploy.trigger_build(app, svc, read_object(request).get("ref"))

    @route("POST", "/api/v1/hooks/ci/<provider>", summary="CI webhook (signature checked)", tags=TAGS,
           responses=json_response(obj(["result"], result=STR), 202, "Accepted"), errors=[400, 401, 404])
    def ci_webhook(self, request, provider):
        raw = request.get_data(cache=True)
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("The webhook body is not UTF-8 JSON.")
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("date", "digest", "signature", "x-drone-event", "content-type")}
        return 202, self.deploy.ci_webhook(provider, headers, body, request.path)
