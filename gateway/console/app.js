// The console's shell: a tiny hash router, the top bar, login state and messages.
// Pages are modules exporting `render(view, params, ctx)`; ctx carries what every page
// needs (the caller, a flash function, and `alive()` which turns false once the
// person has navigated away, so pollers stop by themselves).

import { api, ApiError, clearToken, getToken, setToken, setUnauthorizedHandler, takeLoginState } from "./api.js";
import { h, link, replace } from "./dom.js";
import { getLang, setLang, t } from "./i18n.js";
import * as appsPage from "./pages/apps.js";
import * as appPage from "./pages/app.js";
import * as clustersPage from "./pages/clusters.js";
import * as deployPage from "./pages/deploy.js";
import * as loginPage from "./pages/login.js";
import * as membersPage from "./pages/members.js";
import * as channelsPage from "./pages/channels.js";
import * as ingressesPage from "./pages/ingresses.js";
import * as ciPage from "./pages/ci.js";
import * as templatesPage from "./pages/templates.js";
import * as recordPage from "./pages/record.js";
import * as versionPage from "./pages/version.js";
import * as serversPage from "./pages/servers.js";
import * as cliPage from "./pages/cli.js";
import * as accountPage from "./pages/account.js";
import * as adminPage from "./pages/admin.js";

const ROUTES = [
  [/^\/login$/, loginPage, []],
  [/^\/apps$/, appsPage, []],
  [/^\/apps\/([^/]+)$/, appPage, ["app"]],
  [/^\/apps\/([^/]+)\/members$/, membersPage, ["app"]],
  [/^\/apps\/([^/]+)\/channels$/, channelsPage, ["app"]],
  [/^\/apps\/([^/]+)\/ingresses$/, ingressesPage, ["app"]],
  [/^\/apps\/([^/]+)\/ingresses\/([^/]+)$/, ingressesPage, ["app", "ing"]],
  [/^\/apps\/([^/]+)\/services\/([^/]+)\/ci$/, ciPage, ["app", "service"]],
  [/^\/apps\/([^/]+)\/templates$/, templatesPage, ["app"]],
  [/^\/templates$/, templatesPage, []],
  [/^\/apps\/([^/]+)\/services\/([^/]+)\/versions\/([^/]+)\/deploy$/, deployPage, ["app", "service", "version"]],
  [/^\/apps\/([^/]+)\/services\/([^/]+)\/versions\/([^/]+)$/, versionPage, ["app", "service", "version"]],
  [/^\/records\/([^/]+)$/, recordPage, ["id"]],
  [/^\/clusters$/, clustersPage, []],
  [/^\/servers$/, serversPage, []],
  [/^\/cli$/, cliPage, []],
  [/^\/account$/, accountPage, []],
  [/^\/admin$/, adminPage, []],
];

const state = { me: null, generation: 0 };

// The OAuth callback hands the token over in the fragment (#/login?token=...). Take it
// and remove it from the address bar and history at once, before anything else runs.
// Only a login this tab started (its state in sessionStorage) is taken; any other token
// handed over in a link is dropped unused (login CSRF).
function takeTokenFromUrl() {
  const hash = location.hash || "";
  const q = hash.indexOf("?");
  if (!hash.startsWith("#/login") || q < 0) return;
  const params = new URLSearchParams(hash.slice(q + 1));
  const token = params.get("token");
  if (!token) return;
  const expected = takeLoginState();
  if (!expected || params.get("state") !== expected) {
    history.replaceState(null, "", location.pathname + "#/login");
    state.refusedLogin = true;
    return;
  }
  setToken(token);
  history.replaceState(null, "", location.pathname + afterLogin());
}

// Where to go once logged in: back to a pending `mae login` page, else the apps.
function afterLogin() {
  const pending = sessionStorage.getItem(cliPage.PENDING_KEY);
  return pending && pending.startsWith("#/cli?") ? pending : "#/apps";
}

export function flash(message, kind = "error") {
  const el = document.getElementById("flash");
  if (!message) { el.hidden = true; return; }
  replace(el, h("span", null, message), h("button", { type: "button", class: "link", "aria-label": t("flash.close"), onclick: () => { el.hidden = true; } }, "×"));
  el.className = "flash " + kind;
  el.hidden = false;
}

// The words to show for a failed call: the API's own message when it gave one.
export function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return t("error.network");
    return err.message || t("error.status", { status: err.status });
  }
  return String(err && err.message ? err.message : err);
}

function parseHash() {
  let path = (location.hash || "").replace(/^#/, "");
  const q = path.indexOf("?");
  const query = new URLSearchParams(q >= 0 ? path.slice(q + 1) : "");
  if (q >= 0) path = path.slice(0, q);
  return { path: path || "/apps", query };
}

async function loadMe() {
  if (!getToken()) { state.me = null; return; }
  try {
    state.me = await api("GET", "/me");
  } catch (err) {
    state.me = null;
    if (!(err instanceof ApiError && err.status === 401)) flash(errorText(err));
  }
}

function renderChrome() {
  document.documentElement.lang = getLang() === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  const nav = document.getElementById("nav");
  const items = [];
  if (state.me) {
    items.push(link("/apps", t("nav.apps")), link("/clusters", t("nav.clusters")));
    if (state.me.is_admin) items.push(link("/servers", t("nav.servers")), link("/admin", t("nav.admin")));
    items.push(link("/account", t("nav.account")));
  }
  replace(nav, items);
  const current = "#" + parseHash().path;
  for (const a of nav.querySelectorAll("a")) {
    if (current.startsWith(a.getAttribute("href"))) a.classList.add("active");
  }
  replace(document.getElementById("lang"), t("lang.toggle"));
  const who = document.getElementById("who");
  replace(who, state.me ? (state.me.display_name || state.me.username) + (state.me.is_admin ? " · " + t("admin") : "") : "");
  const logout = document.getElementById("logout");
  logout.hidden = !state.me;
  replace(logout, t("nav.logout"));
}

async function route() {
  const generation = ++state.generation;
  const { path, query } = parseHash();
  if (!state.me && path !== "/login") {
    if (path === "/cli") sessionStorage.setItem(cliPage.PENDING_KEY, location.hash);
    location.hash = "#/login";
    return;
  }
  renderChrome();
  // Each route renders into a container of its own: a page still awaiting the API when the
  // person moved on writes into a detached node, never over the page that replaced it.
  const view = h("div", { class: "page-view" });
  replace(document.getElementById("view"), view);
  for (const [pattern, page, names] of ROUTES) {
    const m = pattern.exec(path);
    if (!m) continue;
    const params = {};
    names.forEach((name, i) => { params[name] = decodeURIComponent(m[i + 1]); });
    const ctx = {
      me: state.me, query, flash, errorText,
      alive: () => generation === state.generation,
      rerender: () => route(),
      onLogin: async () => {
        await loadMe();
        const next = afterLogin();
        if (location.hash === next) route(); else location.hash = next;
      },
    };
    replace(view, h("p", { class: "muted" }, t("loading")));
    try {
      await page.render(view, params, ctx);
    } catch (err) {
      if (generation !== state.generation) return;
      replace(view, h("div", { class: "error-box", "data-test": "page-error" }, errorText(err)));
    }
    return;
  }
  replace(view, h("div", { class: "error-box" }, t("error.no_page")));
}

async function start() {
  takeTokenFromUrl();
  setUnauthorizedHandler(() => {
    clearToken();
    state.me = null;
    flash(t("error.session"));
    if (!location.hash.startsWith("#/login")) location.hash = "#/login";
  });
  document.getElementById("lang").addEventListener("click", () => {
    setLang(getLang() === "zh" ? "en" : "zh");
    route();
  });
  document.getElementById("logout").addEventListener("click", async () => {
    // The session ends on the server too (a copied token stops working), then here.
    try { await api("POST", "/auth/logout"); } catch (_err) { /* ended or unreachable: forget it anyway */ }
    clearToken();
    state.me = null;
    flash(null);
    location.hash = "#/login";
  });
  window.addEventListener("hashchange", () => { flash(null); route(); });
  await loadMe();
  route();
  if (state.refusedLogin) flash(t("login.not_started_here"));
}

start();
