"""The ID token check (services/auth/domain/oidc.py), usernames and the bootstrap binding —
with keys made here, no provider, no database."""
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from services.auth.domain import oidc, usernames
from services.auth.domain.accounts import Bootstrap
from services.auth.domain.oauth import OIDCProvider, configured_providers
from shared.errors import BadRequest, Unavailable

ISSUER = "https://idp.example.test"
CLIENT = "mae"
NONCE = "n-0S6_WzA2Mj"


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


KEY = rsa_key()
OTHER_KEY = rsa_key()


def jwk_of(private, kid="k1", alg="RS256"):
    algo = ECAlgorithm if alg.startswith("ES") else RSAAlgorithm
    return {**algo.to_jwk(private.public_key(), as_dict=True), "kid": kid, "use": "sig", "alg": alg}


JWKS = {"keys": [jwk_of(KEY)]}


def claims(**changes):
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "248289761001", "aud": CLIENT, "exp": now + 300, "iat": now,
            "nonce": NONCE, "preferred_username": "alice", "email": "alice@example.test", "name": "Alice"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload, key=KEY, kid="k1", alg="RS256"):
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def check(token, nonce=NONCE, store=None, jwks=JWKS, **kw):
    return oidc.validate_id_token(token, jwks=jwks, issuer=ISSUER, client_id=CLIENT, nonce=nonce,
                                  nonce_store=store or oidc.MemoryNonceStore(), **kw)


def refused(token, **kw) -> oidc.IdTokenError:
    with pytest.raises(oidc.IdTokenError) as caught:
        check(token, **kw)
    return caught.value


def test_a_good_token_is_accepted():
    got = check(sign(claims()))
    assert got["sub"] == "248289761001" and got["nonce"] == NONCE


def test_an_audience_list_with_mae_and_azp_is_accepted():
    assert check(sign(claims(aud=[CLIENT, "api"], azp=CLIENT)))["sub"]


def test_wrong_audience_is_refused():
    error = refused(sign(claims(aud="another-app")))
    assert error.claim == "aud" and "not for this client" in error.reason


def test_several_audiences_without_azp_or_another_azp_are_refused():
    assert refused(sign(claims(aud=[CLIENT, "api"]))).claim == "azp"
    assert refused(sign(claims(azp="another-app"))).claim == "azp"


def test_wrong_issuer_is_refused():
    error = refused(sign(claims(iss="https://evil.example.test")))
    assert error.claim == "iss" and ISSUER in error.reason


def test_expired_token_is_refused():
    now = int(time.time())
    error = refused(sign(claims(exp=now - 3600, iat=now - 4000)))
    assert error.claim == "exp" and "expired" in error.reason


def test_a_signature_by_another_key_is_refused():
    error = refused(sign(claims(), key=OTHER_KEY))  # same kid, wrong key
    assert error.claim == "signature" and "does not verify" in error.reason


def test_a_tampered_payload_is_refused():
    header, _, signature = sign(claims()).split(".")
    forged = sign(claims(sub="someone-else"), key=OTHER_KEY).split(".")[1]
    assert refused(f"{header}.{forged}.{signature}").claim == "signature"


def test_an_unknown_key_id_is_refused():
    error = refused(sign(claims(), key=OTHER_KEY, kid="k2"))
    assert error.claim == "kid" and "does not publish" in error.reason


def test_alg_none_is_refused():
    unsigned = jwt.encode(claims(), None, algorithm="none", headers={"kid": "k1"})
    error = refused(unsigned)
    assert error.claim == "alg" and "not signed" in error.reason


def test_hmac_keyed_with_the_public_key_is_refused():
    # The classic confusion: HS256 "signed" with the provider's public key as the secret.
    from cryptography.hazmat.primitives import serialization

    public_pem = KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib
    import hmac as hmac_
    import base64
    import json

    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims()).encode())
    mac = b64(hmac_.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest())
    error = refused(f"{head}.{body}.{mac}")
    assert error.claim == "alg" and "HS256" in error.reason


def test_a_key_published_for_another_algorithm_is_refused():
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = {"keys": [jwk_of(ec_key, kid="e1", alg="ES256")]}
    error = refused(sign(claims(), kid="e1"), jwks=jwks)  # RS256 token, ES256 key
    assert error.claim == "alg"
    assert check(sign(claims(), key=ec_key, kid="e1", alg="ES256"), jwks=jwks)["sub"]


def test_a_replayed_nonce_is_refused():
    store = oidc.MemoryNonceStore()
    token = sign(claims())
    assert check(token, store=store)["sub"]
    error = refused(token, store=store)
    assert error.claim == "nonce" and "used before" in error.reason
    # and another token carrying the same nonce too
    assert refused(sign(claims(name="again")), store=store).claim == "nonce"


def test_a_missing_nonce_is_refused():
    error = refused(sign(claims(nonce=None)))
    assert error.claim == "nonce" and "no nonce" in error.reason


def test_another_logins_nonce_is_refused():
    error = refused(sign(claims(nonce="someone-elses")))
    assert error.claim == "nonce" and "not the one this login sent" in error.reason


@pytest.mark.parametrize("missing", ["iss", "sub", "aud", "exp", "iat"])
def test_a_token_without_a_required_claim_is_refused(missing):
    assert refused(sign(claims(**{missing: None}))).claim == missing


def test_iat_must_be_sane():
    now = int(time.time())
    future = refused(sign(claims(iat=now + 3600, exp=now + 7200)))
    assert future.claim == "iat" and "future" in future.reason
    old = refused(sign(claims(iat=now - 7200, exp=now + 300)))
    assert old.claim == "iat" and "too long ago" in old.reason


def test_only_the_configured_algorithms_count():
    error = refused(sign(claims()), algorithms=["ES256"])
    assert error.claim == "alg" and "RS256" in error.reason


def test_garbage_is_refused():
    assert "not a signed JWT" in refused("not-a-jwt").reason
    assert "no ID token" in refused("").reason


# -- the provider: discovery, claims mapping --------------------------------------------

SETTINGS = {"kind": "oidc", "issuer": ISSUER, "client_id": CLIENT, "client_secret": "s3cret",
            "username_claim": "login", "email_claim": "mail", "name_claim": "display"}
META = {"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/auth", "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks", "userinfo_endpoint": f"{ISSUER}/me",
        "id_token_signing_alg_values_supported": ["RS256"]}


@pytest.fixture
def provider_docs(monkeypatch):
    docs = {f"{ISSUER}/.well-known/openid-configuration": dict(META), f"{ISSUER}/jwks": JWKS}
    fetched = []

    def fetch(url, what, provider):
        fetched.append(url)
        return docs[url]

    oidc.forget_cache()
    monkeypatch.setattr(oidc, "_fetch_json", fetch)
    yield docs, fetched
    oidc.forget_cache()


def test_claims_are_mapped_as_configured(provider_docs):
    provider = OIDCProvider("sso", SETTINGS, "https://mae.example.test/api/v1/auth/callback/sso")
    person = provider.person({"sub": "x1", "login": "Bob", "mail": "bob@example.test", "display": "Bob B",
                              "preferred_username": "not-this"})
    assert (person.subject, person.username, person.email, person.display_name) == \
        ("x1", "Bob", "bob@example.test", "Bob B")
    # claims missing: the usual ones, then the email's local part
    assert provider.person({"sub": "x2", "preferred_username": "carol"}).username == "carol"
    assert provider.person({"sub": "x3", "mail": "dan@example.test"}).username == "dan"


def test_discovery_is_fetched_once_and_must_name_the_issuer(provider_docs):
    docs, fetched = provider_docs
    provider = OIDCProvider("sso", SETTINGS, "https://mae.example.test/cb")
    request = provider.authorization_request()
    assert request.url.startswith(f"{ISSUER}/auth?") and f"nonce={request.nonce}" in request.url
    assert "code_challenge_method=S256" in request.url and "scope=openid" in request.url
    provider.authorization_request()
    assert fetched.count(f"{ISSUER}/.well-known/openid-configuration") == 1  # cached
    oidc.forget_cache()
    docs[f"{ISSUER}/.well-known/openid-configuration"]["issuer"] = "https://evil.example.test"
    with pytest.raises(Unavailable, match="says its issuer is"):
        provider.authorization_request()


def test_discovered_endpoints_must_be_https(provider_docs):
    docs, _ = provider_docs
    docs[f"{ISSUER}/.well-known/openid-configuration"]["token_endpoint"] = "http://idp.example.test/token"
    with pytest.raises(Unavailable, match="token_endpoint"):
        OIDCProvider("sso", SETTINGS, "https://mae.example.test/cb").token_url


def test_a_refused_id_token_is_a_400_with_the_reason(provider_docs):
    provider = OIDCProvider("sso", SETTINGS, "https://mae.example.test/cb")
    with pytest.raises(BadRequest) as caught:
        provider.validate(sign(claims(aud="another-app")), NONCE, oidc.MemoryNonceStore())
    assert "ID token was refused" in caught.value.message and caught.value.details["reason"] == "aud"


def test_a_new_signing_key_fetches_the_keys_again(provider_docs, monkeypatch):
    docs, fetched = provider_docs
    provider = OIDCProvider("sso", SETTINGS, "https://mae.example.test/cb")
    assert provider.validate(sign(claims()), NONCE, oidc.MemoryNonceStore())["sub"]
    docs[f"{ISSUER}/jwks"] = {"keys": [jwk_of(OTHER_KEY, kid="k2")]}  # the provider rotated its key
    monkeypatch.setattr(oidc, "REFETCH_KEYS_AFTER", 0)
    assert provider.validate(sign(claims(), key=OTHER_KEY, kid="k2"), NONCE, oidc.MemoryNonceStore())["sub"]
    assert fetched.count(f"{ISSUER}/jwks") == 2


def test_an_answer_from_another_issuer_is_refused_before_the_code_is_used(provider_docs):
    provider = OIDCProvider("sso", SETTINGS, "https://mae.example.test/cb")
    with pytest.raises(BadRequest, match="not by sso's issuer"):
        provider.complete("code", {"code_verifier": "v", "nonce": NONCE}, oidc.MemoryNonceStore(),
                          iss="https://evil.example.test")


def test_an_oidc_provider_needs_an_issuer():
    config = {"OAUTH_PROVIDERS": {"sso": {"kind": "oidc", "client_id": "mae"},
                                  "sso2": {**SETTINGS}}}
    assert list(configured_providers(config)) == ["sso2"]


# -- usernames and the bootstrap binding ---------------------------------------------

@pytest.mark.parametrize("suggested,name", [
    ("admin", "admin"), ("Admin", "admin"), ("ADMİN", "admin"), ("Ａｄｍｉｎ", "admin"), ("ádmin", "admin"),
    ("Alice.Smith", "alice.smith"), ("bob smith", "bob-smith"), ("--x--", "x"), ("ſtefan", "stefan"),
    ("张三", ""), ("аdmin", "dmin"),  # the first letter Cyrillic: not an "a"
])
def test_canonical_usernames(suggested, name):
    assert usernames.canonical(suggested) == name


def test_a_name_comes_from_the_first_usable_suggestion():
    assert usernames.choose(["张三", "zhang.san"]) == "zhang.san"
    assert usernames.choose(["", None, "!!!"]) == "user"


def test_reserved_and_taken_names_get_a_visible_suffix():
    assert next(usernames.candidates("alice")) == "alice"
    names = usernames.candidates("admin", reserved=["ops"])
    assert [next(names), next(names)] == ["admin-2", "admin-3"]
    assert next(usernames.candidates("ops", reserved=["ops"])) == "ops-2"
    assert len(usernames.with_suffix("a" * 64, 12)) == 64


def test_usernames_differing_in_case_or_accents_share_a_key():
    assert usernames.key("Admin") == usernames.key("ADMİN") == usernames.key("ádmin") == "admin"
    assert usernames.key("alice") != usernames.key("alice-2")


def test_bootstrap_admin_binds_provider_and_subject_only():
    bound = Bootstrap.from_config({"BOOTSTRAP_ADMIN": "local:alice-subject", "BOOTSTRAP_ADMIN_USERNAME": "ops"})
    assert (bound.username, bound.provider, bound.subject) == ("ops", "local", "alice-subject")
    assert bound.binds("local", "alice-subject")
    assert not bound.binds("local", "Alice-Subject") and not bound.binds("sso", "alice-subject")
    nobody = Bootstrap.from_config({"BOOTSTRAP_ADMIN": "", "BOOTSTRAP_ADMIN_USERNAME": None})
    assert nobody.username == "admin" and not nobody.binds("", "")
    # the old form (a username) names the token account and binds no identity
    legacy = Bootstrap.from_config({"BOOTSTRAP_ADMIN": "admin"})
    assert legacy.username == "admin" and not legacy.binds("local", "admin") and not legacy.binds("", "admin")
    # a subject may contain colons
    assert Bootstrap.from_config({"BOOTSTRAP_ADMIN": "sso:urn:x:1"}).binds("sso", "urn:x:1")
