// What a version runs, live: its pods per cluster (fetched again every 3 s while the page
// is open), its log (a streamed text/plain answer read with fetch and a ReadableStream
// reader, since EventSource cannot send the Authorization header) and the Kubernetes
// events of its objects, newest first.
import { api, getToken } from "../api.js";
import { h, replace } from "../dom.js";
import { timeEl } from "../dates.js";
import { t } from "../i18n.js";
import { field, reasonText } from "../ui.js";

const POD_MS = 3000;
const EVENTS_EVERY = 5;      // events every 5th tick (15 s): they change slowly and cost more
const KEEP_LINES = 20000;    // what is received (and downloaded): the newest lines
const SHOW_LINES = 2000;     // what is drawn at most

// Calls pods (and, less often, events) until the person leaves the page, then `leave`.
export function watch(ctx, { pods, events, leave }) {
  let tick = 0;
  const step = async () => {
    if (!ctx.alive()) { leave(); return; }
    try {
      await Promise.all([pods(), tick % EVENTS_EVERY === 0 ? events() : null]);
    } catch { /* each block shows its own failure; keep watching */ }
    tick += 1;
    setTimeout(step, POD_MS);
  };
  step();
}

function failure(el, err) {
  replace(el, h("div", { class: "error-box" }, err && err.status === 0 ? t("error.network") : (err.message || String(err))));
}

export async function podsBlock(vpath, el) {
  let answer;
  try {
    answer = await api("GET", vpath + "/pods");
  } catch (err) { failure(el, err); return; }
  const items = answer.items || [];
  const unreachable = answer.unreachable || [];
  replace(el,
    unreachable.length ? h("p", { class: "warn-text" }, t("version.unreachable", { clusters: unreachable.join(", ") })) : null,
    items.length
      ? h("table", null,
          h("thead", null, h("tr", null, ["col.cluster", "col.pod", "col.phase", "col.ready", "col.restarts", "col.reason", "col.started"]
            .map((k) => h("th", null, t(k))))),
          h("tbody", null, items.map((p) => h("tr", { "data-test": "pod-row", "data-name": p.name, "data-cluster": p.cluster,
            class: p.ready ? "" : "not-ready" },
            h("td", null, p.cluster),
            h("td", { class: "mono" }, p.name),
            h("td", null, p.phase || ""),
            h("td", { "data-test": "pod-ready" }, p.ready ? t("version.yes") : t("version.no")),
            h("td", null, String(p.restarts ?? 0)),
            h("td", { class: "wrap" }, p.reason ? [h("strong", null, reasonText(p.reason)),
              reasonText(p.reason) !== p.reason ? h("small", { class: "muted" }, " (" + p.reason + ")") : null] : ""),
            h("td", null, timeEl(p.started_at, { rel: true }))))))
      : h("p", { class: "muted", "data-test": "no-pods" }, t("version.no_pods")));
}

export async function eventsBlock(app, service, version, el) {
  let answer;
  try {
    answer = await api("GET", "/apps/" + encodeURIComponent(app) + "/events", undefined, { query: { service, version } });
  } catch (err) { failure(el, err); return; }
  const items = [...(answer.items || [])].sort((a, b) => String(b.last_seen || "").localeCompare(String(a.last_seen || "")));
  replace(el, items.length
    ? h("table", null,
        h("thead", null, h("tr", null, ["col.last_seen", "col.cluster", "col.type", "col.reason", "col.object", "col.message", "col.count"]
          .map((k) => h("th", null, t(k))))),
        h("tbody", null, items.map((e) => h("tr", { "data-test": "event-row", "data-type": e.type, class: e.type === "Warning" ? "warning" : "" },
          h("td", null, timeEl(e.last_seen, { rel: true })),
          h("td", null, e.cluster),
          h("td", null, t("event_type." + e.type, {}, e.type)),
          h("td", null, e.reason || ""),
          h("td", { class: "mono" }, e.object),
          h("td", { class: "wrap" }, e.message || ""),
          h("td", null, String(e.count ?? 1))))))
    : h("p", { class: "muted" }, t("version.no_events")));
}

// The log panel. Pause stops drawing but keeps receiving (the lines are buffered and shown
// on resume, and are in the download); the search box filters what is drawn.
export function logsPanel(vpath, nameParts, running) {
  let received = [];
  let controller = null;
  let paused = false;
  const box = h("pre", { class: "log", "data-test": "log-lines", tabindex: 0 });
  const status = h("p", { class: "muted small", "data-test": "log-status", "aria-live": "polite" },
    running.length ? t("logs.idle") : t("logs.no_cluster"));
  const count = h("span", { class: "muted small", "data-test": "log-count" });
  const cluster = h("select", { "data-test": "log-cluster" }, running.map((s) =>
    h("option", { value: s.cluster, selected: s === (running.find((r) => r.env === "test") || running[0]) },
      s.cluster + (s.env ? " (" + t("env." + s.env, {}, s.env) + ")" : ""))));
  const search = h("input", { type: "search", "data-test": "log-search", placeholder: t("logs.search_placeholder") });
  const follow = h("button", { type: "button", class: "primary", "data-test": "log-follow", disabled: !running.length });
  const pause = h("button", { type: "button", "data-test": "log-pause" });
  const download = h("button", { type: "button", "data-test": "log-download" }, t("logs.download"));

  const matches = (line) => {
    const q = search.value.trim().toLowerCase();
    return !q || line.toLowerCase().includes(q);
  };
  const lineEl = (line) => h("span", { class: "line" }, line, "\n");
  const drawCount = () => {
    const shown = received.filter(matches).length;
    replace(count, t("logs.count", { shown: Math.min(shown, SHOW_LINES), total: received.length }));
  };
  const redraw = () => {
    replace(box, received.filter(matches).slice(-SHOW_LINES).map(lineEl));
    box.scrollTop = box.scrollHeight;
    drawCount();
  };
  const drawButtons = () => {
    replace(follow, controller ? t("logs.stop") : t("logs.follow"));
    replace(pause, paused ? t("logs.resume") : t("logs.pause"));
    pause.setAttribute("aria-pressed", paused ? "true" : "false");
  };
  const setStatus = (text, bad) => { replace(status, text); status.className = bad ? "warn-text small" : "muted small"; };

  const add = (line) => {
    received.push(line);
    if (received.length > KEEP_LINES + 1000) received = received.slice(-KEEP_LINES);
    if (paused || !matches(line)) return;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    box.appendChild(lineEl(line));
    while (box.childNodes.length > SHOW_LINES) box.removeChild(box.firstChild);
    if (atBottom) box.scrollTop = box.scrollHeight;
  };

  const stop = () => {
    if (controller) controller.abort();
    controller = null;
    drawButtons();
  };

  const start = async () => {
    stop();
    received = [];
    redraw();
    const mine = new AbortController();
    controller = mine;
    drawButtons();
    setStatus(t("logs.following"));
    const headers = { Accept: "text/plain" };
    const token = getToken();
    if (token) headers.Authorization = "Bearer " + token;
    const query = new URLSearchParams({ cluster: cluster.value, tail: "200", follow: "1" });
    try {
      const resp = await fetch("/api/v1" + vpath + "/logs?" + query, { headers, cache: "no-store", signal: mine.signal });
      if (!resp.ok) {
        let message = t("error.status", { status: resp.status });
        try { message = (await resp.json()).error.message || message; } catch { /* not JSON: the status says it */ }
        setStatus(message, true);
        return;
      }
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let rest = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += decoder.decode(value, { stream: true });
        const parts = rest.split("\n");
        rest = parts.pop();
        for (const part of parts) add(part.replace(/\r$/, ""));
        drawCount();
      }
      rest += decoder.decode();
      if (rest) add(rest);
      setStatus(t("logs.ended"));
    } catch (err) {
      if (mine.signal.aborted) setStatus(t("logs.stopped"));
      else setStatus(t("error.network"), true);
    } finally {
      if (controller === mine) controller = null;
      drawButtons();
      drawCount();
    }
  };

  follow.addEventListener("click", () => (controller ? stop() : start()));
  pause.addEventListener("click", () => {
    paused = !paused;
    if (!paused) redraw();
    drawButtons();
    if (paused) setStatus(t("logs.paused_note"));
    else if (controller) setStatus(t("logs.following"));
  });
  search.addEventListener("input", redraw);
  download.addEventListener("click", () => {
    const blob = new Blob([received.join("\n") + (received.length ? "\n" : "")], { type: "text/plain;charset=utf-8" });
    const a = h("a", { href: URL.createObjectURL(blob), download: [...nameParts, cluster.value || "logs"].join("-") + ".txt" });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  });
  drawButtons();
  drawCount();

  const el = h("div", null,
    h("div", { class: "inline" }, field(t("col.cluster"), cluster), follow, pause,
      field(t("logs.search"), search), download, count),
    status, box);
  return { el, stop };
}
