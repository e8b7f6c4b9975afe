"""Browser scenarios for tests/e2e/test_console_polish.py (issue 26, "what a person sees at a
glance"), run in a process of their own like ``console_scenarios.py``:

    python -m tests.e2e.console_polish_scenarios NAME   < args.json

Every page is looked at in Chromium at 1400×900, in English and Chinese, with the browser's
clock zone set to UTC (so the test can say which day and hour a date must read); what a
scenario saw is returned as JSON and judged by the test. Screenshots go to docs/screenshots
(MAE_SCREENSHOTS), the destructive actions' dialogs are in ``console_confirm_scenarios``.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.e2e.console_scenarios import _axe, chromium, open_page, paste_login

VIEW = {"width": 1400, "height": 900}
LOCALES = (("en", "en-US"), ("zh", "zh-CN"))
SHOTS = Path(os.environ.get("MAE_SCREENSHOTS", "docs/screenshots")).resolve()

# What a person must never read: an i18n key left untranslated (`role.admin`,
# `event.deploy.failed`: lowercase words joined by one or two dots, each part two letters or
# more — so `e.g.` is not one), or a missing value. Hostnames, image refs, versions and file
# names have dots too: `nginx:1.27`, `v1.2` (digits), `www.shop.example.test` (three dots) never
# match the shape, and `hooks.example.test` or `deploy.yaml` end in a domain or file ending;
# user names (`mei.chen`) are the data the test made (``allowed``). One of the console's own
# keys (`col.cluster`, `env.test`) always counts, whatever it ends with.
RAW_WORDS = r"""() => {
  const KEY = /^[a-z][a-z_]+(\.[a-z][a-z0-9_]+){1,2}$/;
  const ENDINGS = new Set(["com", "net", "org", "io", "cn", "dev", "test", "local", "internal", "example", "svc",
    "cluster", "yaml", "yml", "json", "txt", "log", "png", "svg", "jpg", "js", "css", "html", "py", "sh", "md",
    "gz", "tgz", "zip", "tar", "conf", "toml", "ini", "pem", "crt", "key", "env"]);
  const MISSING = /\b(undefined|null|NaN|Invalid Date)\b|\[object Object\]/;
  const keys = window.__maeKeys || new Set();
  const allowed = new Set(window.__maeAllowed || []);
  const found = [];
  const look = (text, where) => {
    if (!text) return;
    const missing = text.match(MISSING);
    if (missing) found.push({ word: missing[0], where, text: text.trim().slice(0, 160) });
    for (const token of text.split(/[\s,;:()\[\]{}"'“”‘’，。；：（）、！？…=<>|]+/)) {
      const word = token.replace(/^[#@*\-–—]+/, "").replace(/[.!?]+$/, "");
      if (!KEY.test(word)) continue;
      if (!keys.has(word) && (ENDINGS.has(word.split(".").pop()) || allowed.has(word))) continue;
      found.push({ word, where, text: text.trim().slice(0, 160) });
    }
  };
  const userData = "pre.log, [data-test=log-lines], [data-test=log], script, style, noscript";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || el.closest(userData)) continue;
    if (el.tagName !== "OPTION" && !el.checkVisibility({ visibilityProperty: true })) continue;
    look(node.nodeValue, el.tagName.toLowerCase() + (el.dataset.test ? "[" + el.dataset.test + "]" : ""));
  }
  for (const el of document.body.querySelectorAll("[title], [aria-label], [placeholder], [alt]")) {
    if (el.closest(userData)) continue;
    for (const attr of ["title", "aria-label", "placeholder", "alt"]) look(el.getAttribute(attr), "@" + attr);
  }
  look(document.title, "title");
  return found;
}"""

KEYS = """async (allowed) => {
  const { DICTS } = await import('/static/i18n.js');
  window.__maeKeys = new Set(Object.values(DICTS).flatMap((d) => Object.keys(d)));
  window.__maeAllowed = allowed;
}"""


def new_page(b, locale: str, token: str | None = None, axe: bool = False):
    """A fresh browser context at 1400×900 in ``locale``, clocks in UTC; logged in with
    ``token``. ``axe``: the CSP lets axe-core's injected script run."""
    ctx = b.browser.new_context(locale=locale, base_url=b.url, viewport=VIEW, timezone_id="UTC", bypass_csp=axe)
    ctx.set_default_timeout(20000)
    page = ctx.new_page()
    if token:
        paste_login(page, token)
    return page


def raw_words(page, allowed=("mei.chen", "li.wei")) -> list:
    """What ``RAW_WORDS`` finds on the page as it stands (in the top bar, main, dialogs);
    ``allowed``: the user names seed_shop (screenshots.py) gives the app."""
    page.evaluate(KEYS, list(allowed))
    return page.evaluate(RAW_WORDS)


def detector_catches(page) -> dict:
    """The detector itself, on planted text: keys (also an unknown one, and one ending like a
    domain) and `undefined` are caught; a hostname, an image, a version, a file name, a user
    name and an abbreviation are not."""
    page.evaluate("""() => {
      const box = document.createElement('div'); box.id = 'planted';
      box.textContent = 'role.admin · event.deploy.failed · status.weird_one · env.test · undefined';
      const fine = document.createElement('div'); fine.id = 'fine';
      fine.textContent = 'www.shop.example.test hooks.example.test nginx:1.27 shop/web:1.2.3 v1.2 deploy.yaml mei.chen e.g. 10.0.0.1';
      document.body.append(box, fine);
    }""")
    seen = raw_words(page)
    page.evaluate("() => { document.getElementById('planted').remove(); document.getElementById('fine').remove(); }")
    return {"caught": sorted({f["word"] for f in seen})}


def shot(page, name: str, lang: str, full: bool = False) -> str:
    SHOTS.mkdir(parents=True, exist_ok=True)
    file = f"{name}.{lang}.png"
    page.screenshot(path=str(SHOTS / file), full_page=full)
    return file


def glance(b, a: dict):
    """Every page in both languages, as the app's owner and as a platform admin (the apps
    list then shows the admin's role); what the detector found on each, the document's lang,
    and the admin's role cell. Screenshot: the apps list as the admin."""
    out = {"found": {}, "checked": [], "lang": {}, "admin_role": {}, "written": []}
    for lang, locale in LOCALES:
        for who in ("owner", "admin"):
            page = new_page(b, locale, a[who])
            if who == "owner" and lang == "en":
                out["detector"] = detector_catches(page)
            for name, path, special in a["pages"]:
                if special == "admin" and who != "admin":
                    continue
                open_page(page, path, special)
                page.wait_for_timeout(300)
                found = raw_words(page)
                if found:
                    out["found"][f"{name} {who} {lang}"] = found
                out["checked"].append([name, who, lang])
            out["lang"][lang] = page.evaluate("document.documentElement.lang")
            if who == "admin":
                open_page(page, "/#/apps", None)
                row = page.locator(f"[data-test=app-row][data-name='{a['app']}']")
                out["admin_role"][lang] = row.locator("td").nth(2).inner_text()
                out["written"].append(shot(page, "apps-admin-role", lang))
            page.context.close()
    return out


def dates(b, a: dict):
    """Dates as each page shows them: the apps list's creation time, the history's
    records (relative, exact on hover), a cluster's last report, a server's expiry; the
    servers page's date field (its parts' order, months, legend), then a server added
    through it. Screenshots: the app's history and the date field filled in."""
    out = {"written": []}
    for lang, locale in LOCALES:
        seen = out[lang] = {}
        page = new_page(b, locale, a["owner"])
        page.goto("/#/apps")
        cell = page.locator(f"[data-test=app-row][data-name='{a['app']}'] time")
        seen["app_created"] = {"text": cell.inner_text(), "datetime": cell.get_attribute("datetime")}
        page.goto(f"/#/apps/{a['app']}")
        row = page.locator(f"[data-test=record-row][data-id='{a['record']}'] time")
        row.wait_for()
        seen["record"] = {"text": row.inner_text(), "datetime": row.get_attribute("datetime"),
                          "title": row.get_attribute("title")}
        page.locator("[data-test=records]").scroll_into_view_if_needed()
        row.hover()
        out["written"].append(shot(page, "dates-records", lang))
        seen["found_app"] = raw_words(page)
        page.context.close()

        admin = new_page(b, locale, a["admin"], axe=True)
        admin.goto("/#/clusters")
        report = admin.locator(f"[data-test=cluster-row][data-name='{a['cluster']}'] time")
        seen["report"] = {"text": report.inner_text(), "title": report.get_attribute("title"),
                          "datetime": report.get_attribute("datetime")}
        admin.goto("/#/servers")
        expiry = admin.locator(f"[data-test=server-row][data-name='{a['server']}'] time")
        seen["expiry"] = {"text": expiry.inner_text(), "datetime": expiry.get_attribute("datetime")}
        box = admin.locator("[data-test=server-expires]")
        seen["html_lang"] = admin.evaluate("document.documentElement.lang")
        seen["legend"] = box.locator("legend").inner_text()
        seen["order"] = box.locator("[data-part]").evaluate_all("els => els.map(e => e.dataset.part)")
        seen["months"] = box.locator("select option").evaluate_all("os => os.map(o => o.textContent)")
        seen["native_date_inputs"] = admin.locator("input[type=date], input[type=datetime-local]").count()
        name, (year, month, day) = a["new_server"][lang], a["new_expiry"]
        form = admin.locator("main form").filter(has=box)
        form.locator("input").first.fill(name)
        form.locator("input").nth(1).fill("10.9.0.1")
        box.locator("[data-part=year]").fill(str(year))
        box.locator("[data-part=month]").select_option(str(month))
        box.locator("[data-part=day]").fill(str(day))
        box.scroll_into_view_if_needed()
        out["written"].append(shot(admin, "servers-date-field", lang))
        seen["axe"] = [v for v in _axe(admin) if v["impact"] in ("serious", "critical")]
        form.locator("button[type=submit]").click()
        added = admin.locator(f"[data-test=server-row][data-name='{name}'] time")
        added.wait_for()
        seen["added"] = {"text": added.inner_text(), "datetime": added.get_attribute("datetime")}
        seen["found_servers"] = raw_words(admin)
        admin.context.close()
    return out


def empty_states(b, a: dict):
    """A new user's apps list, an app with no services and a service with no versions: the
    sentence, and for the owner the button, which puts the cursor where the next step is
    typed; a viewer of the same app gets the sentence alone. Screenshots of each (owner)."""
    out = {"written": []}
    steps = (("apps", "newbie", "/#/apps", "apps-empty", "new-app-name"),
             ("services", "owner", f"/#/apps/{a['bare']}", "services-empty", "new-service-name"),
             ("versions", "owner", f"/#/apps/{a['noversions']}", "versions-empty", "new-version-name"))
    for lang, locale in LOCALES:
        seen = out[lang] = {}
        for name, who, path, test, focus in steps:
            page = new_page(b, locale, a[who], axe=True)
            page.goto(path)
            box = page.locator(f"[data-test={test}]")
            box.wait_for()
            state = {"sentence": box.locator("p").inner_text(),
                     "buttons": box.locator("button").all_inner_texts(),
                     "found": raw_words(page),
                     "axe": [v for v in _axe(page) if v["impact"] in ("serious", "critical")]}
            box.scroll_into_view_if_needed()
            out["written"].append(shot(page, f"empty-{name}", lang))
            page.click(f"[data-test={test}-action]")
            state["focused"] = page.evaluate("document.activeElement && document.activeElement.dataset.test")
            seen[name] = state
            page.context.close()
            if who == "owner":
                viewer = new_page(b, locale, a["viewer"])
                viewer.goto(path)
                vbox = viewer.locator(f"[data-test={test}]")
                vbox.wait_for()
                seen[name + "_viewer"] = {"sentence": vbox.locator("p").inner_text(),
                                          "buttons": vbox.locator("button").count(),
                                          "forms": viewer.locator("main form").count()}
                viewer.context.close()
    return out


SCENARIOS = {f.__name__: f for f in (glance, dates, empty_states)}


def main() -> int:
    args = json.loads(sys.stdin.read() or "{}")
    name = sys.argv[1]
    if name not in SCENARIOS:
        from tests.e2e import console_confirm_scenarios
        SCENARIOS.update(console_confirm_scenarios.SCENARIOS)
    with chromium(args["url"]) as b:
        result = SCENARIOS[name](b, args) or {}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
