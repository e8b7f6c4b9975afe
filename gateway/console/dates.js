// Every date and time the console shows, in the chosen language (not the browser's):
// unambiguous dates ("3 Dec 2026, 17:21" / "2026年12月3日 17:21"), relative times where
// recency matters ("2 min ago" / "2分钟前") with the exact time on hover, and a date field
// whose parts follow the language (Chromium's <input type=date> keeps the browser's
// mm/dd/yyyy whatever the page's lang says).
import { h } from "./dom.js";
import { getLang, t } from "./i18n.js";

export function locale() { return getLang() === "zh" ? "zh-CN" : "en-GB"; }

const DATE = { day: "numeric", month: "short", year: "numeric" };
const STYLES = {
  datetime: { ...DATE, hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
  // A calendar day (a server's expiry): the day the server counts, in UTC.
  date: { ...DATE, timeZone: "UTC" },
  clock: { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" },
  exact: { ...DATE, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short" },
};

function parse(value) {
  if (value === undefined || value === null || value === "") return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

// `style`: datetime (default), date, clock (hh:mm:ss) or exact (with seconds and zone).
export function fmt(value, style = "datetime") {
  const d = parse(value);
  if (!d) return value ? String(value) : "";
  return new Intl.DateTimeFormat(locale(), STYLES[style] || STYLES.datetime).format(d);
}

const UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]];

// "2 min ago", "in 3 days", "now": the largest whole unit.
export function relative(value, now = Date.now()) {
  const d = parse(value);
  if (!d) return "";
  const seconds = Math.round((d.getTime() - now) / 1000);
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: "auto", style: "short" });
  if (Math.abs(seconds) < 45) return rtf.format(0, "second");
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return rtf.format(Math.trunc(seconds / size), unit);
  }
  return rtf.format(Math.round(seconds / 60), "minute");
}

// A <time> element: the date (or, with `relative: true`, how long ago) as its text, the
// machine-readable instant in `datetime` and the exact time in `title` for a hover.
export function timeEl(value, { style = "datetime", rel = false, fallback = "" } = {}) {
  const d = parse(value);
  if (!d) return fallback;
  return h("time", { datetime: style === "date" ? d.toISOString().slice(0, 10) : d.toISOString(),
                     title: fmt(d, style === "date" ? "date" : "exact"), "data-rel": rel ? "true" : null },
    rel ? relative(d) : fmt(d, style));
}

// Relative times shown stay true while the page is open.
setInterval(() => {
  for (const el of document.querySelectorAll("time[data-rel=true]")) {
    const text = relative(el.getAttribute("datetime"));
    if (el.textContent !== text) el.textContent = text;
  }
}, 30000);

// The parts of a date field in the language's order (day month year / 年 月 日).
function partOrder() {
  return new Intl.DateTimeFormat(locale(), DATE).formatToParts(new Date(2026, 11, 3))
    .map((p) => p.type).filter((type) => ["day", "month", "year"].includes(type));
}

// A date field: day, month (named in the language) and year, in the language's order,
// inside a fieldset labelled `label`. `.value` is "YYYY-MM-DD" or "" (nothing given);
// an incomplete or impossible date is refused by the form (custom validity).
export function dateField(label, attrs = {}) {
  const monthNames = new Intl.DateTimeFormat(locale(), { month: "short" });
  const parts = {
    day: h("input", { type: "number", min: 1, max: 31, class: "date-day", "aria-label": t("date.day"), "data-part": "day",
                      placeholder: t("date.day_ph") }),
    month: h("select", { class: "date-month", "aria-label": t("date.month"), "data-part": "month" },
      h("option", { value: "" }, t("date.month_ph")),
      Array.from({ length: 12 }, (_, i) => h("option", { value: String(i + 1) }, monthNames.format(new Date(2026, i, 1))))),
    year: h("input", { type: "number", min: 1970, max: 9999, class: "date-year", "aria-label": t("date.year"), "data-part": "year",
                       placeholder: t("date.year_ph") }),
  };
  const read = () => {
    const [y, m, d] = [parts.year.value, parts.month.value, parts.day.value].map((v) => String(v).trim());
    if (!y && !m && !d) return { value: "" };
    const date = new Date(Number(y), Number(m) - 1, Number(d));
    if (!y || !m || !d || date.getFullYear() !== Number(y) || date.getMonth() !== Number(m) - 1 || date.getDate() !== Number(d)) {
      return { value: "", error: t("date.invalid") };
    }
    return { value: [y.padStart(4, "0"), m.padStart(2, "0"), d.padStart(2, "0")].join("-") };
  };
  const check = () => { parts.day.setCustomValidity(read().error || ""); };
  for (const el of Object.values(parts)) { el.addEventListener("input", check); el.addEventListener("change", check); }
  const box = h("fieldset", { class: "field date-field", lang: locale(), ...attrs },
    h("legend", null, label), h("span", { class: "date-parts" }, partOrder().map((p) => parts[p])));
  Object.defineProperty(box, "value", { get: () => read().value });
  return box;
}
