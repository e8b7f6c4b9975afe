// The app page's live view of what runs: for every version deployed somewhere, per cluster,
// a collapsible tree Deployment → ReplicaSets → pods with their states
// (GET …/versions/<ver>/resources). Fetched again every second while a record of the app is
// in progress or a tree is not ready yet, every ten seconds otherwise, until the person
// leaves the page (ctx.alive()). What is open or closed stays as the person left it, and an
// unchanged answer is not drawn again (no flicker, focus kept).
import { api, listAll } from "../api.js";
import { enc, h, replace } from "../dom.js";
import { timeEl } from "../dates.js";
import { t } from "../i18n.js";
import { FINISHED, clusterStatuses, reasonText } from "../ui.js";
import { runningOn } from "./version.js";

export const FAST_MS = 1000;
export const SLOW_MS = 10000;
export const RECORDS = 50;   // the newest records: the page's history shows them

// A state as a badge: its words and one of the badge colours style.css has.
function stateBadge(state, words, title) {
  const colour = { ready: "s-succeeded", failed: "s-failed", waiting: "s-pending", rolling: "s-progressing" }[state] || "";
  return h("span", { class: "badge " + colour, "data-state": state, title: title || null }, words);
}

// Rolled out: the Deployment's counts all reached what it wants, no older ReplicaSet keeps a
// pod (while a new pod starts, the old one still counts as ready) and every pod is ready.
function rolledOut(d, replicasets) {
  const r = d.replicas;
  return d.observed_generation >= d.generation && r.updated === r.desired && r.ready === r.desired
    && r.available === r.desired
    && !replicasets.some((rs) => (!rs.current && rs.pods.length) || rs.pods.some((p) => !p.ready));
}

function deploymentState(d, replicasets) {
  const stalled = (d.conditions || []).find((c) => (c.type === "Progressing" && c.status === "False")
    || (c.type === "ReplicaFailure" && c.status === "True"));
  if (stalled) return ["failed", reasonText(stalled.reason) || t("tree.stalled"), stalled.message];
  return rolledOut(d, replicasets) ? ["ready", t("tree.ready")] : ["rolling", t("tree.rolling_out")];
}

// Reasons that say a pod will not get ready by itself (others, ContainerCreating, just take time).
const FAILING = new Set(["CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
  "InvalidImageName", "RunContainerError", "CreateContainerError", "OOMKilled", "Error", "Evicted"]);

function podState(p) {
  if (p.ready) return ["ready", t("tree.ready")];
  if (p.phase === "Failed" || FAILING.has(p.reason)) {
    return ["failed", p.reason ? reasonText(p.reason) : t("tree.pod_failed"), p.reason];
  }
  if (p.reason && p.phase !== "Succeeded") return ["waiting", reasonText(p.reason), p.reason];
  if (p.phase === "Pending") return ["waiting", t("tree.pod_pending")];
  if (p.phase === "Succeeded") return ["", t("tree.pod_done")];
  return ["rolling", t("tree.pod_starting")];
}

function replicasetState(rs) {
  const r = rs.replicas;
  if (r.desired === 0) return rs.pods.length ? ["rolling", t("tree.scaling_down")] : ["", t("tree.scaled_down")];
  return r.ready >= r.desired ? ["ready", t("tree.ready")] : ["rolling", t("tree.not_ready")];
}

// Whether the tree of one cluster is still on its way (or stuck) rather than settled.
export function notReady(item) {
  return item.reachable && !!item.deployment && !rolledOut(item.deployment, item.replicasets);
}

async function load(app) {
  const base = "/apps/" + enc(app);
  const [services, page] = await Promise.all([
    listAll(base + "/services"),
    api("GET", base + "/records", undefined, { query: { limit: RECORDS } }),
  ]);
  const busy = (page.items || []).some((r) => !FINISHED.has(r.status));
  const details = await Promise.all(services.map((s) => api("GET", base + "/services/" + enc(s.name)).catch(() => null)));
  const wanted = [];
  services.forEach((svc, i) => {
    for (const v of (details[i] && details[i].versions) || []) {
      const running = runningOn(clusterStatuses(v)).map((s) => s.cluster);
      if (running.length) wanted.push({ service: svc.name, version: v.name, running });
    }
  });
  const trees = await Promise.all(wanted.map(async (w) => {
    try {
      const answer = await api("GET", base + "/services/" + enc(w.service) + "/versions/" + enc(w.version) + "/resources");
      return { ...w, items: (answer.items || []).filter((i) => w.running.includes(i.cluster)) };
    } catch (err) {
      return { ...w, items: [], error: err.status === 0 ? t("error.network") : (err.message || String(err)) };
    }
  }));
  return { busy, trees, records: page.items || [],
           details: services.map((svc, i) => ({ service: svc.name, detail: details[i] })) };
}

function podLine(p) {
  const [state, words, title] = podState(p);
  return h("li", { "data-test": "tree-pod", "data-name": p.name, "data-ready": p.ready ? "true" : "false" },
    h("span", { class: "muted small" }, t("tree.pod"), " "), h("span", { class: "mono" }, p.name), " ",
    stateBadge(state, words, title),
    h("small", { class: "muted" }, " · ", t("tree.restarts", { n: p.restarts ?? 0 }),
      p.node ? " · " + t("tree.node", { node: p.node }) : "", p.created_at ? [" · ", timeEl(p.created_at, { rel: true })] : null));
}

function replicasetLine(key, rs, open) {
  const [state, words] = replicasetState(rs);
  const id = key + "/" + rs.name;
  const wide = open.has(id) ? open.get(id) : (rs.current || rs.pods.length > 0);
  return h("li", { "data-test": "tree-replicaset", "data-name": rs.name, "data-current": rs.current ? "true" : "false" },
    h("details", { open: wide, "data-key": id, ontoggle: (ev) => open.set(id, ev.target.open) },
      h("summary", null, h("span", { class: "muted small" }, t("tree.replicaset"), " "), h("span", { class: "mono" }, rs.name),
        " ", t("tree.revision", { n: rs.revision }), " ",
        rs.current ? h("span", { class: "badge routed", "data-test": "tree-current" }, t("tree.current")) : null, " ",
        stateBadge(state, words), " ", h("small", { class: "muted" }, t("tree.count_ready", rs.replicas))),
      rs.pods.length ? h("ul", { class: "tree" }, rs.pods.map(podLine)) : h("p", { class: "muted small" }, t("tree.no_pods"))));
}

function deploymentLine(key, item, open) {
  const d = item.deployment;
  const [state, words, title] = deploymentState(d, item.replicasets);
  return h("li", { "data-test": "tree-deployment", "data-name": d.name },
    h("span", { class: "muted small" }, t("tree.deployment"), " "), h("span", { class: "mono" }, d.name), " ",
    stateBadge(state, words, title), " ",
    h("small", { class: "muted" }, t("replicas", d.replicas), " · ",
      t("tree.generation", { observed: d.observed_generation, generation: d.generation })),
    (d.conditions || []).length
      ? h("div", { class: "small" }, d.conditions.map((c) => [h("span", {
        class: "badge " + (c.status === "True" ? (c.type === "ReplicaFailure" ? "s-failed" : "s-succeeded") : "s-pending"),
        "data-test": "tree-condition", "data-type": c.type, title: c.message || null,
      }, c.type, ": ", t("tree.condition_" + String(c.status).toLowerCase(), {}, c.status)), " "]))
      : null,
    item.replicasets.length ? h("ul", { class: "tree" }, item.replicasets.map((rs) => replicasetLine(key, rs, open))) : null);
}

function clusterTree(w, item, open) {
  const key = w.service + "/" + w.version + "/" + item.cluster;
  const wide = open.has(key) ? open.get(key) : true;
  let state = ["", t("tree.absent")];
  if (!item.reachable) state = ["failed", t("tree.unreachable")];
  else if (item.deployment) state = deploymentState(item.deployment, item.replicasets);
  let body;
  if (!item.reachable) body = h("p", { class: "warn-text small", "data-test": "tree-error" }, item.error || t("tree.unreachable"));
  else if (item.deployment) body = h("ul", { class: "tree" }, deploymentLine(key, item, open));
  else if (item.replicasets.length) body = h("ul", { class: "tree" }, item.replicasets.map((rs) => replicasetLine(key, rs, open)));
  else body = h("p", { class: "muted small" }, t("tree.no_deployment"));
  return h("details", { open: wide, class: "tree-cluster", "data-test": "cluster-tree", "data-cluster": item.cluster,
                        "data-key": key, ontoggle: (ev) => open.set(key, ev.target.open) },
    h("summary", null, item.cluster, item.env ? h("small", { class: "muted" }, " " + t("env." + item.env, {}, item.env)) : null,
      " ", stateBadge(...state)),
    body);
}

function draw(el, data, open) {
  if (!data.trees.length) { replace(el, h("p", { class: "muted", "data-test": "no-trees" }, t("tree.none"))); return; }
  replace(el, data.trees.map((w) => h("div", { class: "tree-version", "data-test": "version-tree", "data-service": w.service,
                                                "data-version": w.version },
    h("h3", null, w.service, " / ", w.version),
    w.error ? h("p", { class: "warn-text small" }, w.error) : null,
    w.items.length ? w.items.map((item) => clusterTree(w, item, open))
      : (w.error ? null : h("p", { class: "muted small", "data-test": "tree-waiting" }, t("tree.waiting"))))));
}

// The block, drawn into and kept fresh until the page is left; ``onTick(data)`` gets what
// each round fetched (the page refreshes its other blocks with it).
export function resourceTrees(app, ctx, onTick) {
  const body = h("div", { "data-test": "resource-trees" }, h("p", { class: "muted" }, t("loading")));
  const status = h("p", { class: "muted small", "data-test": "tree-refresh" });
  const el = h("div", null, status, body);
  const open = new Map();
  let last = "";
  let busy = true;
  const step = async () => {
    if (!ctx.alive()) return;
    try {
      const data = await load(app);
      if (!ctx.alive()) return;
      busy = data.busy || data.trees.some((w) => w.items.some(notReady));
      const text = JSON.stringify(data.trees);
      if (text !== last) {
        const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest("[data-key]");
        const focusKey = focused && body.contains(focused) ? focused.getAttribute("data-key") : null;
        draw(body, data, open);
        last = text;
        if (focusKey) {
          const again = [...body.querySelectorAll("[data-key]")].find((n) => n.getAttribute("data-key") === focusKey);
          if (again) again.querySelector("summary").focus();
        }
      }
      if (onTick) onTick(data);
      replace(status, t(busy ? "tree.refresh_fast" : "tree.refresh_slow"));
      status.setAttribute("data-busy", busy ? "true" : "false");
    } catch (err) {
      if (!ctx.alive()) return;
      replace(status, h("span", { class: "warn-text" }, err && err.status === 0 ? t("error.network") : (err.message || String(err))));
    }
    setTimeout(step, busy ? FAST_MS : SLOW_MS);
  };
  step();
  return el;
}
