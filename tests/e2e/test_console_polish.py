"""Issue 26, "Console polish: what a person sees at a glance", in Chromium at 1400×900 against
the e2e stack (no mocked API): no untranslated key or missing value on any page in either
language; dates in the chosen language, unambiguous, relative where recency matters with the
exact time on hover; a date field that follows the language; empty lists that say what to do
next; destructive actions confirmed by typing the name after reading what happens on which
clusters. The browser sides are console_polish_scenarios.py and console_confirm_scenarios.py;
their screenshots land in docs/screenshots (MAE_SCREENSHOTS) and are checked here.
"""
from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.cluster_objects import get
from tests.e2e.console_polish_scenarios import SHOTS
from tests.e2e.screenshots import console_pages, seed_shop
from tests.e2e.test_console import scenario

MODULE = "tests.e2e.console_polish_scenarios"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
# Minutes or hours ago (records made by this module, reports every few seconds).
RELATIVE = {"en": re.compile(r"^(now|\d+ (min|hr) ago)$"), "zh": re.compile(r"^(现在|\d+(分钟|小时)前)$")}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def day_text(d: datetime, lang: str) -> str:
    """A date as the console must show it (Intl, en-GB / zh-CN): `3 Dec 2026` / `2026年12月3日`;
    ICU may spell September `Sept`, accepted by ``matches_day``."""
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}" if lang == "en" else f"{d.year}年{d.month}月{d.day}日"


def matches_day(shown: str, d: datetime, lang: str, clock: str = "") -> bool:
    expected = day_text(d, lang) + ((", " if lang == "en" else " ") + clock if clock else "")
    return shown == expected or shown == expected.replace(" Sep ", " Sept ")


def fresh(files, started: float):
    for name in files:
        path = SHOTS / name
        assert path.exists() and path.stat().st_size > 10_000 and path.stat().st_mtime >= started, name


def run(name, **args):
    return scenario(name, timeout=600, module=MODULE, **args)


@pytest.fixture(scope="module")
def shop(request, stack, admin, login):
    """The app ``polish-shop`` as screenshots.py seeds it: v1 deployed, v2 failed on test."""
    owner, cluster, records = seed_shop(request, stack, admin, login, "polish-shop")
    return owner, cluster, records


def test_no_page_shows_a_raw_key_or_a_missing_value_in_either_language(stack, admin, shop):
    owner, _cluster, records = shop
    app = "polish-shop"
    pages = console_pages(app, records) + [["templates-all", "/#/templates", None],
                                           ["cli", "/#/cli?port=45678&state=polish-check-state-0123", None],
                                           ["ingress", f"/#/apps/{app}/ingresses/www", None]]
    started = time.time()
    seen = run("glance", url=stack.url, owner=owner.token, admin=admin.token, pages=pages, app=app)
    # The detector is not blind: planted keys are caught, hostnames/images/versions/files are not.
    assert seen["detector"]["caught"] == ["env.test", "event.deploy.failed", "role.admin", "status.weird_one",
                                          "undefined"], seen["detector"]
    assert not seen["found"], seen["found"]
    owner_pages = [p for p in pages if p[2] != "admin"]
    assert len(seen["checked"]) == 2 * (len(owner_pages) + len(pages))
    assert seen["lang"] == {"en": "en", "zh": "zh-CN"}
    assert seen["admin_role"] == {"en": "platform admin", "zh": "平台管理员"}
    fresh(seen["written"], started)


def test_dates_read_the_same_in_the_chosen_language_everywhere(stack, admin, shop):
    owner, cluster, records = shop
    app = "polish-shop"
    soon = (datetime.now(timezone.utc) + timedelta(days=45)).date()
    server = admin.get("/servers", params={"limit": 200}).json()["items"]
    (db,) = [s for s in server if s["name"] == "db-primary"]  # seed_shop adds it once per session
    run_id = uuid.uuid4().hex[:6]
    new_server = {"en": f"polish-en-{run_id}", "zh": f"polish-zh-{run_id}"}
    started = time.time()
    seen = run("dates", url=stack.url, owner=owner.token, admin=admin.token, app=app, record=records["v1"],
               cluster=cluster, server="db-primary", new_server=new_server,
               new_expiry=[soon.year, soon.month, soon.day])
    created = when(owner.get(f"/apps/{app}").json()["created_at"])
    record = owner.get(f"/records/{records['v1']}").json()
    report = admin.get(f"/clusters/{cluster}").json()["last_report_at"]
    for lang in ("en", "zh"):
        got = seen[lang]
        # Lists: unambiguous day, month named, 24-hour clock (UTC in this browser).
        assert matches_day(got["app_created"]["text"], created, lang, created.strftime("%H:%M")), got["app_created"]
        assert when(got["app_created"]["datetime"]) == created.replace(microsecond=created.microsecond // 1000 * 1000)
        # Recency: relative, the exact time on hover and in datetime.
        assert RELATIVE[lang].match(got["record"]["text"]), got["record"]
        made = when(record["created_at"])
        assert abs((when(got["record"]["datetime"]) - made).total_seconds()) < 1
        title = got["record"]["title"].replace(" Sept ", " Sep ")
        assert title.startswith(day_text(made, lang)) and made.strftime("%H:%M:%S") in title, got["record"]
        assert RELATIVE[lang].match(got["report"]["text"]), got["report"]  # the operator reports every few s
        assert abs((when(got["report"]["datetime"]) - when(report)).total_seconds()) < 120
        # A server's expiry: its calendar day.
        assert matches_day(got["expiry"]["text"], when(db["expires_at"]), lang), (got["expiry"], db["expires_at"])
        # The date field follows the page's language; no native date input (mm/dd/yyyy) is left.
        assert got["html_lang"] == ("en" if lang == "en" else "zh-CN")
        assert got["native_date_inputs"] == 0
        assert got["order"] == (["day", "month", "year"] if lang == "en" else ["year", "month", "day"])
        assert got["months"][1:] == ([m if m != "Sep" else got["months"][9] for m in MONTHS] if lang == "en"
                                     else [f"{n}月" for n in range(1, 13)])
        assert got["legend"] == ("Expires" if lang == "en" else "到期时间")
        assert not got["axe"], got["axe"]
        assert not got["found_app"] and not got["found_servers"], (got["found_app"], got["found_servers"])
        # The server added through the field expires that day, and the list says so.
        added = next(s for s in admin.get("/servers", params={"limit": 200}).json()["items"]
                     if s["name"] == new_server[lang])
        assert added["expires_at"].startswith(soon.isoformat()), added
        assert got["added"]["datetime"] == soon.isoformat()
        assert matches_day(got["added"]["text"], datetime(soon.year, soon.month, soon.day), lang), got["added"]
    fresh(seen["written"], started)


def test_empty_lists_say_what_to_do_next_with_the_button_the_role_allows(stack, login):
    run_id = uuid.uuid4().hex[:6]
    newbie, owner, viewer = (login(f"polish-{who}-{run_id}") for who in ("new", "owner", "viewer"))
    bare, noversions = f"polish-bare-{run_id}", f"polish-nov-{run_id}"
    for app in (bare, noversions):
        assert owner.post("/apps", json={"name": app}).status_code == 201
        assert owner.put(f"/apps/{app}/members/polish-viewer-{run_id}", json={"role": "viewer"}).status_code == 200
    assert owner.post(f"/apps/{noversions}/services", json={"name": "web"}).status_code == 201
    assert newbie.get("/apps").json()["items"] == []
    started = time.time()
    seen = run("empty_states", url=stack.url, newbie=newbie.token, owner=owner.token, viewer=viewer.token,
               bare=bare, noversions=noversions)
    words = {
        "en": {"apps": ("You have no applications yet. Create one", "Create an application"),
               "services": ("This application has no services yet. Add one", "Add a service"),
               "versions": ("web has no versions yet. Add one with the image to run", "Add a version"),
               "viewer": "Its developers and owners can add them."},
        "zh": {"apps": ("你还没有应用。新建一个", "新建应用"),
               "services": ("此应用还没有服务。先添加一个", "添加服务"),
               "versions": ("web 还没有版本。添加一个要运行的镜像版本", "添加版本"),
               "viewer": "应用的开发者和所有者可以添加。"},
    }
    focus = {"apps": "new-app-name", "services": "new-service-name", "versions": "new-version-name"}
    for lang in ("en", "zh"):
        for step, (sentence, button) in ((k, v) for k, v in words[lang].items() if k != "viewer"):
            got = seen[lang][step]
            assert got["sentence"].startswith(sentence), got
            assert got["buttons"] == [button], got
            assert got["focused"] == focus[step], got   # the button leads to where the next step is typed
            assert not got["found"] and not got["axe"], got
            if step != "apps":
                view = seen[lang][step + "_viewer"]
                assert view["sentence"].endswith(words[lang]["viewer"]) and view["buttons"] == 0, view
                assert view["forms"] == 0, view
    assert newbie.get("/apps").json()["items"] == []   # nothing was created by looking
    fresh(seen["written"], started)


def test_destructive_actions_say_what_happens_where_and_want_the_name(request, stack, admin, login, clusters):
    app = f"polish-del-{uuid.uuid4().hex[:5]}"
    owner, cluster, _records = seed_shop(request, stack, admin, login, app)
    token_name = f"polish-token-{uuid.uuid4().hex[:5]}"
    made = owner.post("/tokens", json={"name": token_name, "expires_in_days": 7})
    assert made.status_code == 201, made.text
    secret = made.json()["token"]
    registered = sorted(c["name"] for c in admin.get("/clusters").json()["items"])
    info = clusters[cluster]
    assert get(info, "deployment", "web-v2", "-n", app) is not None   # v2's objects are on test
    started = time.time()
    seen = run("confirmations", url=stack.url, owner=owner.token, app=app, member="li.wei", token_name=token_name,
               kubeconfig=info["kubeconfig"])

    explain = {
        "en": {"delete-version": f"This deletes version v2 of web and removes its objects from clusters {cluster}.",
               "retire": f"v1 leaves {cluster}: its objects there are removed.",
               "remove-member": f"This removes li.wei (developer) from {app}: they lose access to it at once. "
                                "Nothing changes on any cluster",
               "revoke-token": f"This revokes the token {token_name}: the command line, scripts or CI using it "
                               "stop working at once. Nothing changes on any cluster.",
               "delete-app": f"This deletes the application {app} with its services, versions, ingresses and "
                             f"templates, and removes its namespace {app} and everything running in it from "
                             f"clusters {', '.join(registered)}."},
        "zh": {"delete-version": f"这会删除 web 的版本 v2，并从集群 {cluster} 上删除它的对象。",
               "retire": f"v1 将离开 {cluster}",
               "remove-member": f"这会将 li.wei（开发者）移出 {app}",
               "revoke-token": f"这会吊销令牌 {token_name}",
               "delete-app": f"从集群 {', '.join(registered)} 上删除它的命名空间 {app}"},
    }
    typed = {"delete-version": "v2", "retire": "v1", "remove-member": "li.wei", "revoke-token": token_name,
             "delete-app": app}
    for lang in ("zh", "en"):
        for name, got in seen[lang].items():
            assert explain[lang][name] in got["explain"], (lang, name, got["explain"])
            assert typed[name] in got["label"], got
            assert got["focused"] and got["focused"].endswith("name"), got      # the cursor is in the name field
            assert got["disabled_empty"] and got["disabled_partial"], got
            assert got["open_after_wrong_enter"], got
            assert not got["axe"] and not got["found"], got
            # Escape / Cancel did nothing: still there, same page, focus back on the opener.
            assert got["still_there"], (lang, name)
            assert got["focus_back"] in ("op-delete", "op-retire", "member-remove", "revoke", "app-delete"), got
    done = seen["done"]
    assert done["tab_to"] == "delete-confirm" and done["app_listed"] == 0, done
    assert done["record_heading"].startswith("Delete"), done
    # What the dialogs said happened: through the API and on the cluster (kubectl).
    assert done["record_status"] == "succeeded" and not done["v2_left"] and done["v1_left"], done
    assert all(t["name"] != token_name for t in owner.get("/tokens").json()["items"])
    from tests.e2e.conftest import Api
    assert Api(stack.url, secret).get("/me").status_code == 401
    assert owner.get(f"/apps/{app}").status_code == 404
    deadline = time.monotonic() + 60
    while (ns := get(info, "namespace", app)) is not None and time.monotonic() < deadline:
        if ns["metadata"].get("deletionTimestamp"):
            break
        time.sleep(0.5)
    assert ns is None or ns["metadata"].get("deletionTimestamp"), ns
    fresh(seen["written"], started)
