// The one confirmation every destructive action uses (delete an app or a version, retire,
// remove a member, revoke a token): a modal <dialog> that says what will happen and where,
// and acts only once the thing's name is typed. Escape, Cancel or leaving the page do
// nothing; focus goes back to the button that opened it.
import { h } from "./dom.js";
import { t } from "./i18n.js";

// Resolves true once `name` is typed and confirmed, false otherwise. `explain` is the
// sentence saying what happens on which clusters; `tests` renames the data-test hooks
// (box, explain, input, confirm) for pages whose tests already know theirs.
export function confirmByName({ title, explain, name, action, tests = {} }) {
  const opener = document.activeElement;
  const hook = (part) => tests[part] || "confirm-" + (part === "input" ? "name" : part);
  const inputId = "confirm-name-" + Math.random().toString(36).slice(2, 10);
  const typed = h("input", { id: inputId, autocomplete: "off", spellcheck: "false", "data-test": hook("input") });
  const ok = h("button", { type: "submit", class: "danger", disabled: true, "data-test": hook("confirm") }, action);
  const cancel = h("button", { type: "button", "data-test": "confirm-cancel" }, t("confirm.cancel"));
  const titleId = inputId + "-title";
  const explainId = inputId + "-explain";
  const form = h("form", { method: "dialog" },
    h("h2", { id: titleId }, title),
    h("p", { id: explainId, "data-test": hook("explain") }, explain),
    h("label", { class: "field", for: inputId }, h("span", null, t("confirm.type", { name })), typed),
    h("p", { class: "inline-buttons" }, ok, cancel));
  const dialog = h("dialog", { class: "confirm", "aria-labelledby": titleId, "aria-describedby": explainId,
                               "data-test": hook("box") }, form);
  const matches = () => typed.value.trim() === name;
  typed.addEventListener("input", () => { ok.disabled = !matches(); });
  return new Promise((resolve) => {
    let answer = false;
    const leave = () => dialog.close();
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (!matches()) return;
      answer = true;
      dialog.close();
    });
    cancel.addEventListener("click", () => dialog.close());
    window.addEventListener("hashchange", leave, { once: true });
    dialog.addEventListener("close", () => {
      window.removeEventListener("hashchange", leave);
      dialog.remove();
      if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
      resolve(answer);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    typed.focus();
  });
}

