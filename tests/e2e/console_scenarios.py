"""Browser scenarios for tests/e2e/test_console.py, run in a process of their own.

The test process is monkey-patched by eventlet (tests/conftest.py), and Playwright's
sync API (greenlets over an asyncio loop talking to the browser) hangs under it.
So each test starts ``python -m tests.e2e.console_scenarios NAME`` with its inputs
as JSON on stdin; a failed assertion here is a non-zero exit with the traceback.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Browser:
    def __init__(self, browser, url):
        self.browser, self.url = browser, url

    def page(self, locale="en-US"):
        ctx = self.browser.new_context(locale=locale, base_url=self.url, viewport={"width": 1280, "height": 860})
        ctx.set_default_timeout(20000)
        page = ctx.new_page()
        page.on("dialog", lambda d: d.accept())  # confirm() before remove / rollback
        return page


@contextmanager
def chromium(url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield Browser(b, url)
        finally:
            b.close()


def api(url, token, method, path, **kw):
    return requests.request(method, url + "/api/v1" + path, headers={"Authorization": f"Bearer {token}"},
                            timeout=30, **kw)


def browser_login(page, username):
    """The whole OAuth flow in the browser: console → MAE → localauth's form → MAE → console."""
    page.goto("/")
    page.wait_for_url(re.compile(r"#/login$"))
    page.click("[data-test=login-local]")
    page.fill("input[name=username]", username)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"#/apps$"))
    page.wait_for_selector("#logout:not([hidden])")


def paste_login(page, token):
    page.goto("/#/login")
    page.fill("[data-test=token-input]", token)
    page.click("[data-test=token-submit]")
    page.wait_for_url(re.compile(r"#/apps$"))


def wait_record(page, status, timeout=120_000):
    page.wait_for_selector(f"[data-test=record-status] [data-status={status}]", timeout=timeout)


# -- scenarios ----------------------------------------------------------------------------

def login_apps_members_language(b: Browser, a: dict):
    page = b.page("en-US")
    browser_login(page, a["user"])
    assert "token" not in page.url, page.url
    token = page.evaluate("localStorage.getItem('mae.token')")
    assert token
    name = a["app"]
    page.fill("[data-test=new-app-name]", name)
    page.fill("[data-test=new-app-display]", "<b>Shop</b> & 商店")
    page.click("[data-test=new-app-submit]")
    page.wait_for_url(re.compile(rf"#/apps/{name}$"))
    # Rendered as text, never as markup.
    assert page.locator("h1").inner_text().startswith("<b>Shop</b> & 商店")
    assert page.locator("h1 b").count() == 0
    page.click("#nav a[href='#/apps']")
    page.wait_for_selector(f"[data-test=app-row][data-name='{name}']")

    page.goto(f"/#/apps/{name}/members")
    page.wait_for_selector(f"[data-test=member-row][data-username='{a['user']}']")
    page.fill("[data-test=member-username]", a["other"])
    page.select_option("[data-test=member-new-role]", "developer")
    page.click("[data-test=member-add]")
    row = page.locator(f"[data-test=member-row][data-username='{a['other']}']")
    row.wait_for()
    assert row.locator("select").input_value() == "developer"
    row.locator("select").select_option("maintainer")
    # The "added" flash may still be showing, so wait for the change itself, not a flash.
    deadline = time.monotonic() + 15
    while True:
        roles = {m["username"]: m["role"] for m in api(b.url, token, "GET", f"/apps/{name}/members").json()["items"]}
        if roles.get(a["other"]) == "maintainer" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert roles[a["other"]] == "maintainer", roles
    page.locator(f"[data-test=member-row][data-username='{a['other']}'] [data-test=member-remove]").click()
    page.wait_for_selector(f"[data-test=member-row][data-username='{a['other']}']", state="detached")

    # An API error is shown in the API's own words.
    page.fill("[data-test=member-username]", "nobody-like-this")
    page.click("[data-test=member-add]")
    message = api(b.url, token, "PUT", f"/apps/{name}/members/nobody-like-this",
                  json={"role": "viewer"}).json()["error"]["message"]
    page.wait_for_selector("#flash.error")
    assert page.locator("#flash").inner_text().startswith(message)

    page.click("#lang")
    page.wait_for_selector("h1:has-text('的成员')")
    assert page.locator("#nav a").first.inner_text() == "应用"
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    missing = page.evaluate("""async () => {
        const { DICTS } = await import('/static/i18n.js');
        const en = Object.keys(DICTS.en), zh = Object.keys(DICTS.zh);
        return [en.filter(k => !zh.includes(k)), zh.filter(k => !en.includes(k))];
    }""")
    assert missing == [[], []], missing
    # The choice is kept.
    page.reload()
    page.wait_for_selector("h1:has-text('的成员')")
    return {"token_kept": bool(token)}


def chinese_browser_and_bad_token(b: Browser, a: dict):
    page = b.page("zh-CN")
    page.goto("/#/login")
    page.wait_for_selector("h1:has-text('登录 MAE')")
    page.fill("[data-test=token-input]", "not-a-real-token")
    page.click("[data-test=token-submit]")
    page.wait_for_selector("#flash.error")
    assert page.evaluate("localStorage.getItem('mae.token')") is None


def login_csrf_and_logout(b: Browser, a: dict):
    """A link that hands the console someone else's token (login CSRF) is dropped; a
    login the tab started is taken; logging out ends that session on the server."""
    page = b.page("en-US")
    page.goto(f"/#/login?token={a['foreign_token']}&state=guessed-state")
    page.wait_for_selector("#flash.error")
    assert "not started in this browser tab" in page.locator("#flash").inner_text()
    assert page.evaluate("localStorage.getItem('mae.token')") is None
    assert "token" not in page.url, page.url
    browser_login(page, a["user"])
    token = page.evaluate("localStorage.getItem('mae.token')")
    assert api(b.url, token, "GET", "/me").json()["username"] == a["user"]
    page.click("#logout")
    page.wait_for_url(re.compile(r"#/login$"))
    assert page.evaluate("localStorage.getItem('mae.token')") is None
    deadline = time.monotonic() + 5
    while api(b.url, token, "GET", "/me").status_code != 401 and time.monotonic() < deadline:
        time.sleep(0.1)
    return {"after_logout": api(b.url, token, "GET", "/me").status_code}


def servers_expiring(b: Browser, a: dict):
    page = b.page()
    paste_login(page, a["token"])
    page.click("#nav a[href='#/servers']")
    page.wait_for_selector(f"[data-test=server-row][data-name='{a['soon']}']")
    names = page.locator("[data-test=server-row]").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert names.index(a["gone"]) < names.index(a["soon"]) < names.index(a["later"]), names
    assert "expiring" in page.locator(f"[data-test=server-row][data-name='{a['soon']}']").get_attribute("class")
    assert "expired" in page.locator(f"[data-test=server-row][data-name='{a['gone']}']").get_attribute("class")
    assert not page.locator(f"[data-test=server-row][data-name='{a['later']}']").get_attribute("class")


def deploy_journey(b: Browser, a: dict):
    app, cluster = a["app"], a["cluster"]
    page = b.page()
    paste_login(page, a["token"])
    page.goto(f"/#/apps/{app}")
    page.fill("[data-test=new-service-name]", "web")
    page.click("[data-test=new-service-submit]")
    page.locator("[data-test=service][data-name=web]").wait_for()

    def add_version(name, image):
        block = page.locator("[data-test=service][data-name=web]")
        block.locator("[data-test=new-version-toggle]").click()
        block.locator("[data-test=new-version-name]").fill(name)
        block.locator("[data-test=new-version-image]").fill(image)
        block.locator("[data-test=new-version-port]").fill("80")
        block.locator("[data-test=new-version-submit]").click()
        page.wait_for_selector(f"[data-test=version-row][data-name={name}]")

    add_version("v1", "nginx:1.27")
    add_version("bad", "nginx:missing")

    # Deploy v1 to test: the form comes from the template's fields; preview first.
    page.locator("[data-test=version-row][data-name=v1] a").click()
    page.wait_for_selector("[data-field=progress_deadline_seconds]")
    page.check("[data-test=target-env-test]")
    page.click("[data-test=preview-button]")
    page.wait_for_selector("[data-test=diff-object][data-change=create]")
    page.click("[data-test=confirm-deploy]")
    page.wait_for_url(re.compile(r"#/records/\d+$"))
    first = page.url.rsplit("/", 1)[1]
    wait_record(page, "succeeded")
    page.wait_for_selector("[data-test=polling]:has-text('finished')")
    target = page.locator(f"[data-test=target][data-cluster='{cluster}']")
    assert "ready" in target.locator("[data-test=replicas]").inner_text()
    page.wait_for_selector("[data-test=log] .line")

    # At a glance on the application page.
    page.goto(f"/#/apps/{app}")
    page.wait_for_selector(f"[data-test=version-row][data-name=v1] td[data-cluster='{cluster}'] [data-status=succeeded]")

    # A missing image fails, and the reason is said in plain words.
    page.goto(f"/#/apps/{app}/services/web/versions/bad/deploy")
    page.check(f"[data-test=target-cluster-{cluster}]")
    page.click("[data-test=preview-button]")
    page.click("[data-test=confirm-deploy]")
    page.wait_for_url(re.compile(r"#/records/\d+$"))
    wait_record(page, "failed")
    reason = page.locator(f"[data-test=target][data-cluster='{cluster}'] [data-test=reason]").inner_text()
    assert "pulled" in reason.lower() and "missing" in reason, reason

    # Roll back to the first, succeeded record.
    page.goto(f"/#/records/{first}")
    wait_record(page, "succeeded")
    page.click("[data-test=rollback]")
    page.wait_for_url(lambda url: re.search(r"#/records/\d+$", url) and not url.endswith(f"/{first}"))
    wait_record(page, "succeeded")
    assert page.locator("h1").inner_text().startswith("Rollback")

    # Send the service's traffic to v1 from the status grid; the grid then marks it.
    page.goto(f"/#/apps/{app}")
    cell = f"[data-test=version-row][data-name=v1] td[data-cluster='{cluster}']"
    page.click(f"{cell} [data-test=route-here]")
    page.wait_for_url(re.compile(r"#/records/\d+$"))
    wait_record(page, "succeeded")
    assert page.locator("h1").inner_text().startswith("Route traffic")
    page.goto(f"/#/apps/{app}")
    page.wait_for_selector(f"{cell} [data-test=routed]")
    assert page.locator("[data-test=version-row][data-name=bad] [data-test=route-here]").count() == 0
    return {"first": first}


def cli_login(b: Browser, a: dict):
    """Plays the browser `mae login` opens (BROWSER=...): the console at #/cli?port&state,
    not logged in yet, so login first; then Allow hands a new token to the CLI."""
    page = b.page()
    page.goto(a["open"])
    page.wait_for_url(re.compile(r"#/login$"))
    page.fill("[data-test=token-input]", a["token"])
    page.click("[data-test=token-submit]")
    page.wait_for_url(re.compile(r"#/cli\?"))
    page.click("[data-test=cli-allow]")
    page.wait_for_selector("text=The mae command line is logged in")


def screenshots(b: Browser, a: dict):
    out = Path(a["out"])
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for lang, locale in (("en", "en-US"), ("zh", "zh-CN")):
        for who, token in (("owner", a["owner"]), ("admin", a["admin"])):
            page = b.page(locale)
            if who == "owner":
                page.goto("/#/login")
                page.wait_for_selector("[data-test=token-input]")
                page.screenshot(path=str(out / f"login.{lang}.png"))
                written.append(f"login.{lang}.png")
            paste_login(page, token)
            for name, path, special in a["pages"]:
                if (special == "admin") != (who == "admin"):
                    continue
                page.goto(path)
                page.wait_for_selector("main :is(h1, table)")
                if special == "preview":
                    page.click("[data-test=preview-button]")
                    page.wait_for_selector("[data-test=confirm-deploy]")
                page.wait_for_timeout(400)
                page.screenshot(path=str(out / f"{name}.{lang}.png"), full_page=True)
                written.append(f"{name}.{lang}.png")
            page.context.close()
    return {"written": written}


SCENARIOS = {f.__name__: f for f in (login_apps_members_language, chinese_browser_and_bad_token,
                                     servers_expiring, deploy_journey, cli_login, screenshots,
                                     login_csrf_and_logout)}


def main() -> int:
    name = sys.argv[1]
    if "MAE_SCENARIO_ARGS" in os.environ:
        # Started as $BROWSER by `mae login`: the page to open is the last argument.
        args = {**json.loads(os.environ["MAE_SCENARIO_ARGS"]), "open": sys.argv[2]}
    else:
        args = json.loads(sys.stdin.read() or "{}")
    with chromium(args["url"]) as b:
        result = SCENARIOS[name](b, args) or {}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
