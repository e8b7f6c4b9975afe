"""A broker that goes away right after a commit, for the outbox tests."""
from shared import outbox


def lose_first_publish(dependency, monkeypatch, relay_after: float = 0.5) -> dict:
    """The first publish through ``dependency`` (an EventPublisher or a LogShipper) fails as
    if the broker went away right after the commit; the outbox relay then picks up rows
    older than ``relay_after`` seconds. Returns the publish counter (``{"n": calls}``)."""
    sent = dependency.publisher.publish
    calls = {"n": 0}

    def broken_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("broker went away right after the commit")
        return sent(*args, **kwargs)

    monkeypatch.setattr(dependency.publisher, "publish", broken_once)
    monkeypatch.setattr(outbox, "RELAY_AFTER", outbox.timedelta(seconds=relay_after))
    return calls
