"""Issue 22: axe-core (tests/e2e/a11y, pinned, installed by `make test`) over every console
page in English and Chinese, and over what pages show once used (console_scenarios._states:
the retire confirmation open, a form's refusal shown, the version's logs followed); any
`serious` or `critical` violation fails the test. The app's service is linked to a Drone,
so the CI page shows its link and builds too."""
from __future__ import annotations

from tests.e2e.screenshots import console_pages, seed_shop
from tests.e2e.test_console import scenario
from tests.e2e.test_console_viewers import drone_linked

STATES = ["version-retire-open", "version-bad-replicas", "version-logs-followed", "ingress-refused",
          "ingress-delete-armed", "members-refused"]


def test_every_console_page_has_no_serious_accessibility_violation(request, stack, admin, login):
    app = "a11y-shop"
    owner, _cluster, records = seed_shop(request, stack, admin, login, app)
    pages = console_pages(app, records) + [["templates-all", "/#/templates", None],
                                           ["cli", "/#/cli?port=45678&state=a11y-check-state-0123", None],
                                           ["ingress", f"/#/apps/{app}/ingresses/www", None]]
    with drone_linked(owner, app):
        result = scenario("accessibility", timeout=600, url=stack.url, owner=owner.token, admin=admin.token,
                          pages=pages, app=app)
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, "\n".join(f"{v['impact']} {v['id']} on {v['page']} ({v['lang']}): {v['help']} — "
                              f"{', '.join(v['targets'])}" for v in bad)
    expected = {(name, lang) for name in [p[0] for p in pages] + ["login", *STATES] for lang in ("en", "zh")}
    assert {tuple(c) for c in result["checked"]} == expected
