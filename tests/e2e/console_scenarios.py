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


def open_page(page, path: str, special: str | None) -> None:
    """Go to a console page and wait until it shows what a screenshot or a check needs."""
    page.goto(path)
    page.wait_for_selector("main :is(h1, table)")
    if special == "preview":
        page.click("[data-test=preview-button]")
        page.wait_for_selector("[data-test=confirm-deploy]")
    if special == "template-preview":
        page.wait_for_selector("[data-test=tpl-rendered]")


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
    page.fill("[data-test=confirm-name]", a["other"])  # the name typed (issue 26)
    page.click("[data-test=confirm-confirm]")
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
    page.locator("[data-test=version-row][data-name=v1] a[href$='/deploy']").click()
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
                open_page(page, path, special)
                page.wait_for_timeout(400)
                page.screenshot(path=str(out / f"{name}.{lang}.png"), full_page=True)
                written.append(f"{name}.{lang}.png")
            page.context.close()
    return {"written": written}


def _version_page(page, app, ver="v1"):
    page.goto(f"/#/apps/{app}/services/web/versions/{ver}")
    page.wait_for_selector("[data-test=config] [data-test=image]")


def _to_record(page, button, heading):
    """Press an operation's button; its record page shows it succeed under ``heading``."""
    page.click(button)
    page.wait_for_url(re.compile(r"#/records/\d+$"))
    wait_record(page, "succeeded")
    assert page.locator("h1").inner_text().startswith(heading)


def _log_lines(page):
    return page.locator("[data-test=log-lines] .line").evaluate_all("els => els.map(e => e.textContent.trim())")


def _no_raw_keys(page):
    """Neither an i18n key (`word.word`) nor `undefined` shows in the page's own words."""
    return page.evaluate(r"""async () => {
        const { DICTS } = await import('/static/i18n.js');
        const prefixes = [...new Set(Object.keys(DICTS.en).map(k => k.split('.')[0]))];
        const raw = new RegExp('(' + prefixes.join('|') + ')\\.[A-Za-z_]+', 'g');
        const main = document.querySelector('main').cloneNode(true);
        for (const el of main.querySelectorAll('[data-test=log-lines], [data-test=event-row] td.wrap')) el.remove();
        const text = main.innerText + ' ' + [...main.querySelectorAll('[placeholder],[title],[aria-label]')]
            .map(e => [e.placeholder, e.title, e.getAttribute('aria-label')].join(' ')).join(' ');
        return { raw: text.match(raw) || [], undef: text.includes('undefined'), text: text.slice(0, 400) };
    }""")


def version_page(b: Browser, a: dict):
    """A deployed version's page as a developer: config, pods, followed logs with search,
    pause and download, events; scale, restart and retire (typing the name) through to
    their records; a viewer sees no operations; in Chinese no raw key shows."""
    app, cluster = a["app"], a["cluster"]
    page = b.page()
    paste_login(page, a["token"])
    page.goto(f"/#/apps/{app}")
    page.click("[data-test=version-row][data-name=v1] [data-test=version-page]")
    page.wait_for_url(re.compile(rf"#/apps/{app}/services/web/versions/v1$"))
    page.wait_for_selector("[data-test=config] [data-test=image]:has-text('nginx:1.27')")
    assert "MODE" in page.locator("[data-test=env-names]").inner_text()
    assert "TOKEN" in page.locator("[data-test=secret-names]").inner_text()
    assert a["secret"] not in page.content()
    assert "GET /index.html" in page.locator("[data-test=probe-readiness]").inner_text()
    page.wait_for_selector(f"[data-test=run-row][data-cluster='{cluster}'] [data-status=succeeded]")
    page.wait_for_selector(f"[data-test=pod-row][data-cluster='{cluster}']")
    assert page.locator("[data-test=pod-row] [data-test=pod-ready]").first.inner_text() == "yes"
    page.wait_for_selector("[data-test=event-row]")

    # The deploy form, from here, opens on the test environment (clusters are listed prod first).
    page.click("main .tabs a[href$='/deploy']")
    page.wait_for_selector("[data-test=preview-button]")
    assert page.is_checked("[data-test=target-env-test]") and not page.is_checked("[data-test=target-env-prod]")
    page.click(".crumbs a[href$='/versions/v1']")
    page.wait_for_selector(f"[data-test=pod-row][data-cluster='{cluster}']")

    # Follow: the tail, then lines as they are written (the sandbox writes one a second).
    page.select_option("[data-test=log-cluster]", cluster)
    page.click("[data-test=log-follow]")
    page.wait_for_selector("[data-test=log-lines] .line")
    first = len(_log_lines(page))
    page.wait_for_function("n => document.querySelectorAll('[data-test=log-lines] .line').length > n", arg=first,
                           timeout=15000)
    assert page.locator("[data-test=log-follow]").inner_text() == "Stop"
    pods = page.locator("[data-test=pod-row]").evaluate_all("rs => rs.map(r => r.dataset.name)")
    assert all(line.split(" ", 1)[0] in pods for line in _log_lines(page))
    # Search filters the shown lines; emptying it shows them all again.
    page.fill("[data-test=log-search]", "STARTED ON")
    shown = _log_lines(page)
    assert shown and all("started on" in line.lower() for line in shown), shown
    page.fill("[data-test=log-search]", "no-such-line-anywhere")
    assert _log_lines(page) == []
    page.fill("[data-test=log-search]", "")
    # Pause: nothing new is drawn, but lines are still received; resume draws them.
    page.click("[data-test=log-pause]")
    held = len(_log_lines(page))
    page.wait_for_timeout(2500)
    assert len(_log_lines(page)) == held
    page.click("[data-test=log-pause]")
    assert len(_log_lines(page)) > held
    with page.expect_download() as info:
        page.click("[data-test=log-download]")
    download = info.value
    assert download.suggested_filename == f"{app}-web-v1-{cluster}.txt", download.suggested_filename
    saved = Path(download.path()).read_text()
    assert "seq=" in saved and len(saved.splitlines()) >= held

    # Chinese, on a full page (pods, events, logs): no raw keys, no `undefined`.
    zh = b.page("zh-CN")
    paste_login(zh, a["token"])
    _version_page(zh, app)
    zh.wait_for_selector("h2:has-text('配置')")
    zh.wait_for_selector("[data-test=pod-row]")
    zh.wait_for_selector("[data-test=event-row]")
    zh.click("[data-test=log-follow]")
    zh.wait_for_selector("[data-test=log-lines] .line")
    zh.click("[data-test=op-retire]")
    found = _no_raw_keys(zh)
    assert not found["raw"] and not found["undef"], found
    zh.context.close()

    # A viewer sees the page, not the operations.
    viewer = b.page()
    paste_login(viewer, a["viewer_token"])
    _version_page(viewer, app)
    viewer.wait_for_selector("[data-test=viewer-note]")
    assert viewer.locator("[data-test=ops]").count() == 0
    viewer.context.close()

    # Scale to 2 on the test environment (the default choice), then see both pods.
    page.fill("[data-test=op-replicas]", "2")
    _to_record(page, "[data-test=op-scale]", "Scale")
    _version_page(page, app)
    page.wait_for_function("c => document.querySelectorAll(`[data-test=pod-row][data-cluster='${c}']`).length === 2",
                           arg=cluster, timeout=30000)

    _to_record(page, "[data-test=op-restart]", "Restart")

    # Retire on test: it says which clusters the version leaves and wants the name typed.
    _version_page(page, app)
    page.click("[data-test=op-retire]")
    assert cluster in page.locator("[data-test=retire-leaves]").inner_text()
    assert page.locator("[data-test=retire-confirm]").is_disabled()
    page.fill("[data-test=retire-name]", "v")
    assert page.locator("[data-test=retire-confirm]").is_disabled()
    page.fill("[data-test=retire-name]", "v1")
    _to_record(page, "[data-test=retire-confirm]", "Retire")
    _version_page(page, app)
    page.wait_for_selector("[data-test=no-pods]", timeout=30000)
    assert page.locator("[data-test=log-follow]").is_disabled()
    return {}


def _in_chinese(page):
    """The same page again in Chinese; no raw key nor `undefined` in its words."""
    page.evaluate("localStorage.setItem('mae.lang', 'zh')")
    page.reload()
    page.wait_for_selector("#lang:has-text('English')")
    page.wait_for_selector("main h1")
    found = _no_raw_keys(page)
    assert not found["raw"] and not found["undef"], found


def account_tokens_sessions(b: Browser, a: dict):
    """Issue 22: a read token made on #/account works with the API, is shown once, then
    is revoked there; "end all other sessions" ends the other login."""
    page = b.page()
    paste_login(page, a["token"])
    page.click("#nav a[href='#/account']")
    page.wait_for_selector(f"[data-test=session-row][data-id='{a['other_session']}']")
    page.fill("[data-test=token-name]", a["token_name"])
    page.select_option("[data-test=token-scope]", "read")
    page.fill("[data-test=token-days]", "7")
    page.click("[data-test=token-create]")
    secret = page.locator("[data-test=new-token-box] [data-test=secret]").input_value()
    page.wait_for_selector(f"[data-test=token-row][data-name='{a['token_name']}']")
    works = api(b.url, secret, "GET", "/me").status_code
    write = api(b.url, secret, "POST", "/tokens", json={"name": "x"}).status_code
    page.click(f"[data-test=token-row][data-name='{a['token_name']}'] [data-test=revoke]")
    page.fill("[data-test=confirm-name]", a["token_name"])  # the name typed (issue 26)
    page.click("[data-test=confirm-confirm]")
    page.wait_for_selector(f"[data-test=token-row][data-name='{a['token_name']}']", state="detached")
    page.click("[data-test=end-others]")
    page.wait_for_selector(f"[data-test=session-row][data-id='{a['other_session']}']", state="detached")
    page.wait_for_selector("[data-test=session-row][data-current=true]")
    assert page.locator("[data-test=session-row]").count() == 1
    _in_chinese(page)
    return {"secret": secret, "works": works, "write": write}


def admin_page(b: Browser, a: dict):
    """Issue 22: #/admin blocks a user (then finds it in the audit log, filtered), adds a
    platform channel and sends it a test; a plain user sees only a sentence."""
    plain = b.page()
    paste_login(plain, a["plain_token"])
    assert plain.locator("#nav a[href='#/admin']").count() == 0
    plain.goto("/#/admin")
    plain.wait_for_selector("[data-test=not-admin]")
    page = b.page()
    paste_login(page, a["token"])
    page.click("#nav a[href='#/admin']")
    page.wait_for_selector("[data-test=audit-row]")
    page.fill("[data-test=audit-actor]", a["plain"])  # 51 token_created entries: two pages
    page.fill("[data-test=audit-action]", "token_created")
    page.click("[data-test=audit-filter]")
    page.wait_for_function("() => document.querySelectorAll('[data-test=audit-row]').length === 50")
    page.click("[data-test=audit-more]")
    page.wait_for_function("() => document.querySelectorAll('[data-test=audit-row]').length === 51")
    assert page.locator("[data-test=audit-more]").is_hidden()
    page.fill("[data-test=audit-actor]", "")
    page.fill("[data-test=bl-user]", a["victim"])
    page.fill("[data-test=bl-reason]", "leaked laptop")
    page.click("[data-test=bl-block]")
    page.wait_for_selector("#flash.ok")
    page.fill("[data-test=audit-action]", "user_blocked")
    page.click("[data-test=audit-filter]")
    page.wait_for_selector(f"[data-test=audit-row][data-target='user:{a['victim']}']")
    assert set(page.locator("[data-test=audit-row]").evaluate_all("rs => rs.map(r => r.dataset.action)")) == {"user_blocked"}
    page.fill("[data-test=platform-channels] [data-test=channel-name]", a["channel"])
    page.select_option("[data-test=platform-channels] [data-test=channel-type]", "feishu")
    page.fill("[data-test=platform-channels] [data-test=channel-url]", a["feishu_url"])
    page.click("[data-test=platform-channels] [data-test=channel-add]")
    row = f"[data-test=pchannel-row][data-name='{a['channel']}']"
    page.wait_for_selector(row)
    page.click(row + " [data-test=pchannel-test]")
    page.wait_for_selector("#flash.ok")
    _in_chinese(page)


def clusters_page(b: Browser, a: dict):
    """Issue 22: #/clusters registers a cluster by hand (its report token shown once), then
    rotates its credentials and its report token; a plain user sees no admin controls."""
    plain = b.page()
    paste_login(plain, a["plain_token"])
    plain.click("#nav a[href='#/clusters']")
    plain.wait_for_selector("[data-test=cluster-row] [data-test=namespaces]")
    assert plain.locator("[data-test=register], [data-test=rotate-report-token]").count() == 0
    page = b.page()
    paste_login(page, a["token"])
    page.click("#nav a[href='#/clusters']")
    page.wait_for_selector("[data-test=init-command]")
    page.click("[data-test=register] summary")
    page.fill("[data-test=reg-name]", a["cluster"])
    page.select_option("[data-test=reg-env]", "prod")
    page.fill("[data-test=reg-server]", a["server"])
    page.fill("[data-test=reg-ca]", a["ca"])
    page.fill("[data-test=reg-token]", a["sa_token"])
    page.click("[data-test=reg-submit]")
    first = page.locator("[data-test=cluster-secret] [data-test=secret]").input_value()
    row = f"[data-test=cluster-row][data-name='{a['cluster']}']"
    page.click(row + " [data-test=rotate-credentials]")
    page.fill("[data-test=cred-token]", a["sa_token"])
    page.click("[data-test=cred-save]")
    page.wait_for_selector("#flash.ok")
    page.click(row + " [data-test=rotate-report-token]")
    page.wait_for_function("t => document.querySelector('[data-test=cluster-secret] [data-test=secret]').value !== t", arg=first)
    second = page.locator("[data-test=cluster-secret] [data-test=secret]").input_value()
    assert "10" in page.locator("[data-test=cluster-secret]").inner_text()
    _in_chinese(page)
    return {"first": first, "second": second}


def cloud_accounts(b: Browser, a: dict):
    """Issue 22: on #/servers a cloud account gets an import schedule and a "sync now"."""
    page = b.page()
    paste_login(page, a["token"])
    page.click("#nav a[href='#/servers']")
    row = f"[data-test=account-row][data-name='{a['account']}']"
    page.wait_for_selector(row + "[data-sync=never]")
    page.fill(row + " [data-test=sync-hours]", "12")
    page.click(row + " [data-test=sync-schedule]")
    page.wait_for_selector("#flash.ok")
    page.wait_for_selector(row + " [data-test=sync-hours]")
    assert page.locator(row + " [data-test=sync-hours]").input_value() == "12"
    page.click(row + " [data-test=sync-now]")
    page.wait_for_selector(row + ":not([data-sync=never])")
    _in_chinese(page)


SCENARIOS = {f.__name__: f for f in (login_apps_members_language, chinese_browser_and_bad_token,
                                     servers_expiring, deploy_journey, cli_login, screenshots,
                                     login_csrf_and_logout, version_page,
                                     account_tokens_sessions, admin_page, clusters_page, cloud_accounts)}


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


# -- issue 22: ingresses, CI and templates pages --------------------------------------------

def _chinese_page_is_whole(b: Browser, token, path, ready):
    """The page at ``path`` in Chinese, once ``ready`` shows: no raw i18n key, no `undefined`."""
    zh = b.page("zh-CN")
    paste_login(zh, token)
    zh.goto("/#" + path)
    zh.wait_for_selector(ready)
    found = _no_raw_keys(zh)
    assert not found["raw"] and not found["undef"], (path, found)
    zh.context.close()


def _app_tab(b: Browser, a: dict, tab: str, ready: str):
    """Logged in with ``a["token"]``, from the app page through its ``tab`` link until ``ready`` shows."""
    page = b.page()
    paste_login(page, a["token"])
    page.goto(f"/#/apps/{a['app']}")
    page.click(f"main .tabs a[href='#/apps/{a['app']}/{tab}']")
    page.wait_for_selector(ready)
    return page


def ingress_page_deploy(b: Browser, a: dict):
    """Make an ingress with a host per environment, following the routed version, from the
    app page's link; the page says a change is not deployed; deploy it to test: its record."""
    app = a["app"]
    page = _app_tab(b, a, "ingresses", "[data-test=ing-name]")
    page.fill("[data-test=ing-name]", "www")
    page.fill("[data-test=ing-host]", a["host"])
    page.fill("[data-test=ing-host-test]", a["test_host"])
    page.fill("[data-test=ing-host-prod]", "old-" + a["prod_host"])
    page.select_option("[data-test=route-service]", "web")
    assert page.locator("[data-test=route-version]").get_attribute("placeholder") == "follows the routed version"
    page.click("[data-test=ing-save]")
    page.wait_for_url(re.compile(rf"#/apps/{app}/ingresses/www$"))
    assert "deploy the ingress again" in page.locator("[data-test=ing-not-deployed-note]").inner_text()
    assert page.locator("[data-test=ing-host-test]").input_value() == a["test_host"]
    # A change (the prod host, cert-manager TLS) is stored, not deployed: the flash says so.
    page.fill("[data-test=ing-host-prod]", a["prod_host"])
    page.select_option("[data-test=ing-tls-kind]", "cluster_issuer")
    page.fill("[data-test=ing-tls-value]", a["issuer"])
    page.click("[data-test=ing-save]")
    page.wait_for_selector("#flash.ok:has-text('Not deployed yet')")
    page.wait_for_selector("[data-test=ing-tls-kind]")
    page.select_option("[data-test=ing-deploy-where]", "env:test")
    page.click("[data-test=ing-deploy]")
    page.wait_for_url(re.compile(r"#/records/\d+$"))
    wait_record(page, "succeeded")
    return {"record": int(page.url.rsplit("/", 1)[1])}


def ingress_page_delete(b: Browser, a: dict):
    """In Chinese the list and the ingress page show no raw key; the delete says which
    clusters the ingress leaves and needs its name typed."""
    app = a["app"]
    _chinese_page_is_whole(b, a["token"], f"/apps/{app}/ingresses", "[data-test=ingress-row][data-name=www]")
    _chinese_page_is_whole(b, a["token"], f"/apps/{app}/ingresses/www", "[data-test=ing-delete-leaves]")
    page = b.page()
    paste_login(page, a["token"])
    page.goto(f"/#/apps/{app}/ingresses/www")
    assert a["cluster"] in page.locator("[data-test=ing-delete-leaves]").inner_text()
    page.fill("[data-test=ing-delete-name]", "ww")
    assert page.locator("[data-test=ing-delete-confirm]").is_disabled()
    page.fill("[data-test=ing-delete-name]", "www")
    page.click("[data-test=ing-delete-confirm]")
    page.wait_for_url(re.compile(r"#/records/\d+$"))
    wait_record(page, "succeeded")
    return {}


def ci_page(b: Browser, a: dict):
    """Link a service to Drone in the browser: the page shows the link's full webhook URL
    and the builds; in Chinese no raw key shows."""
    app = a["app"]
    page = b.page()
    paste_login(page, a["token"])
    page.goto(f"/#/apps/{app}")
    page.click("[data-test=service][data-name=web] [data-test=service-ci]")
    page.wait_for_selector("[data-test=ci-unlinked]")
    page.fill("[data-test=ci-server]", a["server"])
    page.fill("[data-test=ci-repo]", a["repo"])
    page.fill("[data-test=ci-token]", a["drone_token"])
    page.fill("[data-test=ci-image]", "registry.local/team/web")
    page.fill("[data-test=ci-secret]", a["secret"])
    page.select_option("[data-test=ci-auto-env]", "test")
    page.check("[data-test=ci-auto-route]")
    page.click("[data-test=ci-save]")
    url = page.locator("[data-test=ci-webhook-url]").inner_text()
    page.wait_for_selector("[data-test=ci-builds]")
    assert a["secret"] not in page.content() and a["drone_token"] not in page.content()
    page.fill("[data-test=ci-ref]", "release")
    page.click("[data-test=ci-build]")
    page.wait_for_selector("[data-test=build-row]:has-text('refs/heads/release')")
    _chinese_page_is_whole(b, a["token"], f"/apps/{app}/services/web/ci", "[data-test=ci-webhook-url]")
    return {"webhook_url": url}


def ci_page_unlink(b: Browser, a: dict):
    """Unlink from the CI page (confirmed): the page then says the service is not linked."""
    page = b.page()
    paste_login(page, a["token"])
    page.goto(f"/#/apps/{a['app']}/services/web/ci")
    page.click("[data-test=ci-unlink]")
    page.wait_for_selector("[data-test=ci-unlinked]")


def templates_page(b: Browser, a: dict):
    """Type a template into the app's editor (fields as rows): the live preview shows what
    it renders, asked once the typing pauses; a hostile body shows the policy's refusal with
    its rule, object and path; the good one is saved and then changed, another deleted; a
    viewer sees the list and no editor; in Chinese no raw key shows."""
    app = a["app"]
    page = _app_tab(b, a, "templates", "[data-test=tpl-form]")
    asked = []
    page.on("request", lambda r: asked.append(r.url) if r.url.endswith(f"/apps/{app}/templates/preview") else None)
    page.fill("[data-test=tpl-name]", "mine")
    page.select_option("[data-test=tpl-kind]", "version")
    for f in a["fields"]:
        page.click("[data-test=tpl-field-add]")
        row = page.locator("[data-test=tpl-field]").last
        row.locator("[data-test=tpl-field-name]").fill(f["name"])
        row.locator("[data-test=tpl-field-type]").select_option(f["type"])
        row.locator("[data-test=tpl-field-default]").fill(f["default"] if isinstance(f["default"], str)
                                                           else json.dumps(f["default"]))
    preview = page.locator("[data-test=tpl-preview]")
    page.fill("[data-test=tpl-body]", a["good"])
    preview.locator("[data-test=tpl-manifest][data-kind=Deployment]").wait_for()
    before = len(asked)
    page.locator("[data-test=tpl-body]").press("Control+End")
    page.locator("[data-test=tpl-body]").press_sequentially(a["typed"], delay=15)
    preview.locator("[data-test=tpl-manifest][data-kind=ConfigMap]").wait_for()
    typed_requests = len(asked) - before
    config_map = preview.locator("[data-test=tpl-manifest][data-kind=ConfigMap] pre").inner_text()
    page.fill("[data-test=tpl-body]", a["hostile"])
    preview.locator("[data-test=tpl-refusal] [data-test=tpl-rule]").wait_for()
    refusal = {k: preview.locator(f"[data-test=tpl-{k}]").inner_text() for k in ("rule", "object", "path")}
    refusal["message"] = preview.locator("[data-test=tpl-refusal]").inner_text()
    page.fill("[data-test=tpl-body]", a["good"] + a["typed"])
    preview.locator("[data-test=tpl-manifest][data-kind=ConfigMap]").wait_for()
    page.click("[data-test=tpl-save]")
    page.wait_for_url(re.compile(rf"#/apps/{app}/templates\?edit=mine$"))
    page.wait_for_selector("[data-test=template-row][data-name=mine]")
    # changed: the editor opens on the saved template, its preview already there
    preview.locator("[data-test=tpl-manifest][data-kind=ConfigMap]").wait_for()
    assert page.locator("[data-test=tpl-name]").is_disabled()
    page.locator("[data-test=tpl-field]").last.locator("[data-test=tpl-field-default]").fill("81")
    page.click("[data-test=tpl-save]")
    page.wait_for_selector("#flash.ok")
    page.click("[data-test=template-row][data-name=spare] [data-test=tpl-delete]")  # confirm() is accepted
    page.wait_for_selector("[data-test=template-row][data-name=spare]", state="detached")
    viewer = b.page()
    paste_login(viewer, a["viewer_token"])
    viewer.goto(f"/#/apps/{app}/templates")
    viewer.wait_for_selector("[data-test=template-row][data-name=mine]")
    viewer.wait_for_selector("[data-test=tpl-viewer-note]")
    shown_to_viewer = {k: viewer.locator(f"[data-test={k}]").count() for k in ("tpl-form", "tpl-preview", "tpl-delete")}
    _chinese_page_is_whole(b, a["token"], f"/apps/{app}/templates", "[data-test=template-row][data-name=mine]")
    return {"refusal": refusal, "typed_requests": typed_requests, "config_map": config_map,
            "viewer": shown_to_viewer}


SCENARIOS.update({f.__name__: f for f in (ingress_page_deploy, ingress_page_delete, ci_page, ci_page_unlink, templates_page)})



# -- issue 22: accessibility (axe-core) -----------------------------------------------------

AXE = Path(__file__).resolve().parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"


def _axe(page) -> list:
    """axe-core's violations on the page as it stands: rule id, impact, help and targets."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ["violations"]}))
        .violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                               targets: v.nodes.slice(0, 5).map(n => n.target.join(" "))}))""")
    return found


def accessibility(b: Browser, a: dict):
    """Every console page in English and Chinese (app pages as the owner, admin pages as a
    platform admin), axe-core run on each once it has rendered, then (given ``app``) on the
    states of ``_states``; returns all violations and which [page, lang] were checked."""
    if not AXE.exists():
        raise SystemExit(f"{AXE} is missing: `make test` installs it (`make a11y`)")
    out, checked = [], []
    for lang, locale in (("en", "en-US"), ("zh", "zh-CN")):
        for who, token in (("owner", a["owner"]), ("admin", a["admin"])):
            # The console's CSP (script-src 'self') would refuse the injected axe script.
            ctx = b.browser.new_context(locale=locale, base_url=b.url, bypass_csp=True,
                                        viewport={"width": 1280, "height": 860})
            ctx.set_default_timeout(20000)
            page = ctx.new_page()
            if who == "owner":
                page.goto("/#/login")
                page.wait_for_selector("[data-test=token-input]")
                out += [{**v, "page": "login", "lang": lang} for v in _axe(page)]
                checked.append(["login", lang])
            paste_login(page, token)
            for name, path, special in a["pages"]:
                if (special == "admin") != (who == "admin"):
                    continue
                try:
                    open_page(page, path, special)
                except Exception as e:
                    raise AssertionError(f"page {name} ({lang}, {path}) did not render") from e
                page.wait_for_timeout(400)
                out += [{**v, "page": name, "lang": lang} for v in _axe(page)]
                checked.append([name, lang])
            if who == "owner" and a.get("app"):
                for name, reach in _states(a["app"]):
                    try:
                        reach(page)
                    except Exception as e:
                        raise AssertionError(f"state {name} ({lang}) was not reached") from e
                    page.wait_for_timeout(300)
                    out += [{**v, "page": name, "lang": lang} for v in _axe(page)]
                    checked.append([name, lang])
            page.context.close()
    return {"violations": out, "checked": checked}


def _states(app):
    """[name, reach(page)] for what a page shows after someone used it: a confirmation
    open, a form's refusal shown, the version's logs followed. Each starts from its page."""
    version, ingresses = f"/#/apps/{app}/services/web/versions/v1", f"/#/apps/{app}/ingresses"

    def retire_open(page):
        page.goto(version)
        page.click("[data-test=op-retire]")
        page.wait_for_selector("[data-test=retire-box]:not([hidden])")
        page.fill("[data-test=retire-name]", "v")

    def bad_replicas(page):
        page.keyboard.press("Escape")  # the retire dialog (modal since issue 26) the state before left open
        page.goto(version)
        page.fill("[data-test=op-replicas]", "99")
        page.click("[data-test=op-scale]")
        page.wait_for_selector("#flash.error:not([hidden])")

    def logs_followed(page):
        page.goto(version)
        page.wait_for_selector("[data-test=log-follow]:not([disabled])")
        page.click("[data-test=log-follow]")
        page.wait_for_selector("[data-test=log-lines] .line", timeout=30000)
        page.fill("[data-test=log-search]", "seq")

    def ingress_refused(page):
        page.goto(ingresses)
        page.fill("[data-test=ing-name]", "Not_A_Name")
        page.fill("[data-test=ing-host]", "not a host!")
        page.click("[data-test=ing-save]")
        page.wait_for_selector("#flash.error:not([hidden])")

    def ingress_delete_armed(page):
        page.goto(f"{ingresses}/www")
        page.fill("[data-test=ing-delete-name]", "www")
        page.wait_for_selector("[data-test=ing-delete-confirm]:not([disabled])")

    def member_refused(page):
        page.goto(f"/#/apps/{app}/members")
        page.fill("[data-test=member-username]", "nobody-like-this")
        page.click("[data-test=member-add]")
        page.wait_for_selector("#flash.error:not([hidden])")

    return [["version-retire-open", retire_open], ["version-bad-replicas", bad_replicas],
            ["version-logs-followed", logs_followed], ["ingress-refused", ingress_refused],
            ["ingress-delete-armed", ingress_delete_armed], ["members-refused", member_refused]]


def viewer_pages(b: Browser, a: dict):
    """A viewer sees an app's ingresses (the list and one) and a service's CI link and
    builds, with no form and no control that changes them; a developer on the CI page may
    start a build but not change the link."""
    app = a["app"]
    page = b.page()
    paste_login(page, a["viewer"])
    checks = ((f"/apps/{app}/ingresses", "[data-test=ingress-row][data-name=www]"),
              (f"/apps/{app}/ingresses/www", "[data-test=ing-detail]"),
              (f"/apps/{app}/services/web/ci", "[data-test=build-row]"))
    for path, ready in checks:
        page.goto("/#" + path)
        page.wait_for_selector(ready)
        page.wait_for_selector("[data-test=viewer-note]")
        assert page.locator("main form, main input, main select, main textarea").count() == 0, path
        controls = ("ing-save", "ing-deploy", "ing-delete-confirm", "ci-save", "ci-unlink", "ci-build")
        assert page.locator(", ".join(f"[data-test={c}]" for c in controls)).count() == 0, path
    page.goto(f"/#/apps/{app}/ingresses/www")
    assert a["host"] in page.locator("[data-test=ing-detail]").inner_text()
    page.goto(f"/#/apps/{app}/services/web/ci")
    page.wait_for_selector("[data-test=ci-webhook-url]")
    assert page.locator("[data-test=ci-repo]").inner_text() == a["repo"]
    for path, ready in checks:
        _chinese_page_is_whole(b, a["viewer"], path, ready)

    dev = b.page()
    paste_login(dev, a["developer"])
    dev.goto(f"/#/apps/{app}/services/web/ci")
    dev.wait_for_selector("[data-test=ci-build]")
    assert dev.locator("[data-test=ci-save], [data-test=ci-unlink], main form input[type=password]").count() == 0
    assert "maintainers" in dev.locator("[data-test=viewer-note]").inner_text()
    dev.goto(f"/#/apps/{app}/ingresses/www")
    dev.wait_for_selector("[data-test=ing-deploy-where]")
    offered = dev.locator("[data-test=ing-deploy-where] option").evaluate_all("os => os.map(o => o.value)")
    assert "env:test" in offered and "env:prod" not in offered, offered
    return {}


SCENARIOS.update({f.__name__: f for f in (accessibility, viewer_pages)})


if __name__ == "__main__":
    sys.exit(main())
