"""Idempotency-Key on the requests that create a deploy record.

A client whose POST …/deploy timed out (or got a 503 while the broker restarted)
cannot know whether the deploy was recorded; the fault suite saw such retries make a
second record. With the same key the retry gets the first answer back instead.
"""
import concurrent.futures
import uuid

from tests.e2e.test_deploy import finished, new_app, new_version, team  # noqa: F401  (fixture)


def records_of(client, app):
    return [r["id"] for r in client.get(f"/apps/{app}/records").json()["items"]]


def test_a_retried_deploy_with_the_same_key_makes_one_record(team):  # noqa: F811
    app = new_app(team, "idem")
    new_version(team, app, "nginx:1.27")
    dev = team["developer"]
    key = str(uuid.uuid4())
    path = f"/apps/{app}/services/web/versions/v1/deploy"

    first = dev.post(path, json={"env": "test"}, headers={"Idempotency-Key": key})
    assert first.status_code == 202, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = dev.post(path, json={"env": "test"}, headers={"Idempotency-Key": key})
    assert again.status_code == 202, again.text
    assert again.json()["record_id"] == first.json()["record_id"]
    assert again.json()["replayed"] is True and again.headers["Idempotent-Replayed"] == "true"
    assert records_of(dev, app) == [first.json()["record_id"]]
    assert finished(dev, first.json()["record_id"])["status"] == "succeeded"

    # the same key for another request is a mistake, refused with nothing done
    new_version(team, app, "nginx:1.28", name="v2")
    other = dev.post(f"/apps/{app}/services/web/versions/v2/deploy", json={"env": "test"},
                     headers={"Idempotency-Key": key})
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["error"]["message"]
    # a key is the caller's own: someone else's identical key is a request of theirs
    mine = team["maintainer"].post(path, json={"env": "test"}, headers={"Idempotency-Key": key})
    assert mine.status_code == 202 and mine.json()["record_id"] != first.json()["record_id"]
    # without a key every POST is a new deploy, as before
    plain = dev.post(path, json={"env": "test"})
    assert plain.status_code == 202
    assert len(records_of(dev, app)) == 3


def test_concurrent_twins_with_one_key_make_one_record(team):  # noqa: F811
    app = new_app(team, "idem")
    new_version(team, app, "nginx:1.27")
    dev = team["developer"]
    key = str(uuid.uuid4())
    path = f"/apps/{app}/services/web/versions/v1/deploy"

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: dev.post(path, json={"env": "test"}, headers={"Idempotency-Key": key}),
                                range(6)))
    accepted = [a for a in answers if a.status_code == 202]
    # a twin that found the first still being recorded is told to retry (409), never given a record of its own
    assert all(a.status_code in (202, 409) for a in answers), [a.text for a in answers]
    assert accepted and len({a.json()["record_id"] for a in accepted}) == 1
    assert len(records_of(dev, app)) == 1
    retry = dev.post(path, json={"env": "test"}, headers={"Idempotency-Key": key})
    assert retry.status_code == 202 and retry.json()["record_id"] == accepted[0].json()["record_id"]


def test_rollback_takes_a_key_too_and_bad_keys_are_refused(team):  # noqa: F811
    app = new_app(team, "idem")
    new_version(team, app, "nginx:1.27")
    dev = team["developer"]
    first = dev.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"env": "test"}).json()["record_id"]
    assert finished(dev, first)["status"] == "succeeded"
    key = str(uuid.uuid4())
    a = dev.post(f"/records/{first}/rollback", headers={"Idempotency-Key": key})
    b = dev.post(f"/records/{first}/rollback", headers={"Idempotency-Key": key})
    assert a.status_code == b.status_code == 202 and a.json()["record_id"] == b.json()["record_id"]
    assert len(records_of(dev, app)) == 2

    bad = dev.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"env": "test"},
                   headers={"Idempotency-Key": "x" * 256})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "Idempotency-Key"
    assert len(records_of(dev, app)) == 2
