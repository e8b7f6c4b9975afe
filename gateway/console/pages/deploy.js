// The deploy form: where to (an environment or chosen clusters) and the template's
// `fields`, generated from GET /templates. Nothing is deployed before the person has
// seen the preview (the manifests and their diff against what the clusters run now)
// and confirmed it.
import { api, listAll, newRequestKey } from "../api.js";
import { enc, h, link, replace } from "../dom.js";
import { t } from "../i18n.js";
import { field } from "../ui.js";

function inputFor(f, value) {
  const v = value === undefined ? f.default : value;
  const attrs = { name: f.name, "data-field": f.name, "data-type": f.type };
  switch (f.type) {
    case "boolean": return h("input", { ...attrs, type: "checkbox", checked: !!v });
    case "integer": return h("input", { ...attrs, type: "number", step: 1, value: v ?? "" });
    case "number": return h("input", { ...attrs, type: "number", step: "any", value: v ?? "" });
    case "object":
    case "list": return h("textarea", { ...attrs, rows: 3, class: "mono", value: JSON.stringify(v ?? (f.type === "list" ? [] : {}), null, 2) });
    default: return h("input", { ...attrs, type: "text", value: v ?? "" });
  }
}

function readInput(el) {
  const type = el.dataset.type;
  if (type === "boolean") return el.checked;
  if (type === "integer" || type === "number") return el.value === "" ? null : Number(el.value);
  if (type === "object" || type === "list") {
    try { return JSON.parse(el.value); } catch { throw new Error(t("deploy.bad_json", { field: el.dataset.field })); }
  }
  return el.value;
}

// The preview's diff: per cluster, per object, what changes (create / update /
// unchanged), with the unified diff coloured line by line.
function unifiedView(text) {
  return h("pre", { class: "mono unified" }, String(text).split("\n").map((line) =>
    h("span", { class: "diffline " + (line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : "") }, line + "\n")));
}

function objectView(d) {
  if (typeof d === "string") return unifiedView(d);
  const change = d.change || d.op || d.action || "";
  const body = d.unified ?? d.diff ?? d.patch ?? d.changes ?? null;
  return h("div", { class: "diffitem", "data-test": "diff-object", "data-change": change },
    h("span", { class: "badge s-" + (change === "unchanged" ? "superseded" : change === "create" ? "succeeded" : "progressing") },
      t("deploy.change_" + change, {}, change || t("deploy.change"))), " ",
    h("strong", null, [d.kind, d.name].filter(Boolean).join("/")),
    change !== "unchanged" && body ? (typeof body === "string" ? unifiedView(body) : h("pre", { class: "mono" }, JSON.stringify(body, null, 2))) : null);
}

function diffView(diff) {
  if (!diff || !diff.length) return h("p", { class: "muted", "data-test": "diff-empty" }, t("deploy.no_diff"));
  return h("div", { "data-test": "diff" }, diff.map((entry) => Array.isArray(entry && entry.diff)
    ? h("div", { class: "diffcluster" }, h("h3", null, t("col.cluster"), ": ", entry.cluster, entry.env ? " (" + t("env." + entry.env, {}, entry.env) + ")" : ""),
        entry.diff.length ? entry.diff.map(objectView) : h("p", { class: "muted" }, t("deploy.no_diff")))
    : objectView(entry)));
}

export async function render(view, params, ctx) {
  const { app, service, version } = params;
  const vpath = "/apps/" + enc(app) + "/services/" + enc(service) + "/versions/" + enc(version);
  const [ver, templates] = await Promise.all([api("GET", vpath), listAll("/templates")]);
  let clusters = [];
  try { clusters = await listAll("/clusters"); } catch { /* then only environments can be chosen */ }

  const versionTemplates = templates.filter((tp) => (tp.kind || "version") === "version");
  const templateSelect = h("select", { name: "template", "data-test": "template" },
    versionTemplates.map((tp) => h("option", { value: tp.name, selected: tp.name === (ver.template || "default-version") },
      tp.name + (tp.app ? " (" + tp.app + ")" : ""))));
  const fieldsBox = h("div", { class: "fields", "data-test": "fields" });
  const drawFields = () => {
    const tp = versionTemplates.find((x) => x.name === templateSelect.value);
    const fields = (tp && tp.fields) || [];
    replace(fieldsBox, fields.length
      ? fields.map((f) => field(f.name, inputFor(f, (ver.values || {})[f.name]), f.description))
      : h("p", { class: "muted" }, t("deploy.no_fields")));
  };
  templateSelect.addEventListener("change", drawFields);
  drawFields();

  // test first, and chosen: a deploy goes to production only when someone picks it.
  const envs = ["test", "prod"];
  for (const c of clusters) if (c.env && !envs.includes(c.env)) envs.push(c.env);
  const target = h("div", { class: "stack" },
    envs.map((e) => h("label", { class: "check" }, h("input", { type: "radio", name: "target", value: "env:" + e, checked: e === "test", "data-test": "target-env-" + e }),
      t("deploy.env_all", { env: t("env." + e, {}, e) }))),
    clusters.map((c) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "cluster", value: c.name, "data-test": "target-cluster-" + c.name }),
      t("deploy.one_cluster", { name: c.name, env: t("env." + c.env, {}, c.env || "") }))));

  const previewBox = h("div", { "data-test": "preview" });
  const chosen = () => {
    const picked = [...target.querySelectorAll("input[name=cluster]:checked")].map((x) => x.value);
    if (picked.length) return { clusters: picked };
    const env = (target.querySelector("input[name=target]:checked") || { value: "env:test" }).value.slice(4);
    return { env };
  };

  const preview = async (ev) => {
    ev.preventDefault();
    replace(previewBox, h("p", { class: "muted" }, t("loading")));
    try {
      const values = {};
      for (const el of fieldsBox.querySelectorAll("[data-field]")) values[el.dataset.field] = readInput(el);
      const changed = templateSelect.value !== (ver.template || "default-version") ||
        JSON.stringify(values) !== JSON.stringify({ ...values, ...(ver.values || {}) });
      // The form's values belong to the version (the API's deploy body names only
      // where to deploy), so they are saved on it before the preview is asked for.
      if (changed) {
        Object.assign(ver, await api("PATCH", vpath, { template: templateSelect.value, values }));
      }
      const where = chosen();
      const answer = await api("POST", vpath + "/preview", where);
      replace(previewBox,
        h("h2", null, t("deploy.preview")),
        changed ? h("p", { class: "muted" }, t("deploy.values_saved")) : null,
        h("h3", null, t("deploy.diff")), diffView(answer.diff),
        h("details", null, h("summary", null, t("deploy.manifests", { n: (answer.manifests || []).length })),
          h("pre", { class: "mono" }, JSON.stringify(answer.manifests || [], null, 2))),
        h("button", { type: "button", class: "primary", "data-test": "confirm-deploy", onclick: confirmDeploy(where) }, t("deploy.confirm")));
    } catch (err) {
      replace(previewBox);
      ctx.flash(ctx.errorText(err));
    }
  };

  const confirmDeploy = (where) => {
    // One key per previewed deploy: pressing again after a lost answer cannot deploy twice.
    const key = newRequestKey();
    return async (ev) => {
      ev.target.disabled = true;
      try {
        const answer = await api("POST", vpath + "/deploy", where, { headers: { "Idempotency-Key": key } });
        location.hash = "#/records/" + enc(answer.record_id);
      } catch (err) {
        ev.target.disabled = false;
        ctx.flash(ctx.errorText(err));
      }
    };
  };

  replace(view,
    h("p", { class: "crumbs" }, link("/apps", t("nav.apps")), " / ", link("/apps/" + enc(app), app), " / ", service, " / ", link(vpath, version)),
    h("h1", null, t("deploy.title", { service, version })),
    h("p", { class: "mono" }, ver.image || "", ver.port ? " :" + ver.port : ""),
    h("form", { class: "card", onsubmit: preview },
      h("h2", null, t("deploy.where")), target,
      h("h2", null, t("deploy.template")), field(t("deploy.template"), templateSelect), fieldsBox,
      h("button", { type: "submit", "data-test": "preview-button" }, t("deploy.preview_button"))),
    previewBox);
}
