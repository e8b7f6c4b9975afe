// Everyone's own account: personal access tokens (create with a scope and an expiry,
// shown once with a copy button; revoke) and login sessions (end one, end all others).
import { api, listAll } from "../api.js";
import { enc, h, replace } from "../dom.js";
import { confirmByName } from "../confirm.js";
import { timeEl } from "../dates.js";
import { t } from "../i18n.js";
import { field } from "../ui.js";

export async function render(view, _params, ctx) {
  const [tokens, sessions] = await Promise.all([listAll("/tokens"), listAll("/sessions")]);
  const shown = h("div", { "data-test": "new-token-box" });
  const list = h("div", null, tokensTable(tokens, ctx));
  replace(view,
    h("h1", null, t("account.title")),
    h("section", { class: "card" }, h("h2", null, t("account.tokens")), shown, list, tokenForm(shown, list, ctx)),
    h("section", { class: "card" }, h("h2", null, t("account.sessions")), sessionsBlock(sessions, ctx)));
}

// The secret, once: it is never shown again, so say so and offer to copy it.
export function secretBox(el, label, secret, note) {
  const input = h("input", { class: "mono", readonly: true, value: secret, "data-test": "secret", "aria-label": label });
  const copy = h("button", { type: "button", "data-test": "copy", onclick: async () => {
    input.select();
    try { await navigator.clipboard.writeText(secret); } catch (_err) { document.execCommand("copy"); }
    replace(copy, t("account.copied"));
  } }, t("account.copy"));
  replace(el, h("div", { class: "subtle" }, h("p", null, h("strong", null, label)), h("p", { class: "inline" }, input, copy),
    h("p", { class: "muted small" }, note || t("account.shown_once"))));
}

function tokensTable(tokens, ctx) {
  if (!tokens.length) return h("p", { class: "muted" }, t("account.no_tokens"));
  return h("table", { "data-test": "tokens" },
    h("thead", null, h("tr", null, ["col.name", "account.scope", "col.created_at", "account.expires", "account.last_used", null]
      .map((k) => h("th", null, k ? t(k) : h("span", { class: "sr-only" }, t("col.actions")))))),
    h("tbody", null, tokens.map((tok) => h("tr", { "data-test": "token-row", "data-name": tok.name },
      h("td", null, tok.name, tok.prefix ? h("span", { class: "mono small muted" }, " " + tok.prefix + "…") : null),
      h("td", null, t("account.scope_" + (tok.scope || "write"))),
      h("td", null, timeEl(tok.created_at)),
      h("td", null, timeEl(tok.expires_at, { fallback: t("account.never_expires") })),
      h("td", null, timeEl(tok.last_used_at, { rel: true, fallback: t("account.never_used") })),
      h("td", { class: "actions" }, h("button", { type: "button", class: "danger", "data-test": "revoke", onclick: async () => {
        const sure = await confirmByName({ title: t("account.revoke_title", { name: tok.name }), name: tok.name,
          action: t("account.revoke"), explain: t("account.revoke_explain", { name: tok.name }) });
        if (!sure) return;
        try { await api("DELETE", "/tokens/" + enc(tok.id)); ctx.flash(t("account.revoked"), "ok"); ctx.rerender(); }
        catch (err) { ctx.flash(ctx.errorText(err)); }
      } }, t("account.revoke")))))));
}

function tokenForm(shown, list, ctx) {
  const name = h("input", { required: true, maxlength: 100, "data-test": "token-name" });
  const scope = h("select", { "data-test": "token-scope" },
    ["read", "write"].map((s) => h("option", { value: s }, t("account.scope_" + s))));
  const days = h("input", { type: "number", min: 0, max: 3650, step: 1, value: "90", "data-test": "token-days" });
  return h("form", {
    class: "inline",
    onsubmit: async (ev) => {
      ev.preventDefault();
      const n = Number(days.value);
      if (days.value === "" || !Number.isInteger(n) || n < 0 || n > 3650) { ctx.flash(t("account.bad_days")); return; }
      try {
        const made = await api("POST", "/tokens", { name: name.value.trim(), scope: scope.value, expires_in_days: n });
        replace(list, tokensTable(await listAll("/tokens"), ctx));
        secretBox(shown, t("account.new_token", { name: made.name }), made.token);
        name.value = "";
      } catch (err) { ctx.flash(ctx.errorText(err)); }
    },
  }, field(t("col.name"), name), field(t("account.scope"), scope), field(t("account.days"), days, t("account.days_hint")),
     h("button", { type: "submit", class: "primary", "data-test": "token-create" }, t("account.create_token")));
}

function sessionsBlock(sessions, ctx) {
  const end = async (path, question) => {
    if (!confirm(question)) return;
    try { await api("DELETE", path); ctx.flash(t("account.session_ended"), "ok"); ctx.rerender(); }
    catch (err) { ctx.flash(ctx.errorText(err)); }
  };
  if (!sessions.length) return h("p", { class: "muted" }, t("account.no_sessions"));
  return h("div", null,
    h("table", { "data-test": "sessions" },
      h("thead", null, h("tr", null, ["account.device", "account.address", "col.created_at", "account.last_used", null]
        .map((k) => h("th", null, k ? t(k) : h("span", { class: "sr-only" }, t("col.actions")))))),
      h("tbody", null, sessions.map((s) => h("tr", { "data-test": "session-row", "data-id": String(s.id), "data-current": String(!!s.current) },
        h("td", { class: "wrap small" }, s.device || "—",
          s.current ? [" ", h("span", { class: "badge routed", "data-test": "current" }, t("account.current"))] : null),
        h("td", { class: "mono" }, s.source_ip || "—"),
        h("td", null, timeEl(s.created_at)),
        h("td", null, timeEl(s.last_used_at, { rel: true, fallback: t("account.never_used") })),
        h("td", { class: "actions" }, s.current ? null : h("button", { type: "button", class: "danger", "data-test": "end-session",
          onclick: () => end("/sessions/" + enc(s.id), t("account.end_confirm")) }, t("account.end"))))))),
    sessions.some((s) => !s.current)
      ? h("p", null, h("button", { type: "button", class: "danger", "data-test": "end-others",
          onclick: () => end("/sessions", t("account.end_others_confirm")) }, t("account.end_others")))
      : null);
}
