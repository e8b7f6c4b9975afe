// The server inventory (admins), soonest expiry first; those expiring within 30 days
// (or already expired) are highlighted, since renewing them is the point of the page.
// "Expired" and the days left come from the server (its clock and calendar-day count),
// the same figures the expiry reminders and `?expiring_within_days=` use.
import { api, listAll } from "../api.js";
import { enc, h, replace } from "../dom.js";
import { dateField, fmt, timeEl } from "../dates.js";
import { t } from "../i18n.js";
import { field } from "../ui.js";

const SOON_DAYS = 30;
const DAY_MS = 86400000;

// Calendar days (UTC) from today to the expiry, as the server counts them; only for a
// server answer without `days_left`.
export function daysLeft(expiresAt, now = Date.now()) {
  if (!expiresAt) return null;
  const when = Date.parse(expiresAt);
  if (Number.isNaN(when)) return null;
  const day = (ms) => Math.floor(ms / DAY_MS);
  return day(when) - day(now);
}

export function expiryOf(s, now = Date.now()) {
  const left = typeof s.days_left === "number" ? s.days_left : daysLeft(s.expires_at, now);
  const expired = typeof s.expired === "boolean" ? s.expired : !!s.expires_at && Date.parse(s.expires_at) <= now;
  return { left, expired, soon: left !== null && (expired || left <= SOON_DAYS) };
}

export async function render(view, _params, ctx) {
  const [servers, accounts] = await Promise.all([listAll("/servers"), api("GET", "/cloud-accounts").then((p) => p.items || [])]);
  servers.sort((a, b) => {
    const x = a.expires_at ? Date.parse(a.expires_at) : Infinity;
    const y = b.expires_at ? Date.parse(b.expires_at) : Infinity;
    return x - y || String(a.name).localeCompare(String(b.name));
  });
  const expiring = servers.filter((s) => expiryOf(s).soon).length;

  const name = h("input", { required: true, maxlength: 128 });
  const ip = h("input", { required: true, placeholder: "10.0.0.1" });
  const expires = dateField(t("servers.expires"), { "data-test": "server-expires" });
  const owner = h("input", {});
  const form = h("form", {
    class: "inline",
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await api("POST", "/servers", { name: name.value.trim(), ip: ip.value.trim(),
          expires_at: expires.value || undefined, owner: owner.value.trim() || undefined });
        ctx.rerender();
      } catch (err) { ctx.flash(ctx.errorText(err)); }
    },
  }, field(t("col.name"), name), field("IP", ip), expires, field(t("servers.owner"), owner),
     h("button", { type: "submit", class: "primary" }, t("servers.add")));

  replace(view,
    h("h1", null, t("servers.title")),
    h("p", { class: expiring ? "warn-text" : "muted", "data-test": "expiring-count" }, t("servers.expiring_count", { n: expiring, days: SOON_DAYS })),
    servers.length
      ? h("table", { "data-test": "servers" },
          h("thead", null, h("tr", null, ["col.name", "IP", "servers.provider", "servers.region", "servers.expires", "servers.days_left", "servers.owner"].map((k) => h("th", null, k === "IP" ? k : t(k))))),
          h("tbody", null, servers.map((s) => {
            const { left: d, expired, soon } = expiryOf(s);
            const cls = expired ? "expired" : soon ? "expiring" : "";
            return h("tr", { class: cls, "data-test": "server-row", "data-name": s.name, "data-expiring": String(!!cls) },
              h("td", null, s.name),
              h("td", { class: "mono" }, s.ip || ""),
              h("td", null, s.provider || ""),
              h("td", null, s.region || ""),
              h("td", null, timeEl(s.expires_at, { style: "date", fallback: "—" })),
              h("td", null, d === null ? "—"
                : expired ? (d < 0 ? t("servers.expired_ago", { n: -d }) : t("servers.expired_today"))
                : d === 0 ? t("servers.expires_today") : t("servers.days", { n: d })),
              h("td", null, s.owner || ""));
          })))
      : h("p", { class: "muted" }, t("servers.none")),
    h("section", { class: "card" }, h("h2", null, t("servers.add")), form),
    h("section", { class: "card", "data-test": "cloud-accounts" }, h("h2", null, t("cloud.title")), accountsTable(accounts, ctx)));
}

// Cloud accounts: how their last import went, "sync now", and the import schedule.
function accountsTable(accounts, ctx) {
  if (!accounts.length) return h("p", { class: "muted" }, t("cloud.none"));
  const act = async (method, path, body, done) => {
    try { await api(method, path, body); ctx.flash(done, "ok"); ctx.rerender(); } catch (err) { ctx.flash(ctx.errorText(err)); }
  };
  return h("table", null,
    h("thead", null, h("tr", null, ["col.name", "servers.provider", "servers.region", "cloud.last_sync", "cloud.schedule", null]
      .map((k) => h("th", null, k ? t(k) : "")))),
    h("tbody", null, accounts.map((a) => {
      const path = "/cloud-accounts/" + enc(a.id);
      const hours = h("input", { type: "number", min: 0, max: 168, step: 1, value: a.sync_every_hours ? String(a.sync_every_hours) : "0",
        "data-test": "sync-hours", "aria-label": t("cloud.every_hours") });
      const status = a.last_sync_status || "never";
      return h("tr", { "data-test": "account-row", "data-name": a.name, "data-sync": status },
        h("td", null, a.name),
        h("td", null, a.provider || ""),
        h("td", null, (a.regions || []).join(", ")),
        h("td", { class: "wrap small", "data-test": "last-sync" },
          h("span", { class: "badge s-" + (status === "ok" ? "succeeded" : status === "failed" ? "failed" : "pending") }, t("cloud.status_" + status, {}, status)),
          a.last_sync_at ? [" ", timeEl(a.last_sync_at, { rel: true })] : null,
          status === "ok" && a.last_sync_count !== null && a.last_sync_count !== undefined ? " · " + t("cloud.count", { n: a.last_sync_count }) : "",
          a.last_sync_error ? h("div", { class: "warn-text" }, a.last_sync_error) : null),
        h("td", null, h("span", { class: "inline" }, hours,
          h("button", { type: "button", "data-test": "sync-schedule", onclick: () => {
            const n = Number(hours.value);
            if (hours.value === "" || !Number.isInteger(n) || n < 0 || n > 168) { ctx.flash(t("cloud.bad_hours")); return; }
            act("PATCH", path, { sync_every_hours: n || null }, n ? t("cloud.scheduled", { n }) : t("cloud.unscheduled"));
          } }, t("cloud.save"))),
          a.next_sync_at ? h("div", { class: "muted small" }, t("cloud.next", { when: fmt(a.next_sync_at) })) : null),
        h("td", { class: "actions" }, h("button", { type: "button", "data-test": "sync-now",
          onclick: () => act("POST", path + "/sync", undefined, t("cloud.sync_started")) }, t("cloud.sync_now"))));
    })));
}
