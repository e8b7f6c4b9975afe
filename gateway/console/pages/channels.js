// Notification channels of an application (Feishu, DingTalk, webhooks) and the most
// recent deliveries, so a team can see whether its messages actually arrived.
import { api, listAll } from "../api.js";
import { enc, h, link, replace } from "../dom.js";
import { timeEl } from "../dates.js";
import { t } from "../i18n.js";
import { badge } from "../ui.js";
import { channelForm } from "./channel_form.js";

const EVENTS = ["deploy.succeeded", "deploy.failed", "build.succeeded", "build.failed"];

export async function render(view, params, ctx) {
  const app = params.app;
  const base = "/apps/" + enc(app);
  const [channels, deliveries] = await Promise.all([
    listAll(base + "/channels"),
    api("GET", base + "/deliveries", undefined, { query: { limit: 50 } }).then((p) => p.items || []),
  ]);

  const rows = channels.map((c) => h("tr", { "data-test": "channel-row" },
    h("td", null, c.name),
    h("td", null, t("channel." + c.type, {}, c.type)),
    h("td", { class: "mono small wrap" }, c.url || ""),
    h("td", null, (c.events || []).map((e) => t("event." + e, {}, e)).join(", ")),
    h("td", { class: "actions" },
      h("button", { type: "button", onclick: async () => {
        try { await api("POST", base + "/channels/" + enc(c.id) + "/test"); ctx.flash(t("channels.test_ok"), "ok"); }
        catch (err) { ctx.flash(ctx.errorText(err)); }
      } }, t("channels.test")),
      h("button", { type: "button", class: "danger", onclick: async () => {
        if (!confirm(t("channels.delete_confirm", { name: c.name }))) return;
        try { await api("DELETE", base + "/channels/" + enc(c.id)); } catch (err) { ctx.flash(ctx.errorText(err)); }
        ctx.rerender();
      } }, t("channels.delete")))));

  const form = channelForm(base + "/channels", EVENTS, (e) => e.startsWith("deploy"), ctx);

  replace(view,
    h("p", { class: "crumbs" }, link("/apps", t("nav.apps")), " / ", link(base, app), " / ", t("app.channels")),
    h("h1", null, t("channels.title", { app })),
    channels.length
      ? h("table", null, h("thead", null, h("tr", null, ["col.name", "channels.type", null, "channels.events", null].map((k) => h("th", null, k ? t(k) : (k === null ? "" : ""))))), h("tbody", null, rows))
      : h("p", { class: "muted" }, t("channels.none")),
    h("section", { class: "card" }, h("h2", null, t("channels.add")), form),
    h("section", { class: "card" }, h("h2", null, t("channels.deliveries")),
      deliveries.length
        ? h("table", { "data-test": "deliveries" },
            h("thead", null, h("tr", null, ["channels.channel", "channels.event", "col.status", "channels.attempts", "channels.last_error", "col.time"].map((k) => h("th", null, t(k))))),
            h("tbody", null, deliveries.map((d) => h("tr", null,
              h("td", null, d.channel_name || String(d.channel_id)),
              h("td", null, t("event." + d.event, {}, d.event)),
              h("td", null, badge(d.status)),
              h("td", null, String(d.attempts ?? "")),
              h("td", { class: "small wrap" }, d.last_error || ""),
              h("td", null, timeEl(d.delivered_at || d.updated_at || d.created_at, { rel: true }))))))
        : h("p", { class: "muted" }, t("channels.no_deliveries"))));
}
