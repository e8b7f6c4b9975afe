// `mae login` in the browser: the CLI listens on 127.0.0.1:<port> and opened
// #/cli?port=..&state=... Once the person agrees, a personal access token is created
// for the CLI and handed to it by a form POST (the token travels in the body, never in
// a URL). Only loopback ports are accepted, so a link cannot send a token elsewhere.
import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { t } from "../i18n.js";

export const PENDING_KEY = "mae.cli";

export async function render(view, _params, ctx) {
  sessionStorage.removeItem(PENDING_KEY);
  const port = Number(ctx.query.get("port"));
  const state = ctx.query.get("state") || "";
  if (!Number.isInteger(port) || port < 1024 || port > 65535 || !/^[A-Za-z0-9_-]{16,100}$/.test(state)) {
    replace(view, h("div", { class: "error-box" }, t("cli.bad_request")));
    return;
  }
  const allow = async (ev) => {
    ev.target.disabled = true;
    try {
      const created = await api("POST", "/tokens", { name: "mae CLI " + new Date().toISOString().slice(0, 10), expires_in_days: 90 });
      const form = h("form", { method: "POST", action: "http://127.0.0.1:" + port + "/callback" },
        h("input", { type: "hidden", name: "token", value: created.token }),
        h("input", { type: "hidden", name: "state", value: state }));
      document.body.appendChild(form);
      form.submit();
    } catch (err) {
      ev.target.disabled = false;
      ctx.flash(ctx.errorText(err));
    }
  };
  replace(view, h("section", { class: "card narrow" },
    h("h1", null, t("cli.title")),
    h("p", null, t("cli.explain", { user: ctx.me.username })),
    h("p", { class: "muted" }, t("cli.token_note")),
    h("div", { class: "tabs" },
      h("button", { type: "button", class: "primary", "data-test": "cli-allow", onclick: allow }, t("cli.allow")),
      h("button", { type: "button", onclick: () => { location.hash = "#/apps"; } }, t("cli.deny")))));
}
