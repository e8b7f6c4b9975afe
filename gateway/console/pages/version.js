// A version: its configuration, where it runs (with the routed badge), the operations a
// developer may run on it (restart, scale, retire: each a deploy record, sent with an
// Idempotency-Key, then the record page), and what runs live (pods, logs, events) from
// ./version_live.js. Viewers see everything but the operations (the API refuses them
// with 403 anyway).
import { api, newRequestKey } from "../api.js";
import { enc, h, link, replace } from "../dom.js";
import { confirmByName } from "../confirm.js";
import { timeEl } from "../dates.js";
import { t } from "../i18n.js";
import { badge, clusterStatuses, field, reasonText, replicasText, section } from "../ui.js";
import { eventsBlock, logsPanel, podsBlock, watch } from "./version_live.js";

const GONE = new Set(["retire", "delete"]);

// Where the version runs now: its latest target per cluster, unless that took it away.
export function runningOn(statuses) {
  return [...statuses.values()].filter((s) => !GONE.has(s.last_action) && s.action !== "delete");
}

export async function render(view, params, ctx) {
  const { app, service, version } = params;
  const sbase = "/apps/" + enc(app) + "/services/" + enc(service);
  const vpath = sbase + "/versions/" + enc(version);
  const [appDetail, ver, svc] = await Promise.all([api("GET", "/apps/" + enc(app)), api("GET", vpath), api("GET", sbase)]);
  const mine = (svc.versions || []).find((v) => v.name === version) || {};
  const statuses = clusterStatuses(mine);
  const routed = svc.routed || {};
  const running = runningOn(statuses);
  const canWrite = ctx.me.is_admin || ["developer", "maintainer", "owner"].includes(appDetail.role);

  const pods = h("div", { "data-test": "pods" }, h("p", { class: "muted" }, t("loading")));
  const events = h("div", { "data-test": "events" }, h("p", { class: "muted" }, t("loading")));
  const logs = logsPanel(vpath, [app, service, version], running);
  replace(view,
    h("p", { class: "crumbs" }, link("/apps", t("nav.apps")), " / ", link("/apps/" + enc(app), app), " / ", service, " / ", version),
    h("h1", null, t("version.title", { service, version })),
    h("p", { class: "tabs" },
      canWrite ? link(vpath + "/deploy", t("app.deploy")) : null,
      link("/apps/" + enc(app), t("version.back"))),
    h("div", { class: "columns" },
      await section(t("version.config"), async () => configBlock(ver), { "data-test": "config" }),
      await section(t("version.runs"), async () => runsBlock(statuses, routed, version), { "data-test": "runs" })),
    canWrite
      ? h("section", { class: "card", "data-test": "ops" }, h("h2", null, t("version.ops")), opsBlock({ app, service, vpath, ver, version, running }, ctx))
      : h("p", { class: "muted", "data-test": "viewer-note" }, t("version.viewer_note")),
    h("section", { class: "card" }, h("h2", null, t("version.pods")), h("p", { class: "muted small" }, t("version.pods_refresh")), pods),
    h("section", { class: "card" }, h("h2", null, t("version.logs")), logs.el),
    h("section", { class: "card" }, h("h2", null, t("version.events")), events));
  watch(ctx, {
    pods: () => podsBlock(vpath, pods),
    events: () => eventsBlock(app, service, version, events),
    leave: logs.stop,
  });
}

function names(list) {
  return list.length ? h("span", { class: "mono" }, list.join(", ")) : h("span", { class: "muted" }, t("version.none"));
}

function probeText(p) {
  if (!p) return h("span", { class: "muted" }, t("version.none"));
  const n = (v, d) => (v === undefined || v === null ? d : v);
  return t("version.probe", { path: p.path || "/", period: n(p.period_seconds, "–"), timeout: n(p.timeout_seconds, "–"),
    failures: n(p.failure_threshold, "–"), delay: n(p.initial_delay_seconds, 0) });
}

function configBlock(ver) {
  const env = (ver.env || []).map((e) => (typeof e === "string" ? e : e.name)).filter(Boolean);
  const probes = ver.probes || {};
  const readiness = probes.readiness || (ver.health_path ? { path: ver.health_path } : null);
  const row = (label, value, test) => h("tr", { "data-test": test }, h("th", null, label), h("td", { class: "wrap" }, value));
  return h("table", { class: "facts" }, h("tbody", null,
    row(t("col.image"), h("span", { class: "mono" }, ver.image || ""), "image"),
    row(t("col.port"), String(ver.port ?? ""), "port"),
    row(t("col.replicas"), String(ver.replicas ?? 1), "replicas"),
    row(t("version.env"), names(env), "env-names"),
    row(t("version.secret_env"), names(ver.secret_env || []), "secret-names"),
    row(t("version.probe_readiness"), probeText(readiness), "probe-readiness"),
    row(t("version.probe_liveness"), probeText(probes.liveness), "probe-liveness"),
    row(t("version.probe_startup"), probeText(probes.startup), "probe-startup"),
    row(t("deploy.template"), ver.template || "default-version", "template"),
    row(t("col.created_at"), [timeEl(ver.created_at), ver.created_by ? " · " + ver.created_by : ""], "created")));
}

function runsBlock(statuses, routed, version) {
  if (!statuses.size) return h("p", { class: "muted" }, t("version.not_deployed"));
  return h("table", null,
    h("thead", null, h("tr", null, ["col.cluster", "col.env", "col.status", "col.last_action", "col.replicas", "col.record"]
      .map((k) => h("th", null, t(k))))),
    h("tbody", null, [...statuses.values()].map((s) => h("tr", { "data-test": "run-row", "data-cluster": s.cluster },
      h("td", null, s.cluster, routed[s.cluster] === version
        ? [" ", h("span", { class: "badge routed", "data-test": "routed", title: t("app.routed_title") }, t("app.routed"))] : null),
      h("td", null, s.env ? t("env." + s.env, {}, s.env) : ""),
      h("td", { title: s.reason ? reasonText(s.reason) : "" }, badge(s.status)),
      h("td", null, s.last_action ? t("action." + s.last_action, {}, s.last_action) : ""),
      h("td", { class: "wrap small" }, replicasText(s.replicas)),
      h("td", null, s.record_id ? link("/records/" + enc(s.record_id), "#" + s.record_id) : "")))));
}

// The operations, on one chosen place: every cluster of an environment, or one cluster
// the version runs on. One key per operation and body: pressing again after a lost answer
// gets the first record back instead of a second restart; a refused one gets a new key.
function opsBlock({ app, service, vpath, ver, version, running }, ctx) {
  const envs = ["test", "prod"];
  const where = h("select", { "data-test": "op-where" },
    envs.map((e) => h("option", { value: "env:" + e, selected: e === "test" }, t("deploy.env_all", { env: t("env." + e) }))),
    running.map((s) => h("option", { value: "cluster:" + s.cluster },
      t("deploy.one_cluster", { name: s.cluster, env: t("env." + s.env, {}, s.env || "") }))));
  const body = () => {
    const [kind, name] = where.value.split(/:(.*)/s);
    return kind === "env" ? { env: name } : { clusters: [name] };
  };
  const label = () => where.options[where.selectedIndex].textContent;
  const leaves = () => {
    const b = body();
    return running.filter((s) => (b.env ? s.env === b.env : b.clusters.includes(s.cluster))).map((s) => s.cluster);
  };
  const sent = {};
  const keyFor = (action, payload) => {
    const text = JSON.stringify(payload);
    if (!sent[action] || sent[action].text !== text) sent[action] = { text, key: newRequestKey() };
    return sent[action].key;
  };
  const send = async (button, action, extra) => {
    const payload = { ...body(), ...extra };
    button.disabled = true;
    try {
      const answer = await api("POST", vpath + "/" + action, payload, { headers: { "Idempotency-Key": keyFor(action, payload) } });
      location.hash = "#/records/" + enc(answer.record_id);
    } catch (err) {
      button.disabled = false;
      if (err.status >= 400 && err.status < 500) delete sent[action];  // refused: a retry is a new request
      ctx.flash(ctx.errorText(err));
    }
  };

  const replicas = h("input", { type: "number", min: 0, max: 50, step: 1, value: String(ver.replicas ?? 1), "data-test": "op-replicas" });
  const restart = h("button", { type: "button", "data-test": "op-restart", onclick: () => {
    if (confirm(t("version.restart_confirm", { version, where: label() }))) send(restart, "restart", {});
  } }, t("action.restart"));
  const scale = h("button", { type: "button", "data-test": "op-scale", onclick: () => {
    const n = Number(replicas.value);
    if (replicas.value === "" || !Number.isInteger(n) || n < 0 || n > 50) { ctx.flash(t("version.bad_replicas")); return; }
    if (confirm(t("version.scale_confirm", { version, n, where: label() }))) send(scale, "scale", { replicas: n });
  } }, t("action.scale"));

  // Retire says which clusters the version leaves and asks for its name, typed.
  const retire = h("button", { type: "button", class: "danger", "data-test": "op-retire", onclick: async () => {
    const gone = leaves();
    const sure = await confirmByName({
      title: t("version.retire_title", { version }), name: version, action: t("action.retire"),
      explain: gone.length ? t("version.retire_explain", { version, clusters: gone.join(", ") })
        : t("version.retire_none", { version, where: label() }),
      tests: { box: "retire-box", explain: "retire-leaves", input: "retire-name", confirm: "retire-confirm" },
    });
    if (sure) send(retire, "retire", {});
  } }, t("version.retire"));
  const remove = h("button", { type: "button", class: "danger", "data-test": "op-delete", onclick: async () => {
    const on = running.map((s) => s.cluster);
    const sure = await confirmByName({
      title: t("version.delete_title", { version }), name: version, action: t("version.delete_now"),
      explain: on.length ? t("version.delete_explain", { version, service, clusters: on.join(", ") })
        : t("version.delete_nowhere", { version, service }),
      tests: { box: "delete-box", explain: "delete-explain", input: "delete-name", confirm: "delete-confirm" },
    });
    if (!sure) return;
    remove.disabled = true;
    try {
      const answer = await api("DELETE", vpath);
      ctx.flash(t("version.deleted", { version }), "ok");
      location.hash = answer && answer.record_id ? "#/records/" + enc(answer.record_id) : "#/apps/" + enc(app);
    } catch (err) {
      remove.disabled = false;
      ctx.flash(ctx.errorText(err));
    }
  } }, t("version.delete"));

  return h("div", null,
    h("div", { class: "inline" }, field(t("version.on"), where)),
    h("div", { class: "inline" }, restart, field(t("version.replicas_to"), replicas), scale, retire, remove));
}
