"""The deploy service's entrypoints for an application's own templates beyond listing and
making one (mixed into ``DeployService``; nameko finds inherited entrypoints): a preview
as the console's editor shows it while a person types, a change, a delete. Thin: the
checks are ``domain/catalog_templates.py``."""
from __future__ import annotations

from services.deploy.domain import catalog, catalog_templates
from shared.service import rpc


class TemplateEntrypoints:
    """Uses the service's ``db`` and ``DeployHelpers`` (``_policy``, ``_audit``)."""

    @rpc
    def preview_template(self, app, data):
        """``{"manifests", "values"}`` — rendered exactly as a save renders it (sample values,
        the app's workload policy), Secret values redacted; nothing is stored."""
        return catalog_templates.preview(app, data, self._policy(app))

    @rpc
    def update_template(self, app, name, data, actor, source_ip=None):
        template, changed = catalog_templates.update(self.db, app, name, data, self._policy(app))
        self._audit(actor, "template_updated", f"app:{app}/template:{name}",
                    {"kind": template.kind, "changed": changed}, source_ip)
        return catalog.template_dict(template)

    @rpc
    def delete_template(self, app, name, actor, source_ip=None):
        kind = catalog_templates.delete(self.db, app, name)
        self._audit(actor, "template_deleted", f"app:{app}/template:{name}", {"kind": kind}, source_ip)
