"""Browser scenario for tests/e2e/test_console_tree.py (run in a process of its own, like
``console_scenarios.py``): the app page's live resource trees.

    python -m tests.e2e.console_tree_scenarios app_tree   < args.json
"""
from __future__ import annotations

import json
import sys
import time

from tests.e2e.console_scenarios import Browser, _chinese_page_is_whole, api, chromium, paste_login

WHOLE = "[data-test=version-tree][data-version=v1] [data-test=cluster-tree][data-cluster='{cluster}']"


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


def app_tree(b: Browser, a: dict):
    """The app page open while v1 is deployed through the API: its tree appears and moves
    from a pod not ready to the pod Ready in the same document (no reload), asking every
    second meanwhile and every ten once settled; a closed cluster stays closed across
    refreshes; leaving the page stops the asking. In Chinese no raw key shows."""
    app, cluster, token = a["app"], a["cluster"], a["token"]
    tree = WHOLE.format(cluster=cluster)
    page = b.page()
    asked: list[float] = []
    page.on("request", lambda r: asked.append(time.monotonic()) if r.url.endswith("/versions/v1/resources") else None)
    paste_login(page, token)
    page.goto(f"/#/apps/{app}")
    page.wait_for_selector("[data-test=resources] [data-test=no-trees]")
    page.evaluate("window.__sameDocument = 'yes'")

    sent = api(a["url"], token, "POST", f"/apps/{app}/services/web/versions/v1/deploy", json={"clusters": [cluster]})
    assert sent.status_code == 202, sent.text
    waiting = page.wait_for_selector(f"{tree} [data-test=tree-replicaset][data-current=true] "
                                     "[data-test=tree-pod][data-ready=false]", timeout=60_000)
    assert waiting.query_selector("[data-state]").get_attribute("data-state") in ("rolling", "waiting")
    assert page.get_attribute("[data-test=tree-refresh]", "data-busy") == "true"
    assert page.locator(f"{tree} [data-test=tree-deployment]").get_attribute("data-name") == "web-v1"
    started = time.monotonic()
    page.wait_for_selector(f"{tree} [data-test=tree-replicaset][data-current=true] "
                           "[data-test=tree-pod][data-ready=true] [data-state=ready]", timeout=90_000)
    busy_asks = [t for t in asked if t >= started]
    assert len(busy_asks) >= 3 and max(_gaps(busy_asks)) < 3.5, _gaps(busy_asks)
    assert page.evaluate("window.__sameDocument") == "yes"   # no reload on the way
    page.wait_for_selector(f"{tree} [data-test=tree-deployment] > [data-state=ready]")

    # Settled (the record succeeded, the pod is ready): every ten seconds. The grid's cell and
    # the history say so too, in place.
    page.wait_for_selector("[data-test=tree-refresh][data-busy=false]", timeout=60_000)
    page.wait_for_selector(f"[data-test=version-row][data-name=v1] td[data-cluster='{cluster}'] [data-status=succeeded]")
    assert page.locator("[data-test=record-row]").count() == 1
    assert page.evaluate("window.__sameDocument") == "yes"
    calm = time.monotonic()
    page.wait_for_timeout(6000)
    assert len([t for t in asked if t > calm]) <= 1, _gaps(asked)

    # A restart is in progress again: fast again; a cluster closed by hand stays closed.
    sent = api(a["url"], token, "POST", f"/apps/{app}/services/web/versions/v1/restart", json={"clusters": [cluster]})
    assert sent.status_code == 202, sent.text
    page.click(f"{tree} > summary")
    assert page.eval_on_selector(tree, "el => el.open") is False
    page.wait_for_selector(f"{tree} [data-test=tree-replicaset] >> nth=1", state="attached", timeout=30_000)
    page.wait_for_selector("[data-test=tree-refresh][data-busy=true]", state="attached")
    page.wait_for_timeout(2500)
    assert page.eval_on_selector(tree, "el => el.open") is False
    page.click(f"{tree} > summary")
    assert page.locator(f"{tree} [data-test=tree-replicaset]").count() == 2
    assert page.locator(f"{tree} > summary [data-state]").get_attribute("data-state") == "rolling"
    page.wait_for_selector("[data-test=record-row] >> nth=1")

    # Leaving the page stops the asking, even mid-rollout.
    page.goto(f"/#/apps/{app}/members")
    page.wait_for_selector("main h1")
    left = time.monotonic() + 1.0
    page.wait_for_timeout(4000)
    assert not [t for t in asked if t > left], "the tree kept asking after the page was left"
    page.context.close()

    _chinese_page_is_whole(b, token, f"/apps/{app}", f"{tree} [data-test=tree-pod]")
    return {"asked": len(asked)}


SCENARIOS = {"app_tree": app_tree}


def main() -> int:
    args = json.loads(sys.stdin.read() or "{}")
    with chromium(args["url"]) as b:
        result = SCENARIOS[sys.argv[1]](b, args) or {}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
