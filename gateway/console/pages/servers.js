// The server inventory (admins), soonest expiry first; those expiring within 30 days
// (or already expired) are highlighted, since renewing them is the point of the page.
// "Expired" and the days left come from the server (its clock and calendar-day count),
// the same figures the expiry reminders and `?expiring_within_days=` use.
import { api, listAll } from "../api.js";
import { h, replace } from "../dom.js";
import { fmtTime, t } from "../i18n.js";
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
  const servers = await listAll("/servers");
  servers.sort((a, b) => {
    const x = a.expires_at ? Date.parse(a.expires_at) : Infinity;
    const y = b.expires_at ? Date.parse(b.expires_at) : Infinity;
    return x - y || String(a.name).localeCompare(String(b.name));
  });
  const expiring = servers.filter((s) => expiryOf(s).soon).length;

  const name = h("input", { required: true, maxlength: 128 });
  const ip = h("input", { required: true, placeholder: "10.0.0.1" });
  const expires = h("input", { type: "date" });
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
  }, field(t("col.name"), name), field("IP", ip), field(t("servers.expires"), expires), field(t("servers.owner"), owner),
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
              h("td", null, s.expires_at ? fmtTime(s.expires_at, false, true) : "—"),
              h("td", null, d === null ? "—"
                : expired ? (d < 0 ? t("servers.expired_ago", { n: -d }) : t("servers.expired_today"))
                : d === 0 ? t("servers.expires_today") : t("servers.days", { n: d })),
              h("td", null, s.owner || ""));
          })))
      : h("p", { class: "muted" }, t("servers.none")),
    h("section", { class: "card" }, h("h2", null, t("servers.add")), form));
}
