"""CI hand-off: link a service to its CI repository, builds, and the CI's webhook."""
from __future__ import annotations

from gateway.auth import require_app_role
from gateway.schemas import json_response, obj
from shared.errors import BadRequest
from shared.web import read_object, route

TAGS = ["ci"]
STR = {"type": "string"}
LINK = obj(["id", "webhook_url", "provider", "server", "repo", "image"], id={"type": "integer"},
           webhook_url={"type": "string", "description": "where this link's CI posts its webhooks "
                                                         "(/api/v1/hooks/ci/{provider}/{link_id}); checked "
                                                         "against this link's secret only"},
           provider={"type": "string", "enum": ["drone"]}, app=STR, service=STR,
           server=STR, repo=STR, image=STR, auto_deploy_env={"type": ["string", "null"], "enum": ["test", "prod", None]},
           auto_route={"type": "boolean", "description": "after an automatic deploy succeeds, route the "
                                                         "service's traffic to the new version there"},
           updated_by=STR, updated_at={"type": ["string", "null"]})
HOOK_ANSWER = json_response(obj(["result"], result={"type": "string", "enum": ["recorded", "duplicate", "ignored"]}),
                            202, "Accepted")
BUILD = obj(["number", "status", "ref"], number={"type": "integer"}, status=STR, event=STR, ref=STR,
            tag={"type": ["string", "null"]}, link=STR, commit=STR, message=STR,
            created_at={"type": ["string", "null"]})


class CIRoutes:
    @route("PUT", "/api/v1/apps/<app>/services/<svc>/ci", summary="Link a service to a CI repository",
           tags=TAGS, auth=True,
           body=obj(["provider", "server", "repo", "token", "image"], provider={"type": "string", "enum": ["drone"]},
                    server=STR, repo=STR, token=STR, image=STR, webhook_secret=STR,
                    auto_deploy_env={"type": ["string", "null"], "enum": ["test", "prod", None]},
                    auto_route={"type": "boolean"}),
           responses=json_response(LINK), errors=[400, 401, 403, 404, 422])
    def link_ci(self, request, app, svc):
        caller, _ = require_app_role(self, request, app, "ci.link")
        return self.deploy.link_ci(app, svc, read_object(request), caller.actor, caller.source_ip)

    @route("GET", "/api/v1/apps/<app>/services/<svc>/ci", summary="The service's CI link (never its secrets)",
           tags=TAGS, auth=True, responses=json_response(LINK), errors=[401, 404])
    def get_ci_link(self, request, app, svc):
        require_app_role(self, request, app, "ci.get")
        return self.deploy.get_ci_link(app, svc)

    @route("DELETE", "/api/v1/apps/<app>/services/<svc>/ci", summary="Unlink a service from its CI repository",
           tags=TAGS, auth=True, responses={204: {"description": "Unlinked"}}, errors=[401, 403, 404])
    def unlink_ci(self, request, app, svc):
        caller, _ = require_app_role(self, request, app, "ci.link")
        self.deploy.unlink_ci(app, svc, caller.actor, caller.source_ip)
        return 204, None

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

    @route("POST", "/api/v1/hooks/ci/<provider>/<link_id>",
           summary="One CI link's webhook: checked against that link's secret only, acts for that link only",
           tags=TAGS, responses=HOOK_ANSWER, errors=[400, 401, 404])
    def ci_link_webhook(self, request, provider, link_id):
        # An unknown link, a link of another provider and a bad signature: one and the same 401.
        return 202, self.deploy.ci_webhook(provider, _signed_headers(request), _body(request), request.path,
                                           link_id=link_id)

    @route("POST", "/api/v1/hooks/ci/<provider>",
           summary="Retired shared CI webhook: 401, post to the link's webhook_url instead", tags=TAGS,
           responses=HOOK_ANSWER, errors=[400, 401, 404])
    def ci_webhook(self, request, provider):
        # Kept so a CI still configured with it is told where to post (docs/architecture.md);
        # it never acts: a repository slug in a body is no proof of which link the CI serves.
        return 202, self.deploy.ci_webhook(provider, _signed_headers(request), "", request.path)


def _body(request) -> str:
    try:
        return request.get_data(cache=True).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The webhook body is not UTF-8 JSON.")


def _signed_headers(request) -> dict:
    return {k: v for k, v in request.headers.items()
            if k.lower() in ("date", "digest", "signature", "x-drone-event", "content-type")}
