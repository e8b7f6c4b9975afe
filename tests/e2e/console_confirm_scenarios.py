"""Browser scenario for tests/e2e/test_console_polish.py: the destructive actions' confirmation
(gateway/console/confirm.js), run through ``console_polish_scenarios`` (its ``main`` finds
the scenarios here).

In Chinese each dialog is opened, read, checked by axe-core, photographed and left with
Escape or Cancel (nothing happens: the API still has the thing); in English the same, then
each is carried out by typing the name: revoke a token, remove a member, delete a version
(keyboard only), delete the application. The test checks the outcome through the API and
kubectl.
"""
from __future__ import annotations

import re

from tests.e2e.cluster_objects import get
from tests.e2e.console_polish_scenarios import new_page, raw_words, shot
from tests.e2e.console_scenarios import _axe, api, wait_record


def _dialogs(a: dict) -> list:
    """[name, path, opener, box, typed-name, GET that must still answer 200 afterwards]."""
    app = a["app"]
    version = f"/apps/{app}/services/web/versions"
    return [
        ["delete-version", f"/#{version}/v2", "[data-test=op-delete]", "delete", "v2", f"{version}/v2"],
        ["retire", f"/#{version}/v1", "[data-test=op-retire]", "retire", "v1", f"{version}/v1"],
        ["remove-member", f"/#/apps/{app}/members",
         f"[data-test=member-row][data-username='{a['member']}'] [data-test=member-remove]", "confirm",
         a["member"], f"/apps/{app}/members"],
        ["revoke-token", "/#/account", f"[data-test=token-row][data-name='{a['token_name']}'] [data-test=revoke]",
         "confirm", a["token_name"], "/tokens"],
        ["delete-app", f"/#/apps/{app}", "[data-test=app-delete]", "confirm", app, f"/apps/{app}"],
    ]


def _hooks(kind: str) -> dict:
    if kind == "retire":
        return {"box": "retire-box", "explain": "retire-leaves", "input": "retire-name", "confirm": "retire-confirm"}
    if kind == "delete":
        return {"box": "delete-box", "explain": "delete-explain", "input": "delete-name", "confirm": "delete-confirm"}
    return {"box": "confirm-box", "explain": "confirm-explain", "input": "confirm-name", "confirm": "confirm-confirm"}


def _open(page, path, opener, hooks):
    page.goto(path)
    page.locator(opener).wait_for()
    page.wait_for_timeout(300)  # the app page's first tree refresh settles
    page.click(opener)
    box = page.locator(f"dialog[data-test={hooks['box']}]")
    box.wait_for()
    return box


def _still_there(a: dict, check: str) -> bool:
    answer = api(a["url"], a["owner"], "GET", check)
    if check == "/tokens":
        return any(t["name"] == a["token_name"] for t in answer.json()["items"])
    if check.endswith("/members"):
        return any(m["username"] == a["member"] for m in answer.json()["items"])
    return answer.status_code == 200


def confirmations(b, a: dict):
    out = {"written": [], "zh": {}, "en": {}}
    for lang, locale in (("zh", "zh-CN"), ("en", "en-US")):
        page = new_page(b, locale, a["owner"], axe=True)
        for i, (name, path, opener, kind, typed, check) in enumerate(_dialogs(a)):
            hooks = _hooks(kind)
            box = _open(page, path, opener, hooks)
            confirm = box.locator(f"[data-test={hooks['confirm']}]")
            seen = {"title": box.locator("h2").inner_text(),
                    "explain": box.locator(f"[data-test={hooks['explain']}]").inner_text(),
                    "label": box.locator("label").inner_text(),
                    "focused": page.evaluate("document.activeElement.dataset.test"),
                    "disabled_empty": confirm.is_disabled()}
            page.keyboard.type(typed[:-1])
            seen["disabled_partial"] = confirm.is_disabled()
            page.keyboard.press("Enter")  # a wrong name: nothing happens, the dialog stays
            seen["open_after_wrong_enter"] = box.is_visible()
            seen["axe"] = [v for v in _axe(page) if v["impact"] in ("serious", "critical")]
            seen["found"] = raw_words(page)
            out["written"].append(shot(page, f"confirm-{name}", lang))
            # Left with Escape (Cancel for every other one): the dialog goes, focus returns.
            if i % 2 == 0:
                page.keyboard.press("Escape")
            else:
                box.locator("[data-test=confirm-cancel]").click()
            box.wait_for(state="detached")
            seen["focus_back"] = page.evaluate("document.activeElement.dataset.test")
            page.wait_for_timeout(500)
            seen["still_there"] = _still_there(a, check)
            seen["url"] = page.url
            out[lang][name] = seen
        if lang == "en":
            out["done"] = carry_out(page, a)
        page.context.close()
    return out


def carry_out(page, a: dict) -> dict:
    """Revoke, remove, delete the version by keyboard alone (then read the cluster with
    kubectl), delete the application."""
    dialogs = {d[0]: d for d in _dialogs(a)}
    done = {}

    def armed(name):
        _, path, opener, kind, typed, _check = dialogs[name]
        hooks = _hooks(kind)
        box = _open(page, path, opener, hooks)
        page.keyboard.type(typed)
        return box, box.locator(f"[data-test={hooks['confirm']}]")

    box, confirm = armed("revoke-token")
    confirm.click()
    page.wait_for_selector(f"[data-test=token-row][data-name='{a['token_name']}']", state="detached")
    done["revoke-token"] = True

    box, confirm = armed("remove-member")
    confirm.click()
    page.wait_for_selector(f"[data-test=member-row][data-username='{a['member']}']", state="detached")
    done["remove-member"] = True

    # Keyboard only: the name typed, Tab to the button (enabled now), Enter.
    box, confirm = armed("delete-version")
    page.keyboard.press("Tab")
    done["tab_to"] = page.evaluate("document.activeElement.dataset.test")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"#/records/\d+$"))
    wait_record(page, "succeeded")
    done["version_record"] = int(page.url.rsplit("/", 1)[1])
    done["record_heading"] = page.locator("h1").inner_text()
    # Before the app goes (and its records and namespace with it): what the record did, by
    # the API and by kubectl on the cluster the dialog named.
    done["record_status"] = api(a["url"], a["owner"], "GET", f"/records/{done['version_record']}").json()["status"]
    objects = {"kubeconfig": a["kubeconfig"]}
    done["v2_left"] = get(objects, "deployment", "web-v2", "-n", a["app"]) is not None
    done["v1_left"] = get(objects, "deployment", "web-v1", "-n", a["app"]) is not None

    box, confirm = armed("delete-app")
    confirm.click()
    page.wait_for_url(re.compile(r"#/apps$"))
    page.wait_for_selector("[data-test=apps-table], [data-test=apps-empty]")
    done["app_listed"] = page.locator(f"[data-test=app-row][data-name='{a['app']}']").count()
    return done


SCENARIOS = {"confirmations": confirmations}
