// Clusters and their health (any user may list them; only admins change them).
import { listAll } from "../api.js";
import { h, replace } from "../dom.js";
import { fmtTime, t } from "../i18n.js";

export async function render(view, _params, _ctx) {
  const clusters = await listAll("/clusters");
  replace(view,
    h("h1", null, t("clusters.title")),
    clusters.length
      ? h("table", { "data-test": "clusters" },
          h("thead", null, h("tr", null, ["col.name", "col.env", "clusters.server", "clusters.health", "clusters.last_report"].map((k) => h("th", null, t(k))))),
          h("tbody", null, clusters.map((c) => h("tr", { "data-test": "cluster-row", "data-name": c.name },
            h("td", null, c.name),
            h("td", null, t("env." + c.env, {}, c.env || "")),
            h("td", { class: "mono small" }, c.server || ""),
            h("td", null, h("span", { class: "badge " + (c.healthy ? "s-succeeded" : "s-failed"), "data-healthy": String(!!c.healthy) },
              c.healthy ? t("clusters.healthy") : t("clusters.unhealthy"))),
            h("td", null, c.last_report_at ? fmtTime(c.last_report_at) : t("clusters.never"))))))
      : h("p", { class: "muted" }, t("clusters.none")));
}
