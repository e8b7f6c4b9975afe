// Log in with a provider (the gateway redirects back to #/login?token=..., which
// app.js takes and strips), or paste a personal access token.
import { api, clearToken, newLoginState, setToken } from "../api.js";
import { enc, h, replace } from "../dom.js";
import { t } from "../i18n.js";

export async function render(view, _params, ctx) {
  let providers = [];
  try {
    providers = (await api("GET", "/auth/providers")).items || [];
  } catch (err) {
    ctx.flash(ctx.errorText(err));
  }
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "off", required: true,
                             placeholder: t("login.token_placeholder"), "data-test": "token-input" });
  const form = h("form", {
    class: "stack",
    onsubmit: async (ev) => {
      ev.preventDefault();
      setToken(input.value.trim());
      try {
        await api("GET", "/me");
      } catch (err) {
        clearToken();
        ctx.flash(ctx.errorText(err));
        return;
      }
      await ctx.onLogin();
    },
  }, h("label", { for: "token" }, t("login.paste")), input,
     h("button", { type: "submit", "data-test": "token-submit" }, t("login.use_token")));

  replace(view, h("section", { class: "card narrow" },
    h("h1", null, t("login.title")),
    h("p", { class: "muted" }, t("login.intro")),
    h("div", { class: "stack" }, providers.map((p) =>
      // A plain link: the login is a top-level navigation through the provider and back.
      // The state is made at the click, so each login attempt has its own.
      h("a", { class: "button primary", href: "/api/v1/auth/login/" + enc(p.name), "data-test": "login-" + p.name,
               onclick: (ev) => { ev.currentTarget.href = "/api/v1/auth/login/" + enc(p.name) + "?console_state=" + newLoginState(); } },
        t("login.with", { provider: p.display_name || p.name })))),
    h("hr"),
    form));
}
