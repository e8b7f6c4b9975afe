// Small pieces several pages share: status badges, plain-words reasons, sections
// that fail on their own (one broken call must not blank a whole page).
import { h, replace } from "./dom.js";
import { t } from "./i18n.js";

export const FINISHED = new Set(["succeeded", "failed", "superseded"]);

export function badge(status) {
  const s = status || "none";
  return h("span", { class: "badge s-" + s.replace(/[^a-z_]/g, ""), "data-status": s }, t("status." + s, {}, s));
}

// Kubernetes' reasons, said so a person knows what to do; the raw reason stays
// visible next to it for those who want to search for it.
const REASONS = {
  ErrImagePull: "reason.image_pull",
  ImagePullBackOff: "reason.image_pull",
  InvalidImageName: "reason.image_name",
  CrashLoopBackOff: "reason.crash",
  ProgressDeadlineExceeded: "reason.deadline",
  CreateContainerConfigError: "reason.config",
  Unschedulable: "reason.unschedulable",
  FailedScheduling: "reason.unschedulable",
  OOMKilled: "reason.oom",
};

export function reasonText(reason) {
  if (!reason) return "";
  const key = REASONS[reason];
  return key ? t(key) : reason;
}

// A version's state on each cluster, whatever shape the service detail uses
// (a list of {cluster, status, ...} or a {cluster: status} map).
export function clusterStatuses(version) {
  const raw = version.clusters ?? version.status_by_cluster ?? version.statuses ?? version.targets ?? version.deployments ?? null;
  const out = new Map();
  if (Array.isArray(raw)) {
    for (const item of raw) {
      if (item && item.cluster) out.set(item.cluster, item);
    }
  } else if (raw && typeof raw === "object") {
    for (const [cluster, value] of Object.entries(raw)) {
      out.set(cluster, typeof value === "string" ? { cluster, status: value } : { cluster, ...value });
    }
  }
  return out;
}

// Whether the caller's role in an app (``role`` from GET /apps/{app}; a platform admin may
// have none) reaches ``needed``, as gateway/rbac.py ranks them: pages hide the controls a
// role cannot use (the API refuses them anyway).
const RANK = { viewer: 0, developer: 1, maintainer: 2, owner: 3 };

export function mayAct(ctx, role, needed) {
  return !!(ctx.me && ctx.me.is_admin) || (role in RANK && RANK[role] >= RANK[needed]);
}

export async function section(title, build, attrs = {}) {
  const body = h("div", null, h("p", { class: "muted" }, t("loading")));
  const el = h("section", { class: "card", ...attrs }, title ? h("h2", null, title) : null, body);
  try {
    replace(body, await build());
  } catch (err) {
    replace(body, h("div", { class: "error-box" }, err && err.status === 0 ? t("error.network") : (err.message || String(err))));
  }
  return el;
}

export function field(label, input, hint) {
  return h("label", { class: "field" }, h("span", null, label), input, hint ? h("small", { class: "muted" }, hint) : null);
}

export function replicasText(r) {
  if (!r) return "";
  const n = (v) => (v === undefined || v === null ? "–" : v);
  return t("replicas", { ready: n(r.ready), desired: n(r.desired), updated: n(r.updated), available: n(r.available) });
}

// What an empty list says: one sentence on what to do next, and the button that does it
// (none when the caller's role does not allow it: pass no `action`).
export function emptyState(test, sentence, action, onclick) {
  return h("div", { class: "empty", "data-test": test },
    h("p", null, sentence),
    action ? h("button", { type: "button", class: "primary", "data-test": test + "-action", onclick }, action) : null);
}
