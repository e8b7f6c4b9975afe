"""CI link secrets are bound to the link's row id, not to app and service names; a link's
webhook address names that link only; audit details never carry a secret or a bot token."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from services.deploy.domain import ci_links
from services.deploy.models import CILink
from services.notify.domain import channels
from services.notify.models import Channel
from shared.outbound import Guard
from shared.secretbox import SecretBox, SecretBoxError, generate_key

APP = "shop-" + uuid.uuid4().hex[:6]  # rows of its own in the shared database
TOKEN, SECRET = "drone-token-0123456789", "hook-secret-0123456789abcdef"


@pytest.fixture
def db(db_session):
    """The run's MariaDB, everything rolled back after the test."""
    return db_session


@pytest.fixture
def box():
    return SecretBox(generate_key())


GUARD = Guard(resolver=lambda host, port: ["93.184.216.34"])


def link(db, box, app=APP, service="web", **extra) -> CILink:
    return ci_links.save_link(db, box, app, service, {
        "provider": "drone", "server": "https://drone.example.com", "repo": "team/web", "token": TOKEN,
        "image": "registry.example.com/team/web", "webhook_secret": SECRET, **extra}, "alice", guard=GUARD)


def test_secrets_are_sealed_to_the_link_id_not_the_names(db, box):
    made = link(db, box)
    assert TOKEN not in made.token_sealed and SECRET not in made.webhook_secret_sealed
    assert box.decrypt(made.token_sealed, f"ci-link:{made.id}:token") == TOKEN
    assert box.decrypt(made.webhook_secret_sealed, f"ci-link:{made.id}:webhook") == SECRET
    for sealed, what in ((made.token_sealed, "token"), (made.webhook_secret_sealed, "webhook")):
        with pytest.raises(SecretBoxError):
            box.decrypt(sealed, f"ci:{APP}/web:{what}")
    assert ci_links.webhook_secret(made, box) == SECRET
    assert ci_links.provider_for(made, box, guard=GUARD).token == TOKEN


def test_a_later_link_of_the_same_names_cannot_open_the_old_secrets(db, box):
    old = link(db, box)
    link(db, box, service="api")   # SQLite would hand the highest id out again; MySQL does not
    stolen = (old.token_sealed, old.webhook_secret_sealed)
    assert ci_links.delete_link(db, APP, "web") is not None
    later = link(db, box, token="later-token-0123", webhook_secret="later-secret-0123456789")
    assert later.id != old.id
    later.token_sealed, later.webhook_secret_sealed = stolen   # the old ciphertexts, copied over
    with pytest.raises(SecretBoxError):
        ci_links.webhook_secret(later, box)
    with pytest.raises(SecretBoxError):
        ci_links.provider_for(later, box, guard=GUARD)


def test_relinking_keeps_the_id_and_the_webhook_secret_unless_given(db, box):
    first = link(db, box)
    again = ci_links.save_link(db, box, APP, "web", {
        "provider": "drone", "server": "https://drone.example.com", "repo": "team/other", "token": "new-token-1",
        "image": "registry.example.com/team/web"}, "bob", guard=GUARD)
    assert again.id == first.id and ci_links.webhook_secret(again, box) == SECRET
    assert ci_links.provider_for(again, box, guard=GUARD).token == "new-token-1"


def test_values_marked_name_bound_by_migration_0019_are_resealed_on_first_read(db, box):
    made = link(db, box)
    made.token_sealed = ci_links.LEGACY + box.encrypt(TOKEN, f"ci:{APP}/web:token")
    made.webhook_secret_sealed = ci_links.LEGACY + box.encrypt(SECRET, f"ci:{APP}/web:webhook")
    db.flush()
    assert ci_links.webhook_secret(made, box) == SECRET
    assert not made.webhook_secret_sealed.startswith(ci_links.LEGACY)
    assert box.decrypt(made.webhook_secret_sealed, f"ci-link:{made.id}:webhook") == SECRET
    assert made.token_sealed.startswith(ci_links.LEGACY)   # the token: not read yet
    assert ci_links.provider_for(made, box, guard=GUARD).token == TOKEN
    assert box.decrypt(made.token_sealed, f"ci-link:{made.id}:token") == TOKEN


def test_an_unmarked_value_is_never_opened_with_a_name_context(db, box):
    made = link(db, box)
    made.webhook_secret_sealed = box.encrypt(SECRET, f"ci:{APP}/web:webhook")   # name-bound, not marked
    with pytest.raises(SecretBoxError):
        ci_links.webhook_secret(made, box)


def test_a_webhook_address_names_one_link_of_one_provider(db, box):
    made = link(db, box)
    assert ci_links.link_for_webhook(db, "drone", str(made.id)) is made
    for provider, link_id in (("drone", str(made.id + 1)), ("gitea", str(made.id)), ("drone", "1e3"),
                              ("drone", "-1"), ("drone", ""), ("drone", None), ("drone", "9" * 40),
                              ("drone", f"{made.id}/../1")):
        assert ci_links.link_for_webhook(db, provider, link_id) is None, (provider, link_id)


def test_the_link_answer_has_its_webhook_url_and_no_secret(db, box):
    made = link(db, box)
    answer = ci_links.link_dict(made)
    assert answer["webhook_url"] == f"/api/v1/hooks/ci/drone/{made.id}" and answer["id"] == made.id
    assert TOKEN not in str(answer) and SECRET not in str(answer)
    assert TOKEN not in str(ci_links.changes(made)) and SECRET not in str(ci_links.changes(made))


def test_a_short_webhook_secret_is_refused_before_anything_is_written(db, box):
    from shared.errors import Invalid

    with pytest.raises(Invalid):
        link(db, box, webhook_secret="short")
    assert db.scalars(select(CILink).where(CILink.app == APP)).all() == []


def test_channel_audit_details_carry_no_token_or_secret():
    bot = "https://open.feishu.cn/open-apis/bot/v2/hook/0123456789abcdef-token"
    channel = Channel(id=7, app=APP, name="ops", type="feishu", url="v1.sealed", secret="v1.sealed-secret",
                      url_masked=channels.mask_url(bot), events=["deploy.failed"], enabled=True)
    details = channels.audit_details(channel)
    assert channels.audit_target(channel) == f"app:{APP}/channel:7"
    assert details["host"] == "open.feishu.cn" and details["has_secret"] is True
    assert "0123456789abcdef" not in str(details) and "0123" not in str(details) and "sealed" not in str(details)
    channel.app = None
    assert channels.audit_target(channel) == "platform/channel:7"
