// Templates: the built-in ones and those of the caller's applications (#/templates), and
// one application's (#/apps/{app}/templates) with an editor to add one or change one of
// its own (?edit=name; ?start=builtin starts from a built-in): name, kind, body and its
// fields as rows. Beside it, a live preview: ~400 ms after the last keystroke the page
// asks POST /apps/{app}/templates/preview, which renders exactly as a save does (sample
// values, the app's workload policy), and shows the objects as YAML or the refusal — a
// policy_violation with its rule, object and path. Only who may add templates to the app
// (maintainers, owners, admins: templates.create) sees the editor and the change/delete
// buttons; the others see the list.
import { api, listAll } from "../api.js";
import { enc, h, link, replace } from "../dom.js";
import { timeEl } from "../dates.js";
import { t } from "../i18n.js";
import { field } from "../ui.js";

const TYPES = ["string", "integer", "number", "boolean", "object", "list"];
const DEBOUNCE_MS = 400;

export async function render(view, params, ctx) {
  const app = params.app;
  const [all, detail] = await Promise.all([listAll("/templates"), app ? api("GET", "/apps/" + enc(app)) : null]);
  const canEdit = !!app && (ctx.me.is_admin || ["maintainer", "owner"].includes(detail.role));
  const shown = app ? all.filter((x) => x.builtin || x.app === app) : all;
  const builtins = all.filter((x) => x.builtin);
  const editing = canEdit && ctx.query.get("edit") ? shown.find((x) => !x.builtin && x.name === ctx.query.get("edit")) : null;
  const start = canEdit && !editing ? builtins.find((x) => x.name === ctx.query.get("start")) : null;
  replace(view,
    h("p", { class: "crumbs" }, link("/apps", t("nav.apps")), " / ",
      app ? [link("/apps/" + enc(app), app), " / "] : null, t("tpl.title_short")),
    h("h1", null, app ? t("tpl.title_app", { app }) : t("tpl.title")),
    app ? h("p", null, link("/templates", t("tpl.all"))) : null,
    listTable(app, shown, canEdit, ctx),
    app && !canEdit ? h("p", { class: "muted", "data-test": "tpl-viewer-note" }, t("tpl.viewer_note")) : null,
    canEdit ? editor(app, builtins, editing || start, !!editing, ctx) : null);
}

function listTable(app, shown, canEdit, ctx) {
  const heads = ["col.name", "tpl.kind", "tpl.owner", "tpl.fields", "col.created_at"];
  return h("table", { "data-test": "templates" },
    h("thead", null, h("tr", null, heads.map((k) => h("th", null, t(k))), canEdit ? h("th", null, t("tpl.actions")) : null)),
    h("tbody", null, shown.map((x) => h("tr", { "data-test": "template-row", "data-name": x.name },
      h("td", { class: "mono" }, x.name),
      h("td", null, t("tpl.kind_" + x.kind, {}, x.kind)),
      h("td", null, x.builtin ? t("tpl.builtin") : link("/apps/" + enc(x.app) + "/templates", x.app || "")),
      h("td", { class: "mono small" }, (x.fields || []).map((f) => f.name + ":" + f.type).join(", ")),
      h("td", null, timeEl(x.created_at)),
      canEdit ? h("td", { class: "actions" }, x.builtin
        ? link("/apps/" + enc(app) + "/templates?start=" + enc(x.name), t("tpl.start_from"))
        : [link("/apps/" + enc(app) + "/templates?edit=" + enc(x.name), t("tpl.edit")),
           h("button", { type: "button", class: "link danger", "data-test": "tpl-delete", onclick: () => remove(app, x.name, ctx) },
             t("tpl.delete"))]) : null))));
}

async function remove(app, name, ctx) {
  if (!confirm(t("tpl.delete_confirm", { name }))) return;
  try {
    await api("DELETE", "/apps/" + enc(app) + "/templates/" + enc(name));
    ctx.flash(t("tpl.deleted", { name }), "ok");
    if (ctx.query.get("edit") === name) location.hash = "#/apps/" + enc(app) + "/templates"; else ctx.rerender();
  } catch (err) { ctx.flash(ctx.errorText(err)); }
}

function refusalBox(err, ctx) {
  const d = err.details || {};
  return h("div", { class: "error-box", role: "alert", "data-test": "tpl-refusal" },
    h("p", null, ctx.errorText(err)),
    d.rule ? h("dl", null,
      [["tpl.rule", d.rule], ["tpl.object", d.object], ["tpl.path", d.path]].filter(([, v]) => v)
        .map(([k, v]) => [h("dt", null, t(k)), h("dd", { class: "mono", "data-test": "tpl-" + k.split(".")[1] }, String(v))])) : null);
}

// -- the fields, one row each ------------------------------------------------------------

function fieldRow(f, onChange) {
  const attrs = (k) => ({ "aria-label": t(k), "data-test": "tpl-field-" + k.split("_")[1] });
  const name = h("input", { ...attrs("tpl.field_name"), class: "mono", value: f.name || "", placeholder: "replicas" });
  const type = h("select", attrs("tpl.field_type"), TYPES.map((x) => h("option", { value: x, selected: x === (f.type || "string") }, x)));
  const shownDefault = f.default === undefined ? "" : typeof f.default === "string" ? f.default : JSON.stringify(f.default);
  const value = h("input", { ...attrs("tpl.field_default"), class: "mono", value: shownDefault });
  const description = h("input", { ...attrs("tpl.field_description"), maxlength: 500, value: f.description || "" });
  const row = h("tr", { "data-test": "tpl-field" },
    [name, type, value, description].map((el) => h("td", null, el)),
    h("td", null, h("button", { type: "button", class: "link danger", "data-test": "tpl-field-remove",
      onclick: () => { row.remove(); onChange(); } }, t("tpl.field_remove"))));
  row.read = () => readField(name.value.trim(), type.value, value.value, description.value);
  return row;
}

// A row as the API takes it; throws an Error whose message says what is wrong.
function readField(name, type, raw, description) {
  const out = { name, type, description };
  const bad = () => new Error(t("tpl.bad_default", { name, type: t("tpl.type_" + type, {}, type) }));
  if (type === "string") out.default = raw;
  else if (raw.trim() !== "") {
    let v;
    try { v = JSON.parse(raw); } catch { throw bad(); }
    const ok = { integer: Number.isInteger(v), number: typeof v === "number", boolean: typeof v === "boolean",
                 object: !!v && typeof v === "object" && !Array.isArray(v), list: Array.isArray(v) }[type];
    if (!ok) throw bad();
    out.default = v;
  }
  return out;
}

// -- YAML, for reading the preview --------------------------------------------------------

const PLAIN = /^[A-Za-z_/][A-Za-z0-9_./@-]*$/;
const RESERVED = /^(true|false|null|yes|no|on|off|y|n|~)$/i;

function scalar(v) {
  if (Array.isArray(v)) return "[]";
  if (v && typeof v === "object") return "{}";
  if (typeof v === "string") return PLAIN.test(v) && !RESERVED.test(v) ? v : JSON.stringify(v);
  return v === undefined ? "null" : JSON.stringify(v);
}

const isBlock = (v) => (Array.isArray(v) ? v.length > 0 : !!v && typeof v === "object" && Object.keys(v).length > 0);

function yamlLines(v, pad) {
  if (Array.isArray(v)) {
    return v.flatMap((x) => {
      if (!isBlock(x)) return [pad + "- " + scalar(x)];
      const inner = yamlLines(x, pad + "  ");
      return [pad + "- " + inner[0].slice(pad.length + 2), ...inner.slice(1)];
    });
  }
  return Object.entries(v).flatMap(([k, x]) => (isBlock(x) ? [pad + scalar(k) + ":", ...yamlLines(x, pad + "  ")]
                                                           : [pad + scalar(k) + ": " + scalar(x)]));
}

export function toYaml(obj) { return isBlock(obj) ? yamlLines(obj, "").join("\n") : scalar(obj); }

// -- the editor and its preview -----------------------------------------------------------

function editor(app, builtins, from, isEdit, ctx) {
  const base = "/apps/" + enc(app) + "/templates";
  const name = h("input", { required: true, maxlength: 63, class: "mono", "data-test": "tpl-name", value: isEdit ? from.name : "",
                            disabled: isEdit });
  const kind = h("select", { "data-test": "tpl-kind" }, ["version", "ingress"].map((k) =>
    h("option", { value: k, selected: from && from.kind === k }, t("tpl.kind_" + k))));
  const body = h("textarea", { required: true, rows: 22, class: "mono", spellcheck: "false", "data-test": "tpl-body",
                               value: from ? from.body || "" : "" });
  const rows = h("tbody", null);
  const addRow = (f) => rows.appendChild(fieldRow(f, schedule));
  (from ? from.fields || [] : []).forEach(addRow);
  const values = h("textarea", { rows: 3, class: "mono", spellcheck: "false", "data-test": "tpl-values", placeholder: '{"replicas": 3}' });
  const panel = h("div", { "data-test": "tpl-preview", "aria-live": "polite" }, h("p", { class: "muted" }, t("tpl.preview_empty")));
  const outcome = h("div", { "data-test": "tpl-outcome" });

  // What the form says, as the API takes it; throws an Error saying what is wrong.
  const read = () => ({
    kind: kind.value, body: body.value,
    fields: [...rows.children].map((r) => r.read()).filter((f) => f.name),
  });
  let timer = null;
  let asked = 0;
  async function refresh() {
    const mine = ++asked;
    if (!body.value.trim()) { replace(panel, h("p", { class: "muted" }, t("tpl.preview_empty"))); return; }
    let request;
    try {
      request = read();
      const v = values.value.trim() ? JSON.parse(values.value) : null;
      if (v !== null && (typeof v !== "object" || Array.isArray(v))) throw new Error(t("tpl.bad_values"));
      if (v) request.values = v;
    } catch (err) {
      replace(panel, h("div", { class: "error-box", "data-test": "tpl-local-error" }, err instanceof SyntaxError ? t("tpl.bad_values") : err.message));
      return;
    }
    panel.setAttribute("aria-busy", "true");
    try {
      const answer = await api("POST", base + "/preview", request);
      if (mine !== asked || !ctx.alive()) return;
      replace(panel, previewView(answer));
    } catch (err) {
      if (mine !== asked || !ctx.alive()) return;
      replace(panel, refusalBox(err, ctx));
    } finally { if (mine === asked) panel.removeAttribute("aria-busy"); }
  }
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(() => { if (ctx.alive()) refresh(); }, DEBOUNCE_MS);
  }

  const form = h("form", {
    "data-test": "tpl-form",
    oninput: schedule,
    onchange: schedule,
    onsubmit: async (ev) => {
      ev.preventDefault();
      let request;
      try { request = read(); } catch (err) { replace(outcome, h("div", { class: "error-box" }, err.message)); return; }
      const saved = isEdit ? from.name : name.value.trim();
      try {
        if (isEdit) await api("PUT", base + "/" + enc(saved), request);
        else await api("POST", base, { name: saved, ...request });
        ctx.flash(t("tpl.saved", { name: saved }), "ok");
        const next = "#" + base + "?edit=" + enc(saved);
        if (location.hash === next) ctx.rerender(); else location.hash = next;
      } catch (err) { replace(outcome, refusalBox(err, ctx)); }
    },
  },
  isEdit ? null : field(t("tpl.start"), startSelect(app, builtins, from)),
  field(t("col.name"), name), field(t("tpl.kind"), kind), field(t("tpl.body"), body, t("tpl.body_hint")),
  h("h3", null, t("tpl.fields")),
  h("table", { class: "fields", "data-test": "tpl-fields" },
    h("thead", null, h("tr", null, ["tpl.field_name", "tpl.field_type", "tpl.field_default", "tpl.field_description"]
      .map((k) => h("th", null, t(k))), h("th", null, h("span", { class: "muted" }, t("tpl.actions"))))),
    rows),
  h("p", null, h("button", { type: "button", "data-test": "tpl-field-add", onclick: () => { addRow({ type: "string" }); schedule(); } },
    t("tpl.field_add"))),
  outcome,
  h("button", { type: "submit", class: "primary", "data-test": "tpl-save" }, isEdit ? t("tpl.save_changes") : t("tpl.save")));

  values.addEventListener("input", schedule);
  if (from) schedule();
  return h("div", { class: "columns" },
    h("section", { class: "card" }, h("h2", null, isEdit ? t("tpl.editing", { name: from.name }) : t("tpl.new")),
      isEdit ? h("p", null, link(base, t("tpl.new_instead"))) : null, form),
    h("section", { class: "card", "data-test": "tpl-preview-card" }, h("h2", null, t("tpl.preview")),
      h("p", { class: "muted" }, t("tpl.preview_note")),
      field(t("tpl.values"), values, t("tpl.values_hint")),
      panel));
}

function startSelect(app, builtins, from) {
  const select = h("select", { "data-test": "tpl-start" }, h("option", { value: "" }, t("tpl.start_empty")),
    builtins.map((b) => h("option", { value: b.name, selected: from && from.name === b.name }, b.name)));
  select.addEventListener("change", (ev) => {
    ev.stopPropagation();
    location.hash = "#/apps/" + enc(app) + "/templates" + (select.value ? "?start=" + enc(select.value) : "");
  });
  return select;
}

function previewView(answer) {
  const manifests = answer.manifests || [];
  const values = Object.entries(answer.values || {});
  return h("div", { class: "rendered", "data-test": "tpl-rendered" },
    h("p", { "data-test": "tpl-preview-count" }, t("tpl.preview_ok", { n: manifests.length })),
    values.length ? h("p", { class: "small" }, t("tpl.values_used"), " ",
      h("span", { class: "mono", "data-test": "tpl-values-used" }, values.map(([k, v]) => k + "=" + JSON.stringify(v)).join(", "))) : null,
    manifests.map((m) => h("div", { class: "diffitem", "data-test": "tpl-manifest", "data-kind": m.kind },
      h("h3", { class: "mono" }, m.kind + "/" + ((m.metadata || {}).name || "")),
      h("pre", { class: "mono", tabindex: "0" }, toYaml(m)))));
}
