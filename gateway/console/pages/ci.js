// A service's CI hand-off (#/apps/{app}/services/{svc}/ci): link it to a Drone
// repository, show the link's own webhook address in full (to paste into Drone), unlink,
// the recent builds, and a build of a branch on demand. Secrets are sent, never shown.
// Linking is for maintainers, a build for developers (gateway/rbac.py): the others see
// the link and the builds without those controls.
import { api } from "../api.js";
import { enc, h, link, replace } from "../dom.js";
import { timeEl } from "../dates.js";
import { t } from "../i18n.js";
import { badge, field, mayAct, section } from "../ui.js";

export async function render(view, params, ctx) {
  const { app, service } = params;
  const path = "/apps/" + enc(app) + "/services/" + enc(service);
  const detail = await api("GET", "/apps/" + enc(app));
  const may = { link: mayAct(ctx, detail.role, "maintainer"), build: mayAct(ctx, detail.role, "developer") };
  let current = null;
  try {
    current = await api("GET", path + "/ci");
  } catch (err) {
    if (err.status !== 404) throw err;  // 404: not linked yet (or no such service: the form then says so)
  }
  const note = !may.build ? "ci.viewer_note" : !may.link ? "ci.link_note" : null;
  replace(view,
    h("p", { class: "crumbs" }, link("/apps", t("nav.apps")), " / ", link("/apps/" + enc(app), app), " / ",
      service, " / ", t("ci.title_short")),
    h("h1", null, t("ci.title", { service })),
    current ? linkCard(path, current, may.link, ctx) : h("p", { class: "muted", "data-test": "ci-unlinked" }, t("ci.none")),
    note ? h("p", { class: "muted", "data-test": "viewer-note" }, t(note)) : null,
    may.link ? h("section", { class: "card" }, h("h2", null, current ? t("ci.relink") : t("ci.link")), linkForm(path, current, ctx))
             : null,
    current ? await section(t("ci.builds"), () => buildsBlock(path, may.build, ctx), { "data-test": "ci-builds" }) : null);
}

function linkCard(path, current, canUnlink, ctx) {
  const url = location.origin + current.webhook_url;
  return h("section", { class: "card", "data-test": "ci-link" },
    h("h2", null, t("ci.linked")),
    h("p", null, t("ci.webhook_help")),
    h("p", null, h("code", { class: "mono wrap", "data-test": "ci-webhook-url" }, url), " ",
      h("button", { type: "button", class: "small", onclick: async () => {
        try { await navigator.clipboard.writeText(url); ctx.flash(t("ci.copied"), "ok"); }
        catch { ctx.flash(t("ci.copy_failed")); }
      } }, t("ci.copy"))),
    h("dl", null,
      [["ci.server", current.server], ["ci.repo", current.repo], ["col.image", current.image],
       ["ci.auto_deploy_env", current.auto_deploy_env ? t("env." + current.auto_deploy_env) : t("ci.no_auto_deploy")],
       ["ci.auto_route", current.auto_route ? t("ci.yes") : t("ci.no")],
       ["col.created_by", current.updated_by || ""], ["col.time", timeEl(current.updated_at)]]
        .map(([k, v]) => [h("dt", null, t(k)), h("dd", { "data-test": "ci-" + k.split(".")[1] }, v)])),
    canUnlink ? h("button", { type: "button", class: "danger", "data-test": "ci-unlink", onclick: async () => {
      if (!confirm(t("ci.unlink_confirm"))) return;
      try { await api("DELETE", path + "/ci"); ctx.flash(t("ci.unlinked"), "ok"); ctx.rerender(); }
      catch (err) { ctx.flash(ctx.errorText(err)); }
    } }, t("ci.unlink")) : null);
}

function linkForm(path, current, ctx) {
  const c = current || {};
  const provider = h("select", { "data-test": "ci-provider" }, h("option", { value: "drone" }, "Drone"));
  const server = h("input", { required: true, type: "url", value: c.server || "", placeholder: "https://drone.example.com", "data-test": "ci-server" });
  const repo = h("input", { required: true, value: c.repo || "", placeholder: "team/web", "data-test": "ci-repo" });
  const token = h("input", { required: true, type: "password", autocomplete: "off", "data-test": "ci-token" });
  const image = h("input", { required: true, value: c.image || "", placeholder: "registry/team/web", "data-test": "ci-image" });
  const secret = h("input", { type: "password", autocomplete: "off", required: !current, minlength: 16,
    placeholder: current ? t("ci.secret_keep") : "", "data-test": "ci-secret" });
  const env = h("select", { "data-test": "ci-auto-env" }, ["", "test", "prod"].map((e) =>
    h("option", { value: e, selected: (c.auto_deploy_env || "") === e }, e ? t("env." + e) : t("ci.no_auto_deploy"))));
  const route = h("input", { type: "checkbox", checked: !!c.auto_route, "data-test": "ci-auto-route" });
  return h("form", {
    class: "grid",
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { provider: provider.value, server: server.value.trim(), repo: repo.value.trim(), token: token.value,
                     image: image.value.trim(), auto_deploy_env: env.value || null, auto_route: route.checked };
      if (secret.value) body.webhook_secret = secret.value;
      try {
        await api("PUT", path + "/ci", body);
        ctx.flash(t("ci.saved"), "ok");
        ctx.rerender();
      } catch (err) { ctx.flash(ctx.errorText(err)); }
    },
  }, field(t("ci.provider"), provider), field(t("ci.server"), server), field(t("ci.repo"), repo),
     field(t("ci.token"), token), field(t("col.image"), image), field(t("ci.webhook_secret"), secret),
     field(t("ci.auto_deploy_env"), env), h("label", { class: "check" }, route, t("ci.auto_route")),
     h("button", { type: "submit", class: "primary", "data-test": "ci-save" }, t("ci.save")));
}

async function buildsBlock(path, canBuild, ctx) {
  const ref = h("input", { required: true, value: "main", "data-test": "ci-ref" });
  const form = h("form", {
    class: "inline",
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const build = await api("POST", path + "/builds", { ref: ref.value.trim() });
        ctx.flash(t("ci.build_started", { number: build.number }), "ok");
        ctx.rerender();
      } catch (err) { ctx.flash(ctx.errorText(err)); }
    },
  }, field(t("ci.branch"), ref), h("button", { type: "submit", "data-test": "ci-build" }, t("ci.build")));
  let list;
  try {
    const builds = (await api("GET", path + "/builds")).items || [];
    list = builds.length
      ? h("table", null,
          h("thead", null, h("tr", null, ["ci.number", "col.status", "ci.branch", "ci.commit", "col.time"].map((k) => h("th", null, t(k))))),
          h("tbody", null, builds.map((b) => h("tr", { "data-test": "build-row" },
            h("td", null, "#" + b.number), h("td", null, badge(b.status)), h("td", { class: "mono" }, b.ref || ""),
            h("td", { class: "mono small wrap" }, (b.commit || "").slice(0, 10), " ", b.message || ""),
            h("td", null, timeEl(b.created_at, { rel: true }))))))
      : h("p", { class: "muted" }, t("ci.no_builds"));
  } catch (err) {
    list = h("div", { class: "error-box" }, ctx.errorText(err));  // the CI is down: say so, keep the page
  }
  return h("div", null, list, canBuild ? form : null);
}
