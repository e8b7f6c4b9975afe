// Applications the caller can see, and a form to create one.
import { api, listAll } from "../api.js";
import { enc, h, link, replace } from "../dom.js";
import { timeEl } from "../dates.js";
import { t } from "../i18n.js";
import { emptyState } from "../ui.js";

export async function render(view, _params, ctx) {
  const apps = await listAll("/apps");
  const name = h("input", { name: "name", required: true, pattern: "[a-z0-9]([-a-z0-9]*[a-z0-9])?", maxlength: 63,
                            placeholder: "my-app", "data-test": "new-app-name" });
  const display = h("input", { name: "display_name", maxlength: 128, placeholder: t("apps.display_name"), "data-test": "new-app-display" });
  const form = h("form", {
    class: "inline",
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const created = await api("POST", "/apps", { name: name.value.trim(), display_name: display.value.trim() || undefined });
        ctx.flash(t("apps.created", { name: created.name }), "ok");
        location.hash = "#/apps/" + enc(created.name);
      } catch (err) {
        ctx.flash(ctx.errorText(err));
      }
    },
  }, name, display, h("button", { type: "submit", class: "primary", "data-test": "new-app-submit" }, t("apps.create")));

  const rows = apps.map((a) => h("tr", { "data-test": "app-row", "data-name": a.name },
    h("td", null, link("/apps/" + enc(a.name), a.name)),
    h("td", { class: "wrap" }, a.display_name || ""),
    h("td", null, a.role ? t("role." + a.role) : ""),
    h("td", null, a.created_by || ""),
    h("td", null, timeEl(a.created_at))));
  replace(view,
    h("h1", null, t("apps.title")),
    h("section", { class: "card" }, h("h2", null, t("apps.new")), form),
    apps.length
      ? h("table", { "data-test": "apps-table" },
          h("thead", null, h("tr", null, h("th", null, t("col.name")), h("th", null, t("col.display_name")),
            h("th", null, t("col.role")), h("th", null, t("col.created_by")), h("th", null, t("col.created_at")))),
          h("tbody", null, rows))
      : emptyState("apps-empty", t("apps.none"), t("apps.create_first"), () => name.focus()));
}
