// The platform admins' page: the audit log (filter by actor, action, since; page by
// page), the blacklist (block with a reason, unblock) and the admins' own notification
// channels. Others see one sentence (the API refuses them with 403 anyway).
import { api, listAll } from "../api.js";
import { enc, h, replace } from "../dom.js";
import { dateField, timeEl } from "../dates.js";
import { t } from "../i18n.js";
import { field } from "../ui.js";
import { channelForm } from "./channel_form.js";

const EVENTS = ["deploy.succeeded", "deploy.failed", "build.succeeded", "build.failed", "server.expiring", "cluster.unreachable"];
const PAGE = 50;

export async function render(view, _params, ctx) {
  if (!ctx.me.is_admin) {
    replace(view, h("h1", null, t("admin.title")), h("p", { class: "muted", "data-test": "not-admin" }, t("admin.only")));
    return;
  }
  const channels = await listAll("/admin/channels");
  replace(view,
    h("h1", null, t("admin.title")),
    h("section", { class: "card", "data-test": "audit" }, h("h2", null, t("admin.audit")), auditBlock(ctx)),
    h("section", { class: "card", "data-test": "blacklist" }, h("h2", null, t("admin.blacklist")), blacklistForm(ctx)),
    h("section", { class: "card", "data-test": "platform-channels" }, h("h2", null, t("admin.channels")),
      channelsTable(channels, ctx), channelForm("/admin/channels", EVENTS, (e) => !e.startsWith("build"), ctx)));
}

function auditBlock(ctx) {
  const actor = h("input", { "data-test": "audit-actor", maxlength: 100 });
  const action = h("input", { "data-test": "audit-action", maxlength: 100, placeholder: "user_blocked" });
  const since = dateField(t("admin.since"), { "data-test": "audit-since" });
  const out = h("div", { "data-test": "audit-entries" });
  // The button's own `hidden` loses to the stylesheet's `button { display }`: hide a wrapper.
  const moreButton = h("button", { type: "button", "data-test": "audit-more" }, t("admin.more"));
  const more = h("p", { hidden: true }, moreButton);
  let cursor = null;
  let body = null;
  const load = async (fresh) => {
    try {
      const sinceValue = since.value ? new Date(since.value + "T00:00:00").toISOString() : undefined;
      const page = await api("GET", "/admin/audit", undefined, { query: { actor: actor.value.trim(),
        action: action.value.trim(), since: sinceValue, limit: PAGE, cursor: fresh ? null : cursor } });
      cursor = page.next_cursor;
      more.hidden = !cursor;
      if (fresh) {
        body = h("tbody");
        replace(out, page.items.length || cursor
          ? h("table", null, h("thead", null, h("tr", null, ["col.time", "admin.actor", "col.action", "admin.target", "admin.source_ip"]
              .map((k) => h("th", null, t(k))))), body)
          : h("p", { class: "muted" }, t("admin.no_audit")));
      }
      for (const e of page.items) {
        body.appendChild(h("tr", { "data-test": "audit-row", "data-action": e.action, "data-target": e.target || "" },
          h("td", null, timeEl(e.time)), h("td", null, e.actor), h("td", { class: "mono" }, e.action),
          h("td", { class: "mono small wrap" }, e.target || ""), h("td", { class: "mono" }, e.source_ip || "")));
      }
    } catch (err) { ctx.flash(ctx.errorText(err)); }
  };
  moreButton.addEventListener("click", () => load(false));
  load(true);
  const form = h("form", { class: "inline", onsubmit: (ev) => { ev.preventDefault(); load(true); } },
    field(t("admin.actor"), actor), field(t("col.action"), action), since,
    h("button", { type: "submit", "data-test": "audit-filter" }, t("admin.filter")));
  return h("div", null, form, out, more);
}

function blacklistForm(ctx) {
  const user = h("input", { required: true, maxlength: 100, "data-test": "bl-user" });
  const reason = h("input", { maxlength: 500, "data-test": "bl-reason" });
  const send = async (method) => {
    const name = user.value.trim();
    if (!name) { ctx.flash(t("admin.need_user")); return; }
    const question = method === "PUT" ? t("admin.block_confirm", { name }) : t("admin.unblock_confirm", { name });
    if (!confirm(question)) return;
    try {
      await api(method, "/admin/blacklist/" + enc(name), method === "PUT" ? { reason: reason.value.trim() } : undefined);
      ctx.flash(method === "PUT" ? t("admin.blocked", { name }) : t("admin.unblocked", { name }), "ok");
    } catch (err) { ctx.flash(ctx.errorText(err)); }
  };
  return h("div", null, h("p", { class: "muted small" }, t("admin.blacklist_help")),
    h("form", { class: "inline", onsubmit: (ev) => { ev.preventDefault(); send("PUT"); } },
      field(t("admin.user"), user), field(t("col.reason"), reason),
      h("button", { type: "submit", class: "danger", "data-test": "bl-block" }, t("admin.block")),
      h("button", { type: "button", "data-test": "bl-unblock", onclick: () => send("DELETE") }, t("admin.unblock"))));
}

function channelsTable(channels, ctx) {
  if (!channels.length) return h("p", { class: "muted" }, t("channels.none"));
  return h("table", null,
    h("thead", null, h("tr", null, ["col.name", "channels.type", "channels.events", null].map((k) => h("th", null, k ? t(k) : "")))),
    h("tbody", null, channels.map((c) => h("tr", { "data-test": "pchannel-row", "data-name": c.name },
      h("td", null, c.name),
      h("td", null, t("channel." + c.type, {}, c.type)),
      h("td", null, (c.events || []).map((e) => t("event." + e, {}, e)).join(", ")),
      h("td", { class: "actions" },
        h("button", { type: "button", "data-test": "pchannel-test", onclick: async () => {
          try { await api("POST", "/admin/channels/" + enc(c.id) + "/test"); ctx.flash(t("channels.test_ok"), "ok"); }
          catch (err) { ctx.flash(ctx.errorText(err)); }
        } }, t("channels.test")),
        h("button", { type: "button", class: "danger", "data-test": "pchannel-delete", onclick: async () => {
          if (!confirm(t("channels.delete_confirm", { name: c.name }))) return;
          try { await api("DELETE", "/admin/channels/" + enc(c.id)); } catch (err) { ctx.flash(ctx.errorText(err)); }
          ctx.rerender();
        } }, t("channels.delete")))))));
}
