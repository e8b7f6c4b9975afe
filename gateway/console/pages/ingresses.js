// An application's ingresses: the list and a form to make one (#/apps/{app}/ingresses),
// and one ingress (#/apps/{app}/ingresses/{ing}): change it (stored, not deployed: the
// page says so), deploy it to an environment or clusters (then its record), delete it
// by typing its name, after reading which clusters it leaves. Viewers see the list and
// each ingress, not the forms (the API refuses them with 403 anyway); a developer is
// offered test only, prod is for maintainers (gateway/rbac.py).
import { api, listAll, newRequestKey } from "../api.js";
import { enc, h, link, replace } from "../dom.js";
import { timeEl } from "../dates.js";
import { t } from "../i18n.js";
import { field, mayAct } from "../ui.js";

const TLS_KINDS = ["none", "secret_name", "issuer", "cluster_issuer"];

export async function render(view, params, ctx) {
  const app = params.app;
  const base = "/apps/" + enc(app) + "/ingresses";
  const [detail, services] = await Promise.all([api("GET", "/apps/" + enc(app)),
    listAll("/apps/" + enc(app) + "/services").then((list) => list.map((s) => s.name))]);
  const canWrite = mayAct(ctx, detail.role, "developer");
  const viewerNote = h("p", { class: "muted", "data-test": "viewer-note" }, t("ing.viewer_note"));
  const crumbs = [link("/apps", t("nav.apps")), " / ", link("/apps/" + enc(app), app), " / "];
  if (!params.ing) {
    const items = await listAll(base);
    replace(view,
      h("p", { class: "crumbs" }, crumbs, t("ing.title_short")),
      h("h1", null, t("ing.title", { app })),
      items.length ? listTable(app, items) : h("p", { class: "muted" }, t("ing.none")),
      canWrite ? h("section", { class: "card" }, h("h2", null, t("ing.new")), ingressForm(app, null, services, ctx))
               : viewerNote);
    return;
  }
  const ing = await api("GET", base + "/" + enc(params.ing));
  let clusters = [];
  if (canWrite) {
    try { clusters = await listAll("/clusters"); } catch { /* the deploy choice then offers environments only */ }
  }
  const envs = mayAct(ctx, detail.role, "maintainer") ? ["test", "prod"] : ["test"];
  replace(view,
    h("p", { class: "crumbs" }, crumbs, link(base, t("ing.title_short")), " / ", ing.name),
    h("h1", null, t("ing.one", { name: ing.name })),
    h("p", { class: "muted", "data-test": "ing-applied" }, t("ing.applied_to"), " ",
      (ing.clusters || []).length ? ing.clusters.map((c) => c.name + " (" + t("env." + c.env, {}, c.env) + ")").join(", ")
                                  : t("ing.nowhere")),
    canWrite ? [
      h("section", { class: "card" }, h("h2", null, t("ing.deploy")),
        deployForm(app, ing, envs, clusters.filter((c) => envs.includes(c.env)), ctx)),
      h("section", { class: "card" }, h("h2", null, t("ing.edit")),
        h("p", { class: "muted", "data-test": "ing-not-deployed-note" }, t("ing.patch_note")),
        ingressForm(app, ing, services, ctx)),
      h("section", { class: "card danger-zone" }, h("h2", null, t("ing.delete")), deleteForm(app, ing, ctx)),
    ] : [detailCard(ing), viewerNote]);
}

// One ingress as it is stored, for those who may not change it.
function detailCard(ing) {
  const rows = [["ing.host", ing.host || ""], ["ing.hosts", hostsText(ing)], ["ing.tls", tlsText(ing.tls)],
                ["ing.routes", (ing.routes || []).map(routeText).join(", ")]];
  return h("section", { class: "card", "data-test": "ing-detail" }, h("h2", null, t("ing.detail")),
    h("dl", null, rows.map(([k, v]) => [h("dt", null, t(k)), h("dd", { class: "mono" }, v)])));
}

function hostsText(ing) {
  const hosts = ing.hosts || {};
  return ["test", "prod"].filter((e) => hosts[e]).map((e) => t("env." + e) + ": " + hosts[e]).join(", ");
}

function tlsText(tls) {
  if (!tls) return t("ing.tls_none");
  if (tls.cluster_issuer) return t("ing.tls_cluster_issuer") + " " + tls.cluster_issuer;
  if (tls.issuer) return t("ing.tls_issuer") + " " + tls.issuer;
  return t("ing.tls_secret_name") + " " + tls.secret_name;
}

function listTable(app, items) {
  return h("table", { "data-test": "ingresses" },
    h("thead", null, h("tr", null, ["col.name", "ing.host", "ing.hosts", "ing.tls", "ing.routes", "col.created_at"]
      .map((k) => h("th", null, t(k))))),
    h("tbody", null, items.map((i) => h("tr", { "data-test": "ingress-row", "data-name": i.name },
      h("td", null, link("/apps/" + enc(app) + "/ingresses/" + enc(i.name), i.name)),
      h("td", { class: "mono" }, i.host || ""),
      h("td", { class: "mono small" }, hostsText(i)),
      h("td", null, tlsText(i.tls)),
      h("td", { class: "mono small" }, (i.routes || []).map(routeText).join(", ")),
      h("td", null, timeEl(i.created_at))))));
}

function routeText(r) {
  return (r.path || "/") + " → " + r.service + ":" + (r.version || t("ing.follows_routed")) + (r.port ? ":" + r.port : "");
}

// One route's inputs; `read()` gives the route as the API takes it.
function routeRow(services, r = {}) {
  const path = h("input", { value: r.path || "/", placeholder: "/", "data-test": "route-path" });
  const service = h("select", { "data-test": "route-service" },
    [...new Set([...services, ...(r.service ? [r.service] : [])])].map((s) => h("option", { value: s, selected: s === r.service }, s)));
  const version = h("input", { value: r.version || "", placeholder: t("ing.follows_routed"), maxlength: 63, "data-test": "route-version" });
  const port = h("input", { type: "number", min: 1, max: 65535, value: r.port || "", "data-test": "route-port" });
  const row = h("div", { class: "inline", "data-test": "route-row" },
    field(t("ing.path"), path), field(t("col.service"), service), field(t("col.version"), version), field(t("col.port"), port),
    h("button", { type: "button", class: "link", onclick: () => row.remove() }, t("ing.remove_route")));
  row.read = () => ({ path: path.value.trim() || "/", service: service.value, version: version.value.trim() || null,
                      port: port.value ? Number(port.value) : null });
  return row;
}

function ingressForm(app, ing, services, ctx) {
  const base = "/apps/" + enc(app) + "/ingresses";
  const name = h("input", { required: true, maxlength: 63, value: ing ? ing.name : "", disabled: !!ing, "data-test": "ing-name" });
  const host = h("input", { required: true, maxlength: 253, value: ing ? ing.host : "", placeholder: "shop.example.com", "data-test": "ing-host" });
  const hosts = (ing && ing.hosts) || {};
  const hostTest = h("input", { maxlength: 253, value: hosts.test || "", "data-test": "ing-host-test" });
  const hostProd = h("input", { maxlength: 253, value: hosts.prod || "", "data-test": "ing-host-prod" });
  const tls = (ing && ing.tls) || null;
  const current = !tls ? "none" : tls.cluster_issuer ? "cluster_issuer" : tls.issuer ? "issuer" : "secret_name";
  const tlsKind = h("select", { "data-test": "ing-tls-kind" },
    TLS_KINDS.map((k) => h("option", { value: k, selected: k === current }, t("ing.tls_" + k))));
  const tlsValue = h("input", { maxlength: 253, "data-test": "ing-tls-value",
    value: !tls ? "" : tls.cluster_issuer || tls.issuer || tls.secret_name || "" });
  const tlsSecret = h("input", { maxlength: 63, placeholder: t("ing.tls_secret_default"), "data-test": "ing-tls-secret",
    value: tls && (tls.issuer || tls.cluster_issuer) ? tls.secret_name || "" : "" });
  const routes = h("div", { "data-test": "ing-routes" },
    (ing && ing.routes && ing.routes.length ? ing.routes : [{}]).map((r) => routeRow(services, r)));
  const readTls = () => {
    const k = tlsKind.value;
    if (k === "none") return null;
    const out = { [k]: tlsValue.value.trim() };
    if (k !== "secret_name" && tlsSecret.value.trim()) out.secret_name = tlsSecret.value.trim();
    return out;
  };
  return h("form", {
    class: "grid",
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { host: host.value.trim(), tls: readTls(), routes: [...routes.children].map((r) => r.read()),
                     hosts: hostTest.value.trim() || hostProd.value.trim()
                       ? { test: hostTest.value.trim() || null, prod: hostProd.value.trim() || null } : null };
      try {
        if (ing) {
          await api("PATCH", base + "/" + enc(ing.name), body);
          ctx.flash(t("ing.saved"), "ok");
          ctx.rerender();
        } else {
          const made = await api("POST", base, { name: name.value.trim(), ...body });
          ctx.flash(t("ing.created"), "ok");
          location.hash = "#" + base + "/" + enc(made.name);
        }
      } catch (err) { ctx.flash(ctx.errorText(err)); }
    },
  }, field(t("col.name"), name), field(t("ing.host"), host),
     field(t("ing.host_for", { env: t("env.test") }), hostTest), field(t("ing.host_for", { env: t("env.prod") }), hostProd),
     field(t("ing.tls"), tlsKind), field(t("ing.tls_value"), tlsValue), field(t("ing.tls_secret"), tlsSecret),
     h("div", { class: "field" }, h("span", null, t("ing.routes")), routes,
       h("button", { type: "button", "data-test": "ing-add-route", onclick: () => routes.appendChild(routeRow(services)) },
         t("ing.add_route"))),
     h("button", { type: "submit", class: "primary", "data-test": "ing-save" }, ing ? t("ing.save") : t("ing.create")));
}

function deployForm(app, ing, envs, clusters, ctx) {
  const key = newRequestKey();  // pressing again after a lost answer cannot deploy twice
  const where = h("select", { "data-test": "ing-deploy-where" },
    h("option", { value: "" }, t("ing.where_services_run")),
    envs.map((e) => h("option", { value: "env:" + e }, t("ing.to_env", { env: t("env." + e) }))),
    clusters.map((c) => h("option", { value: "cluster:" + c.name }, t("ing.to_cluster", { name: c.name }))));
  return h("form", {
    class: "inline",
    onsubmit: async (ev) => {
      ev.preventDefault();
      const v = where.value;
      const body = v.startsWith("env:") ? { env: v.slice(4) } : v.startsWith("cluster:") ? { clusters: [v.slice(8)] } : {};
      const button = ev.target.querySelector("button");
      button.disabled = true;
      try {
        const answer = await api("POST", "/apps/" + enc(app) + "/ingresses/" + enc(ing.name) + "/deploy", body,
          { headers: { "Idempotency-Key": key } });
        location.hash = "#/records/" + enc(answer.record_id);
      } catch (err) {
        button.disabled = false;
        ctx.flash(ctx.errorText(err));
      }
    },
  }, field(t("ing.deploy_where"), where), h("button", { type: "submit", class: "primary", "data-test": "ing-deploy" }, t("ing.deploy")));
}

function deleteForm(app, ing, ctx) {
  const leaves = (ing.clusters || []).map((c) => c.name);
  const typed = h("input", { placeholder: ing.name, "data-test": "ing-delete-name", autocomplete: "off" });
  const button = h("button", { type: "submit", class: "danger", disabled: true, "data-test": "ing-delete-confirm" },
    t("ing.delete"));
  typed.addEventListener("input", () => { button.disabled = typed.value !== ing.name; });
  return h("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      if (typed.value !== ing.name) return;
      button.disabled = true;
      try {
        const answer = await api("DELETE", "/apps/" + enc(app) + "/ingresses/" + enc(ing.name));
        ctx.flash(t("ing.deleted", { name: ing.name }), "ok");
        location.hash = answer.record_id ? "#/records/" + enc(answer.record_id) : "#/apps/" + enc(app) + "/ingresses";
      } catch (err) {
        button.disabled = false;
        ctx.flash(ctx.errorText(err));
      }
    },
  }, h("p", { "data-test": "ing-delete-leaves" },
       leaves.length ? t("ing.delete_leaves", { clusters: leaves.join(", ") }) : t("ing.delete_nowhere")),
     field(t("ing.type_name", { name: ing.name }), typed), button);
}
