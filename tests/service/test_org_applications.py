"""Applications and their members on MariaDB (services/org/domain/apps.py).

The domain functions as the org service calls them, in one transaction that is rolled
back afterwards: names, the owner made at creation, who may create and how many, roles,
and the rule that an application always keeps an owner.
"""
from __future__ import annotations

import random
import uuid

import pytest

from services.org.domain import apps
from shared.errors import AlreadyExists, Conflict, Forbidden, Invalid, NamespaceExists, NotFound, \
    QuotaExceeded, ReservedName


def person(is_admin=False) -> dict:
    n = random.randint(10**9, 10**10)
    return {"id": n, "username": f"org-{n}", "is_admin": is_admin}


def fresh_name() -> str:
    return f"dom-{uuid.uuid4().hex[:10]}"


def made(db, owner=None, **data):
    owner = owner or person()
    return apps.create_app(db, {"name": fresh_name(), **data}, owner["id"], owner["username"]), owner


# -- creating ----------------------------------------------------------------------------

def test_a_new_application_is_owned_by_its_creator(db_session):
    owner = person()
    name = fresh_name()
    app = apps.create_app(db_session, {"name": name, "description": "the shop"}, owner["id"], owner["username"])
    assert app.id and app.name == name and app.display_name == name and app.description == "the shop"
    assert app.created_by == owner["username"]
    assert apps.role_of(db_session, app, owner["id"]) == "owner"
    assert apps.get_app(db_session, name) is app
    shown = apps.app_dict(app, "owner")
    assert (shown["name"], shown["display_name"], shown["role"]) == (name, name, "owner")
    assert shown["created_at"].endswith("Z") and "role" not in apps.app_dict(app)


def test_a_name_is_a_dns_label_not_reserved_and_not_taken(db_session):
    app, owner = made(db_session)
    with pytest.raises(AlreadyExists):
        apps.create_app(db_session, {"name": app.name}, owner["id"], owner["username"])
    for name in ("Shop", "-shop", "shop_1", "x" * 64, "", None, 42):
        with pytest.raises(Invalid) as caught:
            apps.create_app(db_session, {"name": name}, owner["id"], owner["username"])
        assert caught.value.details["field"] == "name"
    for name in ("default", "mae", "mae-system", "kube-public", "openshift-x", "vault"):
        with pytest.raises(ReservedName):
            apps.create_app(db_session, {"name": name}, owner["id"], owner["username"], reserved=["vault"])
    with pytest.raises(Invalid):
        apps.create_app(db_session, ["not", "an", "object"], owner["id"], owner["username"])


def test_a_namespace_already_on_a_cluster_is_never_adopted(db_session):
    owner = person()
    name = fresh_name()
    with pytest.raises(NamespaceExists) as caught:
        apps.create_app(db_session, {"name": name}, owner["id"], owner["username"], taken_on=["test", "prod"])
    assert caught.value.details == {"field": "name", "clusters": ["test", "prod"]}
    with pytest.raises(NotFound):
        apps.get_app(db_session, name)


def test_display_name_and_description_are_bounded_text(db_session):
    owner = person()
    for data, field in [({"display_name": 5}, "display_name"), ({"display_name": "x" * 129}, "display_name"),
                        ({"description": ["x"]}, "description"), ({"description": "x" * 4001}, "description")]:
        with pytest.raises(Invalid) as caught:
            apps.create_app(db_session, {"name": fresh_name(), **data}, owner["id"], owner["username"])
        assert caught.value.details == {"field": field}
    app, _ = made(db_session, owner, display_name=None, description=None)
    assert (app.display_name, app.description) == (app.name, "")


def test_an_unknown_application_is_not_found_whatever_is_asked_for(db_session):
    for name in (fresh_name(), None, 7, ["shop"]):
        with pytest.raises(NotFound):
            apps.get_app(db_session, name)


# -- who may create ----------------------------------------------------------------------

def test_a_person_may_own_up_to_the_limit_and_admins_are_exempt(db_session):
    alice = person()
    apps.check_may_create(db_session, alice, "everyone", 2)
    made(db_session, alice)
    made(db_session, alice)
    with pytest.raises(QuotaExceeded) as caught:
        apps.check_may_create(db_session, alice, "everyone", 2)
    assert caught.value.details == {"limit": 2, "owned": 2}
    apps.check_may_create(db_session, alice, "everyone", "3")  # config values may come as text
    apps.check_may_create(db_session, {**alice, "is_admin": True}, "everyone", 2)


def test_only_ownership_counts_against_the_limit(db_session):
    bob = person()
    for _ in range(2):
        app, _ = made(db_session)
        apps.set_member(db_session, app, bob["id"], bob["username"], "maintainer")
    apps.check_may_create(db_session, bob, "everyone", 1)


def test_without_a_limit_configured_a_person_owns_at_most_twenty(db_session):
    carol = person()
    for _ in range(19):
        made(db_session, carol)
    for unset in (None, ""):
        apps.check_may_create(db_session, carol, None, unset)
    made(db_session, carol)
    for unset in (None, ""):
        with pytest.raises(QuotaExceeded) as caught:
            apps.check_may_create(db_session, carol, None, unset)
        assert caught.value.details == {"limit": 20, "owned": 20}


def test_when_admins_create_applications_nobody_else_may(db_session):
    for creators in ("admins", " Admins "):
        with pytest.raises(Forbidden) as caught:
            apps.check_may_create(db_session, person(), creators, 20)
        assert caught.value.details == {"setting": "APP_CREATORS"}
        apps.check_may_create(db_session, person(is_admin=True), creators, 20)


# -- changing ----------------------------------------------------------------------------

def test_only_the_display_name_and_description_change(db_session):
    app, _ = made(db_session, display_name="Shop")
    apps.update_app(db_session, app, {"description": "sells things"})
    assert (app.display_name, app.description) == ("Shop", "sells things")
    apps.update_app(db_session, app, {"display_name": ""})
    assert app.display_name == app.name  # cleared: the name stands in
    with pytest.raises(Invalid) as caught:
        apps.update_app(db_session, app, {"name": "renamed", "created_by": "mallory", "description": "x"})
    assert caught.value.details == {"fields": ["created_by", "name"]}
    assert app.description == "sells things"
    with pytest.raises(Invalid):
        apps.update_app(db_session, app, "renamed")


# -- members -----------------------------------------------------------------------------

def test_adding_and_changing_a_member_says_what_the_role_was(db_session):
    app, _ = made(db_session)
    dev = person()
    assert apps.set_member(db_session, app, dev["id"], dev["username"], "developer") == (None, "developer")
    assert apps.set_member(db_session, app, dev["id"], dev["username"], "maintainer") == ("developer", "maintainer")
    assert apps.role_of(db_session, app, dev["id"]) == "maintainer"
    assert apps.role_of(db_session, app, person()["id"]) is None
    for role in ("admin", "Owner", "", None):
        with pytest.raises(Invalid) as caught:
            apps.set_member(db_session, app, dev["id"], dev["username"], role)
        assert caught.value.details == {"field": "role"}
    assert apps.role_of(db_session, app, dev["id"]) == "maintainer"


def test_an_application_always_keeps_an_owner(db_session):
    app, owner = made(db_session)
    with pytest.raises(Conflict):
        apps.set_member(db_session, app, owner["id"], owner["username"], "viewer")
    with pytest.raises(Conflict):
        apps.remove_member(db_session, app, owner["username"])
    assert apps.role_of(db_session, app, owner["id"]) == "owner"
    # With a second owner, either may step down or leave.
    second = person()
    apps.set_member(db_session, app, second["id"], second["username"], "owner")
    assert apps.owners(db_session, app) == 2
    assert apps.set_member(db_session, app, owner["id"], owner["username"], "viewer") == ("owner", "viewer")
    with pytest.raises(Conflict):
        apps.remove_member(db_session, app, second["username"])
    apps.remove_member(db_session, app, owner["username"])
    assert apps.role_of(db_session, app, owner["id"]) is None
    assert apps.owners(db_session, app) == 1


def test_removing_someone_who_is_not_a_member_is_not_found(db_session):
    app, _ = made(db_session)
    other, _ = made(db_session)
    viewer = person()
    apps.set_member(db_session, other, viewer["id"], viewer["username"], "viewer")
    with pytest.raises(NotFound) as caught:
        apps.remove_member(db_session, app, viewer["username"])  # a member elsewhere only
    assert caught.value.details == {"username": viewer["username"]}
    assert apps.remove_member(db_session, other, viewer["username"]).role == "viewer"
    assert apps.role_of(db_session, other, viewer["id"]) is None
