// Templates: the built-in ones and those of the caller's applications (#/templates), and
// one application's with an editor to add one (#/apps/{app}/templates). The API has no
// preview of a template: saving renders it with sample values, and a refusal is shown
// in full (a policy_violation names its rule, object and path).
import { api, listAll } from "../api.js";
import { enc, h, link, replace } from "../dom.js";
import { fmtTime, t } from "../i18n.js";
import { field } from "../ui.js";

export async function render(view, params, ctx) {
  const app = params.app;
  const all = await listAll("/templates");
  const shown = app ? all.filter((x) => x.builtin || x.app === app) : all;
  replace(view,
    h("p", { class: "crumbs" }, link("/apps", t("nav.apps")), " / ",
      app ? [link("/apps/" + enc(app), app), " / "] : null, t("tpl.title_short")),
    h("h1", null, app ? t("tpl.title_app", { app }) : t("tpl.title")),
    app ? h("p", null, link("/templates", t("tpl.all"))) : null,
    h("table", { "data-test": "templates" },
      h("thead", null, h("tr", null, ["col.name", "tpl.kind", "tpl.owner", "tpl.fields", "col.created_at"].map((k) => h("th", null, t(k))))),
      h("tbody", null, shown.map((x) => h("tr", { "data-test": "template-row", "data-name": x.name },
        h("td", { class: "mono" }, x.name),
        h("td", null, t("tpl.kind_" + x.kind, {}, x.kind)),
        h("td", null, x.builtin ? t("tpl.builtin") : link("/apps/" + enc(x.app) + "/templates", x.app || "")),
        h("td", { class: "mono small" }, (x.fields || []).map((f) => f.name + ":" + f.type).join(", ")),
        h("td", null, fmtTime(x.created_at)))))),
    app ? h("section", { class: "card" }, h("h2", null, t("tpl.new")), editor(app, all.filter((x) => x.builtin), ctx)) : null);
}

function refusalBox(err, ctx) {
  const d = err.details || {};
  return h("div", { class: "error-box", "data-test": "tpl-refusal" },
    h("p", null, ctx.errorText(err)),
    d.rule ? h("dl", null,
      [["tpl.rule", d.rule], ["tpl.object", d.object], ["tpl.path", d.path]].filter(([, v]) => v)
        .map(([k, v]) => [h("dt", null, t(k)), h("dd", { class: "mono", "data-test": "tpl-" + k.split(".")[1] }, String(v))])) : null);
}

function editor(app, builtins, ctx) {
  const name = h("input", { required: true, maxlength: 63, "data-test": "tpl-name" });
  const kind = h("select", { "data-test": "tpl-kind" }, ["version", "ingress"].map((k) => h("option", { value: k }, t("tpl.kind_" + k))));
  const body = h("textarea", { required: true, rows: 18, class: "mono", spellcheck: "false", "data-test": "tpl-body" });
  const fields = h("textarea", { rows: 5, class: "mono", spellcheck: "false", placeholder: '[{"name": "replicas", "type": "integer", "default": 1}]', "data-test": "tpl-fields" });
  const start = h("select", { "data-test": "tpl-start" }, h("option", { value: "" }, t("tpl.start_empty")),
    builtins.map((b) => h("option", { value: b.name }, b.name)));
  start.addEventListener("change", () => {
    const b = builtins.find((x) => x.name === start.value);
    if (!b) return;
    kind.value = b.kind;
    if (b.body) body.value = b.body;
    fields.value = JSON.stringify(b.fields || [], null, 1);
  });
  const outcome = h("div", { "data-test": "tpl-outcome" });
  return h("form", {
    class: "grid",
    onsubmit: async (ev) => {
      ev.preventDefault();
      let parsed = null;
      try { parsed = fields.value.trim() ? JSON.parse(fields.value) : null; }
      catch (err) { replace(outcome, h("div", { class: "error-box" }, t("tpl.bad_fields", { error: err.message }))); return; }
      try {
        await api("POST", "/apps/" + enc(app) + "/templates", { name: name.value.trim(), kind: kind.value, body: body.value,
                                                               fields: parsed });
        ctx.flash(t("tpl.saved", { name: name.value.trim() }), "ok");
        ctx.rerender();
      } catch (err) { replace(outcome, refusalBox(err, ctx)); }
    },
  }, h("p", { class: "muted" }, t("tpl.no_preview")),
     field(t("tpl.start"), start), field(t("col.name"), name), field(t("tpl.kind"), kind),
     field(t("tpl.body"), body), field(t("tpl.fields_json"), fields), outcome,
     h("button", { type: "submit", class: "primary", "data-test": "tpl-save" }, t("tpl.save")));
}
