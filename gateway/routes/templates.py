"""Templates: the built-in ones and each application's own — listed, made, previewed,
changed, deleted (services/deploy/domain/catalog_templates.py).

Saving, changing and previewing render the template the same way: from sample values
(a preview's own ``values`` over the fields' defaults) under the app's workload policy.
A template that does not render is 422 ``invalid`` with the reason in words; one that
renders what the policy refuses is 422 ``policy_violation`` with ``{rule, object, path}``.
All but the list need ``templates.create`` in the app (maintainers and owners).
"""
from __future__ import annotations

from gateway.auth import authenticate, require_app_role
from gateway.routes.deploy_schemas import ANY_OBJ, FIELD_BODY, TAGS, TEMPLATE, TEMPLATE_VARIABLES
from gateway.schemas import LABEL, json_response, nullable, obj, page_of
from shared.web import read_object, route

KIND = {"type": "string", "enum": ["version", "ingress"]}
TEXT = {"type": "string", "maxLength": 65536, "description": TEMPLATE_VARIABLES}
FIELDS = nullable({"type": "array", "items": FIELD_BODY, "maxItems": 50})
PATH = "/api/v1/apps/<app>/templates/<name>"
PREVIEW = obj(["manifests", "values"],
              manifests={"type": "array", "items": ANY_OBJ,
                         "description": "the objects the template renders, in apply order; every value of "
                                        "a Secret is <redacted>"},
              values={**ANY_OBJ, "description": "the values the template saw: each field's default, with "
                                                "the given values over them"})


class TemplateRoutes:
    @route("GET", "/api/v1/templates", summary="Built-in templates and those of your applications", tags=TAGS,
           auth=True, responses=json_response(page_of(TEMPLATE)), errors=[401])
    def list_templates(self, request):
        caller = authenticate(self, request)
        apps, cursor = [], None
        for _ in range(20):  # at most 4,000 applications' templates
            found = self.org.list_apps(caller.id, caller.is_admin, 200, cursor)
            apps += [a["name"] for a in found["items"]]
            cursor = found.get("next_cursor")
            if not cursor:
                break
        return self.deploy.list_templates(apps)

    @route("POST", "/api/v1/apps/<app>/templates", summary="Add a template (refused unless it renders allowed "
           "objects from sample values)", tags=TAGS, auth=True,
           body=obj(["name", "kind", "body"], name=LABEL, kind=KIND, body=TEXT, fields=FIELDS),
           responses=json_response(TEMPLATE, 201, "Created"), errors=[400, 401, 403, 404, 409, 422])
    def create_template(self, request, app):
        caller, _ = require_app_role(self, request, app, "templates.create")
        return 201, self.deploy.create_template(app, read_object(request), caller.actor, caller.source_ip)

    @route("POST", "/api/v1/apps/<app>/templates/preview", summary="What a template renders from sample values, "
           "checked as a save checks it (nothing is stored)", tags=TAGS, auth=True,
           body=obj(["kind", "body"], kind=KIND, body=TEXT, fields=FIELDS,
                    values=nullable({**ANY_OBJ, "description": "values of the fields to render with (their "
                                                               "defaults otherwise)"})),
           responses=json_response(PREVIEW), errors=[400, 401, 403, 404, 422])
    def preview_template(self, request, app):
        require_app_role(self, request, app, "templates.create")
        return self.deploy.preview_template(app, read_object(request))

    @route("PUT", PATH, summary="Change a template of the application (checked as when it was added; refused "
           "while a version or ingress using it would not fit)", tags=TAGS, auth=True,
           body=obj(["kind", "body"], name=LABEL, kind=KIND, body=TEXT, fields=FIELDS),
           responses=json_response(TEMPLATE), errors=[400, 401, 403, 404, 409, 422])
    def update_template(self, request, app, name):
        caller, _ = require_app_role(self, request, app, "templates.create")
        return self.deploy.update_template(app, name, read_object(request), caller.actor, caller.source_ip)

    @route("DELETE", PATH, summary="Delete a template of the application (refused while a version or ingress "
           "uses it)", tags=TAGS, auth=True, responses={204: {"description": "Deleted"}},
           errors=[401, 403, 404, 409, 422])
    def delete_template(self, request, app, name):
        caller, _ = require_app_role(self, request, app, "templates.create")
        self.deploy.delete_template(app, name, caller.actor, caller.source_ip)
        return 204, None
