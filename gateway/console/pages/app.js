// An application: its services, each version's state on every cluster at a glance,
// forms to add services and versions, what runs (./app_tree.js: live Deployment →
// ReplicaSets → pods trees) and the deploy history with rollback. What the trees fetch
// each time also refreshes the grid's state cells and the history in place (the forms
// are left alone, so nothing typed is lost).
import { api, listAll, newRequestKey } from "../api.js";
import { enc, h, link, replace } from "../dom.js";
import { confirmByName } from "../confirm.js";
import { timeEl } from "../dates.js";
import { t } from "../i18n.js";
import { badge, clusterStatuses, emptyState, field, reasonText, section } from "../ui.js";
import { RECORDS, resourceTrees } from "./app_tree.js";
import { rollbackButton } from "./record.js";

export async function render(view, params, ctx) {
  const app = params.app;
  const detail = await api("GET", "/apps/" + enc(app));
  let clusters = [];
  try {
    clusters = await listAll("/clusters");
  } catch { /* the grid then shows the clusters the versions name */ }

  const base = "/apps/" + enc(app);
  const canWrite = ctx.me.is_admin || ["developer", "maintainer", "owner"].includes(detail.role);
  const isOwner = ctx.me.is_admin || detail.role === "owner";
  const history = { el: null, last: "" };
  const refresh = (data) => refreshInPlace(view, app, data, canWrite, ctx, history);
  replace(view,
    h("p", { class: "crumbs" }, link("/apps", t("nav.apps")), " / ", app),
    h("h1", null, detail.display_name || app, " ", h("small", { class: "muted" }, app)),
    detail.description ? h("p", null, detail.description) : null,
    h("p", { class: "tabs" },
      h("span", null, t("app.your_role"), ": ", detail.role ? t("role." + detail.role) : t("admin")),
      link(base + "/members", t("app.members")),
      link(base + "/channels", t("app.channels")),
      link(base + "/ingresses", t("app.ingresses")),
      link(base + "/templates", t("app.templates"))),
    await section(t("app.services"), () => servicesBlock(app, clusters, canWrite, ctx), { "data-test": "services" }),
    await section(t("tree.title"), async () => resourceTrees(app, ctx, refresh), { "data-test": "resources" }),
    await section(t("app.records"), () => recordsBlock(app, ctx, history), { "data-test": "records" }),
    isOwner ? deleteAppBlock(app, clusters, ctx) : null);
}

async function servicesBlock(app, clusters, canWrite, ctx) {
  const base = "/apps/" + enc(app) + "/services";
  const services = await listAll(base);
  const blocks = [];
  for (const svc of services) {
    let versions;
    let detail = {};
    try {
      detail = await api("GET", base + "/" + enc(svc.name));
      versions = detail.versions;
    } catch { /* fall back to the versions list below */ }
    if (!Array.isArray(versions)) versions = await listAll(base + "/" + enc(svc.name) + "/versions");
    blocks.push(serviceBlock(app, svc, versions, clusters, canWrite, ctx, detail.routed || {}));
  }
  const name = h("input", { name: "name", required: true, maxlength: 63, placeholder: "web", "data-test": "new-service-name" });
  const form = h("form", {
    class: "inline",
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await api("POST", base, { name: name.value.trim() });
        ctx.flash(t("app.service_created", { name: name.value.trim() }), "ok");
        ctx.rerender();
      } catch (err) { ctx.flash(ctx.errorText(err)); }
    },
  }, name, h("button", { type: "submit", "data-test": "new-service-submit" }, t("app.add_service")));
  return h("div", null,
    services.length ? blocks : canWrite
      ? emptyState("services-empty", t("app.no_services"), t("app.add_first_service"), () => name.focus())
      : emptyState("services-empty", t("app.no_services_viewer")),
    canWrite ? h("div", { class: "subtle" }, h("h3", null, t("app.new_service")), form) : null);
}

// "Route traffic here": the service's traffic on that cluster goes to this version (a record).
function routeButton(app, svc, version, cluster, ctx) {
  const key = newRequestKey();
  return h("button", {
    type: "button", class: "small", "data-test": "route-here", "data-cluster": cluster,
    onclick: async (ev) => {
      if (!confirm(t("app.route_confirm", { service: svc, version, cluster }))) return;
      ev.target.disabled = true;
      try {
        const answer = await api("POST", "/apps/" + enc(app) + "/services/" + enc(svc) + "/route",
          { version, clusters: [cluster] }, { headers: { "Idempotency-Key": key } });
        location.hash = "#/records/" + enc(answer.record_id);
      } catch (err) {
        ev.target.disabled = false;
        ctx.flash(ctx.errorText(err));
      }
    },
  }, t("app.route_here"));
}

// A version's state on one cluster: its badge, its record, the routed mark or the route button.
function stateCell(app, svc, version, cluster, s, routed, canWrite, ctx) {
  const isRouted = routed[cluster] === version;
  const running = s && s.status === "succeeded" && s.action !== "delete";
  const sig = JSON.stringify([s && s.status, s && s.record_id, s && s.reason, s && s.action, isRouted]);
  return h("td", { "data-cluster": cluster, "data-sig": sig, title: s && s.reason ? reasonText(s.reason) : "" },
    s ? badge(s.status) : h("span", { class: "muted" }, "—"),
    s && s.record_id ? [" ", link("/records/" + enc(s.record_id), "#" + s.record_id)] : null,
    isRouted ? [" ", h("span", { class: "badge routed", "data-test": "routed", title: t("app.routed_title") },
                       t("app.routed"))] : null,
    !isRouted && running && canWrite ? [" ", routeButton(app, svc, version, cluster, ctx)] : null);
}

// What the trees fetched (./app_tree.js load()): the grid's cells whose state changed and the
// history, if it changed, drawn again where they are.
function refreshInPlace(view, app, data, canWrite, ctx, history) {
  for (const { service, detail } of data.details) {
    const block = [...view.querySelectorAll("[data-test=service]")].find((el) => el.getAttribute("data-name") === service);
    if (!block || !detail) continue;
    for (const v of detail.versions || []) {
      const row = [...block.querySelectorAll("[data-test=version-row]")].find((el) => el.getAttribute("data-name") === v.name);
      if (!row) continue;
      const statuses = clusterStatuses(v);
      for (const td of row.querySelectorAll("td[data-cluster]")) {
        const cluster = td.getAttribute("data-cluster");
        const fresh = stateCell(app, service, v.name, cluster, statuses.get(cluster), detail.routed || {}, canWrite, ctx);
        if (fresh.getAttribute("data-sig") !== td.getAttribute("data-sig")) td.replaceWith(fresh);
      }
    }
  }
  const text = JSON.stringify(data.records);
  if (history.el && text !== history.last) {
    history.last = text;
    replace(history.el, recordsTable(data.records, ctx));
  }
}

function serviceBlock(app, svc, versions, clusters, canWrite, ctx, routed) {
  const seen = new Map(clusters.map((c) => [c.name, c]));
  for (const v of versions) for (const name of clusterStatuses(v).keys()) if (!seen.has(name)) seen.set(name, { name });
  const columns = [...seen.values()];
  const vbase = "/apps/" + enc(app) + "/services/" + enc(svc.name) + "/versions";
  const rows = versions.map((v) => {
    const statuses = clusterStatuses(v);
    // A button, not a link: the row's one <a> stays the deploy link (tests and habits rely on it).
    const page = vbase + "/" + enc(v.name);
    return h("tr", { "data-test": "version-row", "data-name": v.name },
      h("td", null, h("a", { href: "#" + page, "data-test": "version-page", title: t("app.version_page") }, v.name)),
      h("td", { class: "mono" }, v.image || ""),
      columns.map((c) => stateCell(app, svc.name, v.name, c.name, statuses.get(c.name), routed, canWrite, ctx)),
      h("td", null, canWrite ? link(vbase.slice(0) + "/" + enc(v.name) + "/deploy", t("app.deploy")) : null));
  });
  const vname = h("input", { name: "name", required: true, maxlength: 63, placeholder: "v1", "data-test": "new-version-name" });
  const image = h("input", { name: "image", required: true, placeholder: "registry/app:1.0", "data-test": "new-version-image" });
  const port = h("input", { name: "port", type: "number", min: 1, max: 65535, value: "8080", required: true, "data-test": "new-version-port" });
  const replicas = h("input", { name: "replicas", type: "number", min: 0, max: 100, value: "1", "data-test": "new-version-replicas" });
  const form = h("form", {
    class: "inline",
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await api("POST", vbase, { name: vname.value.trim(), image: image.value.trim(),
                                   port: Number(port.value), replicas: Number(replicas.value) });
        ctx.flash(t("app.version_created", { name: vname.value.trim() }), "ok");
        ctx.rerender();
      } catch (err) { ctx.flash(ctx.errorText(err)); }
    },
  }, field(t("col.version"), vname), field(t("col.image"), image), field(t("col.port"), port),
     field(t("col.replicas"), replicas),
     h("button", { type: "submit", "data-test": "new-version-submit" }, t("app.add_version")));
  const newVersion = canWrite
    ? h("details", null, h("summary", { "data-test": "new-version-toggle" }, t("app.new_version")), form) : null;
  return h("div", { class: "service", "data-test": "service", "data-name": svc.name },
    h("h3", null, svc.name, svc.description ? h("small", { class: "muted" }, " — " + svc.description) : null,
      " ", h("a", { href: "#/apps/" + enc(app) + "/services/" + enc(svc.name) + "/ci", class: "small", "data-test": "service-ci" }, t("app.ci"))),
    versions.length
      ? h("table", null,
          h("thead", null, h("tr", null, h("th", null, t("col.version")), h("th", null, t("col.image")),
            columns.map((c) => h("th", null, c.name, c.env ? h("small", { class: "muted" }, " " + t("env." + c.env, {}, c.env)) : null)),
            h("th", null, h("span", { class: "sr-only" }, t("col.actions"))))),
          h("tbody", null, rows))
      : canWrite
        ? emptyState("versions-empty", t("app.no_versions", { service: svc.name }), t("app.add_first_version"), () => {
          newVersion.open = true;
          vname.focus();
        })
        : emptyState("versions-empty", t("app.no_versions_viewer", { service: svc.name })),
    newVersion);
}

async function recordsBlock(app, ctx, history) {
  const page = await api("GET", "/apps/" + enc(app) + "/records", undefined, { query: { limit: RECORDS } });
  const records = page.items || [];
  history.last = JSON.stringify(records);
  history.el = h("div", null, recordsTable(records, ctx));
  return history.el;
}

function recordsTable(records, ctx) {
  if (!records.length) return h("p", { class: "muted" }, t("app.no_records"));
  return h("table", null,
    h("thead", null, h("tr", null, ["col.record", "col.action", "col.service", "col.version", "col.status",
      "col.created_by", "col.created_at", null].map((k) => h("th", null, k ? t(k) : h("span", { class: "sr-only" }, t("col.actions")))))),
    h("tbody", null, records.map((r) => h("tr", { "data-test": "record-row", "data-id": r.id },
      h("td", null, link("/records/" + enc(r.id), "#" + r.id)),
      h("td", null, t("action." + r.action, {}, r.action)),
      h("td", null, r.service || ""),
      h("td", null, r.version || ""),
      h("td", null, badge(r.status)),
      h("td", null, r.created_by || ""),
      h("td", null, timeEl(r.created_at, { rel: true })),
      h("td", null, r.status === "succeeded" ? rollbackButton(r, ctx) : null)))));
}

// Deleting the application (owners): its namespace, and everything in it, leaves every cluster.
function deleteAppBlock(app, clusters, ctx) {
  const button = h("button", { type: "button", class: "danger", "data-test": "app-delete", onclick: async () => {
    const names = clusters.map((c) => c.name);
    const sure = await confirmByName({
      title: t("app.delete_title", { app }), name: app, action: t("app.delete_now"),
      explain: names.length ? t("app.delete_explain", { app, clusters: names.join(", ") }) : t("app.delete_nowhere", { app }),
    });
    if (!sure) return;
    button.disabled = true;
    try {
      await api("DELETE", "/apps/" + enc(app));
      ctx.flash(t("app.deleted", { app }), "ok");
      location.hash = "#/apps";
    } catch (err) {
      button.disabled = false;
      ctx.flash(ctx.errorText(err));
    }
  } }, t("app.delete"));
  return h("section", { class: "card danger-zone", "data-test": "danger-zone" }, h("h2", null, t("app.danger")),
    h("p", { class: "muted" }, t("app.delete_hint")), button);
}
