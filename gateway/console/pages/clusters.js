// Clusters and their health (any user may list them; only admins change them): health,
// environment, last report and namespaces; for admins, registering a cluster (with the
// `mae cluster init` way shown first), rotating its credentials and its report token.
import { api, listAll } from "../api.js";
import { enc, h, replace } from "../dom.js";
import { timeEl } from "../dates.js";
import { t } from "../i18n.js";
import { field } from "../ui.js";
import { secretBox } from "./account.js";

export async function render(view, _params, ctx) {
  const listed = await listAll("/clusters");
  // The detail carries the namespaces; a cluster whose detail fails still shows its row.
  const clusters = await Promise.all(listed.map((c) => api("GET", "/clusters/" + enc(c.name)).catch(() => c)));
  const admin = !!ctx.me.is_admin;
  const shown = h("div", { "data-test": "cluster-secret" });
  const box = h("div", { "data-test": "cluster-box" });
  const cols = ["col.name", "col.env", "clusters.server", "clusters.health", "clusters.last_report", "clusters.namespaces"];
  replace(view,
    h("h1", null, t("clusters.title")),
    shown,
    clusters.length
      ? h("table", { "data-test": "clusters" },
          h("thead", null, h("tr", null, [...cols, ...(admin ? [null] : [])].map((k) => h("th", null, k ? t(k) : "")))),
          h("tbody", null, clusters.map((c) => h("tr", { "data-test": "cluster-row", "data-name": c.name },
            h("td", null, c.name),
            h("td", null, t("env." + c.env, {}, c.env || "")),
            h("td", { class: "mono small" }, c.server || ""),
            h("td", { title: c.probe_error || "" }, h("span", { class: "badge " + (c.healthy ? "s-succeeded" : "s-failed"), "data-healthy": String(!!c.healthy) },
              c.healthy ? t("clusters.healthy") : t("clusters.unhealthy"))),
            h("td", null, timeEl(c.last_report_at, { rel: true, fallback: t("clusters.never") })),
            h("td", { "data-test": "namespaces" }, namespacesText(c.namespaces)),
            admin ? h("td", { class: "actions" },
              h("button", { type: "button", "data-test": "rotate-credentials", onclick: () => credentialsForm(box, c, ctx) }, t("clusters.rotate_credentials")),
              h("button", { type: "button", "data-test": "rotate-report-token", onclick: () => rotateReportToken(shown, c, ctx) }, t("clusters.rotate_report_token")))
              : null))))
      : h("p", { class: "muted" }, t("clusters.none")),
    box,
    admin ? registerSection(ctx) : null);
}

function namespacesText(ns) {
  if (!ns) return "—";
  const pending = (ns.pending || []).length;
  const failed = (ns.failed || []).length;
  return h("span", { class: failed ? "warn-text" : "", title: (ns.failed || []).map((f) => f.namespace || f.name || "").join(", ") },
    t("clusters.ns_summary", { ok: ns.ok ?? 0, pending, failed }));
}

async function rotateReportToken(shown, c, ctx) {
  if (!confirm(t("clusters.report_token_confirm", { name: c.name }))) return;
  try {
    const answer = await api("POST", "/clusters/" + enc(c.name) + "/report-token");
    secretBox(shown, t("clusters.new_report_token", { name: c.name }), answer.report_token, t("clusters.report_token_note"));
  } catch (err) { ctx.flash(ctx.errorText(err)); }
}

function credentialsForm(box, c, ctx) {
  const server = h("input", { value: c.server || "", "data-test": "cred-server" });
  const ca = h("textarea", { rows: 4, class: "mono", "data-test": "cred-ca", placeholder: t("clusters.ca_keep") });
  const token = h("textarea", { rows: 3, class: "mono", required: true, "data-test": "cred-token" });
  replace(box, h("section", { class: "card" }, h("h2", null, t("clusters.rotate_for", { name: c.name })),
    h("p", { class: "muted small" }, t("clusters.rotate_help")),
    h("form", { class: "grid", onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { token: token.value.trim() };
      if (server.value.trim() && server.value.trim() !== c.server) body.server = server.value.trim();
      if (ca.value.trim()) body.ca_cert = ca.value.trim() + "\n";
      try {
        await api("POST", "/clusters/" + enc(c.name) + "/credentials", body);
        replace(box);
        ctx.flash(t("clusters.rotated", { name: c.name }), "ok");
      } catch (err) { ctx.flash(ctx.errorText(err)); }
    } }, field(t("clusters.server"), server), field(t("clusters.ca"), ca), field(t("clusters.token"), token),
      h("p", { class: "inline-buttons" }, h("button", { type: "submit", class: "primary", "data-test": "cred-save" }, t("clusters.rotate_credentials")),
        h("button", { type: "button", onclick: () => replace(box) }, t("version.cancel"))))));
  token.focus();
}

function registerSection(ctx) {
  const name = h("input", { required: true, maxlength: 63, "data-test": "reg-name" });
  const env = h("select", { "data-test": "reg-env" }, ["test", "prod"].map((e) => h("option", { value: e }, t("env." + e))));
  const server = h("input", { required: true, placeholder: "https://10.0.0.1:6443", "data-test": "reg-server" });
  const ca = h("textarea", { rows: 4, class: "mono", required: true, "data-test": "reg-ca", placeholder: "-----BEGIN CERTIFICATE-----" });
  const token = h("textarea", { rows: 3, class: "mono", required: true, "data-test": "reg-token" });
  const form = h("form", { class: "grid", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const made = await api("POST", "/clusters", { name: name.value.trim(), env: env.value, server: server.value.trim(),
        ca_cert: ca.value.trim() + "\n", token: token.value.trim() });
      await ctx.rerender();
      const again = document.querySelector("[data-test=cluster-secret]");
      if (again) secretBox(again, t("clusters.new_report_token", { name: made.name }), made.report_token, t("clusters.report_token_first"));
    } catch (err) { ctx.flash(ctx.errorText(err)); }
  } }, field(t("col.name"), name), field(t("col.env"), env), field(t("clusters.server"), server),
     field(t("clusters.ca"), ca), field(t("clusters.token"), token),
     h("button", { type: "submit", class: "primary", "data-test": "reg-submit" }, t("clusters.register")));
  return h("section", { class: "card", "data-test": "register" }, h("h2", null, t("clusters.register")),
    h("p", null, t("clusters.init_intro")),
    h("pre", { class: "mono", "data-test": "init-command" }, "mae cluster init --kubeconfig FILE --name NAME --env test|prod"),
    h("p", { class: "muted small" }, t("clusters.init_more")),
    h("details", null, h("summary", null, t("clusters.by_hand")), form));
}
