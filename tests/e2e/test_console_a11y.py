"""Issue 22: axe-core (tests/e2e/a11y, pinned, installed by `make test`) over every console
page in English and Chinese; any `serious` or `critical` violation fails the test."""
from __future__ import annotations

from tests.e2e.screenshots import console_pages, seed_shop
from tests.e2e.test_console import scenario


def test_every_console_page_has_no_serious_accessibility_violation(request, stack, admin, login):
    app = "a11y-shop"
    owner, _cluster, records = seed_shop(request, stack, admin, login, app)
    pages = console_pages(app, records) + [["templates-all", "/#/templates", None], ["cli", "/#/cli?port=45678&state=a11y-check-state-0123", None]]
    result = scenario("accessibility", timeout=600, url=stack.url, owner=owner.token, admin=admin.token,
                      pages=pages)
    seen = {(v["page"], v["lang"]) for v in result["violations"]}
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, "\n".join(f"{v['impact']} {v['id']} on {v['page']} ({v['lang']}): {v['help']} — "
                              f"{', '.join(v['targets'])}" for v in bad)
    assert seen <= {(p[0], lang) for p in pages + [["login"]] for lang in ("en", "zh")}
