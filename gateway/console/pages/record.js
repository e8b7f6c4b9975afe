// A deploy record: per-cluster state, replica counts, the reason in plain words, and
// the log. While the record is unfinished it is fetched again every second (polling,
// by design: simple, and it survives gateway restarts); the log is read incrementally
// with ?after=. Polling stops when the record finishes or the person leaves the page.
import { api, newRequestKey } from "../api.js";
import { enc, h, link, replace } from "../dom.js";
import { fmt } from "../dates.js";
import { t } from "../i18n.js";
import { FINISHED, badge, reasonText, replicasText } from "../ui.js";

const POLL_MS = 1000;

export function rollbackButton(record, ctx) {
  const key = newRequestKey();  // pressing again after a lost answer cannot roll back twice
  return h("button", {
    type: "button", "data-test": "rollback",
    onclick: async (ev) => {
      if (!confirm(t("record.rollback_confirm", { id: record.id }))) return;
      ev.target.disabled = true;
      try {
        const answer = await api("POST", "/records/" + enc(record.id) + "/rollback", undefined,
          { headers: { "Idempotency-Key": key } });
        ctx.flash(t("record.rollback_started", { id: answer.record_id }), "ok");
        location.hash = "#/records/" + enc(answer.record_id);
      } catch (err) {
        ev.target.disabled = false;
        ctx.flash(ctx.errorText(err));
      }
    },
  }, t("record.rollback"));
}

export async function render(view, params, ctx) {
  const id = params.id;
  const head = h("div");
  const targets = h("div");
  const logBox = h("pre", { class: "log", "data-test": "log" });
  const polling = h("p", { class: "muted", "data-test": "polling" });
  let after = null;
  let record = await api("GET", "/records/" + enc(id));

  replace(view, head, targets, h("section", { class: "card" }, h("h2", null, t("record.log")), logBox), polling);

  const draw = () => {
    replace(head,
      h("p", { class: "crumbs" }, link("/apps", t("nav.apps")), " / ", link("/apps/" + enc(record.app), record.app), " / ",
        t("record.title", { id: record.id })),
      h("h1", null, t("action." + record.action, {}, record.action), " ",
        [record.service, record.version].filter(Boolean).join(" / "), " ",
        h("span", { "data-test": "record-status" }, badge(record.status))),
      h("p", { class: "muted" }, t("record.by", { who: record.created_by || "?", when: fmt(record.created_at) }),
        record.finished_at ? " · " + t("record.finished", { when: fmt(record.finished_at) }) : ""),
      record.status === "succeeded" ? rollbackButton(record, ctx) : null);
    replace(targets, h("section", { class: "card" }, h("h2", null, t("record.targets")),
      h("table", null,
        h("thead", null, h("tr", null, ["col.cluster", "col.env", "col.status", "col.replicas", "col.reason"].map((k) => h("th", null, t(k))))),
        h("tbody", null, (record.targets || []).map((tg) => h("tr", { "data-test": "target", "data-cluster": tg.cluster },
          h("td", null, tg.cluster),
          h("td", null, t("env." + tg.env, {}, tg.env || "")),
          h("td", null, badge(tg.status)),
          h("td", { "data-test": "replicas" }, replicasText(tg.replicas)),
          h("td", { class: "wrap", "data-test": "reason" },
            tg.reason ? h("strong", null, reasonText(tg.reason)) : null,
            tg.reason && reasonText(tg.reason) !== tg.reason ? h("small", { class: "muted" }, " (" + tg.reason + ")") : null,
            tg.message ? h("div", { class: "muted" }, tg.message) : null)))))));
    replace(polling, FINISHED.has(record.status) ? t("record.done") : t("record.polling"));
  };

  const readLogs = async () => {
    // A bounded number of pages per tick, so a huge log cannot freeze the page.
    for (let i = 0; i < 20; i++) {
      const page = await api("GET", "/records/" + enc(id) + "/logs", undefined, { query: { after } });
      for (const line of page.items || []) {
        logBox.appendChild(h("span", { class: "line l-" + String(line.level || "info").toLowerCase().replace(/[^a-z]/g, "") },
          h("span", { class: "muted" }, fmt(line.time, "clock") + " "),
          line.cluster ? h("span", { class: "cluster" }, "[" + line.cluster + "] ") : null,
          line.line, "\n"));
      }
      if (page.next_after !== undefined && page.next_after !== null) after = page.next_after;
      if (!(page.items || []).length) break;
    }
  };

  draw();
  await readLogs().catch((err) => ctx.flash(ctx.errorText(err)));
  while (!FINISHED.has(record.status)) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    if (!ctx.alive()) return;
    try {
      record = await api("GET", "/records/" + enc(id));
      await readLogs();
    } catch (err) {
      // A blip (gateway restart, network) should not end the watch: say so and go on.
      ctx.flash(ctx.errorText(err));
      continue;
    }
    if (!ctx.alive()) return;
    draw();
  }
  // Lines written just before the record finished.
  if (ctx.alive()) await readLogs().catch(() => {});
}
