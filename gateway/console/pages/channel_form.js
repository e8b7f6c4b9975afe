// The form that adds a notification channel (Feishu, DingTalk, webhook) with the events
// it hears: an application's channels (./channels.js) and the platform admins' (./admin.js).
import { api } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { field } from "../ui.js";

export function channelForm(path, events, checkedByDefault, ctx) {
  const name = h("input", { required: true, maxlength: 100, "data-test": "channel-name" });
  const type = h("select", { "data-test": "channel-type" }, ["feishu", "dingtalk", "webhook"].map((x) => h("option", { value: x }, t("channel." + x))));
  const url = h("input", { required: true, type: "url", placeholder: "https://", "data-test": "channel-url" });
  const secret = h("input", { type: "password", autocomplete: "off" });
  const checks = events.map((e) => h("input", { type: "checkbox", value: e, checked: checkedByDefault(e) }));
  return h("form", {
    class: "grid",
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await api("POST", path, { name: name.value.trim(), type: type.value, url: url.value.trim(),
          secret: secret.value || undefined, events: checks.filter((c) => c.checked).map((c) => c.value) });
        ctx.flash(t("channels.created"), "ok");
        ctx.rerender();
      } catch (err) { ctx.flash(ctx.errorText(err)); }
    },
  }, field(t("col.name"), name), field(t("channels.type"), type), field("URL", url), field(t("channels.secret"), secret),
     h("div", { class: "field" }, h("span", null, t("channels.events")),
       checks.map((c) => h("label", { class: "check" }, c, t("event." + c.value)))),
     h("button", { type: "submit", class: "primary", "data-test": "channel-add" }, t("channels.add")));
}
