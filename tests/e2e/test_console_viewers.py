"""Issue 22: on the ingress and CI pages a viewer sees the lists and the link, never a form
or a button they could not use (the API would refuse it with 403); a developer may start
a build but not change the CI link, and is offered the test environment only for an
ingress's deploy. The browser side is ``viewer_pages`` in console_scenarios.py."""
from __future__ import annotations

import uuid
from contextlib import contextmanager

from tests.e2e.test_console import scenario
from tests.fakes.drone import FakeDrone


@contextmanager
def drone_linked(owner, app: str, service: str = "web"):
    """``app``'s ``service`` linked (by ``owner``) to a running FakeDrone with one build of
    main; the Drone stops when the block ends."""
    token = "drone-" + uuid.uuid4().hex
    with FakeDrone(token, repo=f"team/{app}") as drone:
        drone.add_build(1, "success", "refs/heads/main", event="push")
        linked = owner.put(f"/apps/{app}/services/{service}/ci", json={
            "provider": "drone", "server": drone.base_url, "repo": drone.repo, "token": token,
            "image": "registry.local/team/web", "webhook_secret": "hook-" + uuid.uuid4().hex})
        assert linked.status_code == 200, linked.text
        yield drone


def test_a_viewer_sees_ingresses_and_ci_without_their_forms(stack, login):
    run = uuid.uuid4().hex[:6]
    owner, viewer, developer = (login(f"web-{who}-{run}") for who in ("owner", "viewer", "dev"))
    app = f"web-viewers-{run}"
    assert owner.post("/apps", json={"name": app}).status_code == 201
    for who, role in ((f"web-viewer-{run}", "viewer"), (f"web-dev-{run}", "developer")):
        assert owner.put(f"/apps/{app}/members/{who}", json={"role": role}).status_code == 200
    assert owner.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    host = f"www.{app}.example.com"
    made = owner.post(f"/apps/{app}/ingresses", json={"name": "www", "host": host,
                                                      "routes": [{"path": "/", "service": "web"}]})
    assert made.status_code == 201, made.text
    with drone_linked(owner, app) as drone:
        scenario("viewer_pages", url=stack.url, app=app, viewer=viewer.token, developer=developer.token,
                 host=host, repo=drone.repo)
        assert len(drone.builds) == 1  # nobody started a build
    assert owner.get(f"/apps/{app}/ingresses/www").json()["host"] == host
