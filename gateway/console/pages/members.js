// Members of an application: owners add people, change roles and remove them.
import { api, listAll } from "../api.js";
import { enc, h, link, replace } from "../dom.js";
import { confirmByName } from "../confirm.js";
import { t } from "../i18n.js";

const ROLES = ["viewer", "developer", "maintainer", "owner"];

function roleSelect(current, attrs = {}) {
  return h("select", attrs, ROLES.map((r) => h("option", { value: r, selected: r === current }, t("role." + r))));
}

export async function render(view, params, ctx) {
  const app = params.app;
  const base = "/apps/" + enc(app) + "/members";
  const [detail, members] = await Promise.all([api("GET", "/apps/" + enc(app)), listAll(base)]);
  const isOwner = ctx.me.is_admin || detail.role === "owner";

  const put = async (username, role) => {
    try {
      await api("PUT", base + "/" + enc(username), { role });
      ctx.flash(t("members.saved", { username, role: t("role." + role) }), "ok");
    } catch (err) { ctx.flash(ctx.errorText(err)); }
    ctx.rerender();
  };

  const rows = members.map((m) => h("tr", { "data-test": "member-row", "data-username": m.username },
    h("td", null, m.username),
    h("td", null, isOwner
      ? roleSelect(m.role, { "data-test": "member-role", "aria-label": t("col.role") + ": " + m.username, onchange: (ev) => put(m.username, ev.target.value) })
      : t("role." + m.role)),
    h("td", null, isOwner ? h("button", {
      type: "button", class: "danger", "data-test": "member-remove",
      onclick: async () => {
        const sure = await confirmByName({
          title: t("members.remove_title", { username: m.username }), name: m.username, action: t("members.remove"),
          explain: t("members.remove_explain", { username: m.username, role: t("role." + m.role, {}, m.role), app }),
        });
        if (!sure) return;
        try {
          await api("DELETE", base + "/" + enc(m.username));
          ctx.flash(t("members.removed", { username: m.username }), "ok");
        } catch (err) { ctx.flash(ctx.errorText(err)); }
        ctx.rerender();
      },
    }, t("members.remove")) : null)));

  const username = h("input", { name: "username", required: true, placeholder: t("members.username"), "data-test": "member-username", list: "user-suggestions", autocomplete: "off" });
  const suggestions = h("datalist", { id: "user-suggestions" });
  username.addEventListener("input", async () => {
    const q = username.value.trim();
    if (q.length < 2) return;
    try {
      const found = await api("GET", "/users", undefined, { query: { q, limit: 10 } });
      replace(suggestions, (found.items || []).map((u) => h("option", { value: u.username }, u.display_name || "")));
    } catch { /* suggestions are a convenience */ }
  });
  const role = roleSelect("developer", { "data-test": "member-new-role", "aria-label": t("col.role") });
  const form = h("form", { class: "inline", onsubmit: (ev) => { ev.preventDefault(); put(username.value.trim(), role.value); } },
    username, suggestions, role, h("button", { type: "submit", class: "primary", "data-test": "member-add" }, t("members.add")));

  replace(view,
    h("p", { class: "crumbs" }, link("/apps", t("nav.apps")), " / ", link("/apps/" + enc(app), app), " / ", t("app.members")),
    h("h1", null, t("members.title", { app })),
    h("table", { "data-test": "members" },
      h("thead", null, h("tr", null, h("th", null, t("members.username")), h("th", null, t("col.role")), h("th", null, h("span", { class: "sr-only" }, t("col.actions"))))),
      h("tbody", null, rows)),
    isOwner ? h("section", { class: "card" }, h("h2", null, t("members.add_title")), form)
      : h("p", { class: "muted" }, t("members.owner_only")));
}
