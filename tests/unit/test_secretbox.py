import pytest

from shared.secretbox import SecretBox, SecretBoxError, generate_key


def test_secret_round_trips_and_is_not_stored_in_clear():
    box = SecretBox(generate_key())
    sealed = box.encrypt("sa-token-123", context="cluster:prod:token")
    assert "sa-token-123" not in sealed
    assert box.decrypt(sealed, context="cluster:prod:token") == "sa-token-123"


def test_two_encryptions_of_one_secret_differ():
    box = SecretBox(generate_key())
    assert box.encrypt("x") != box.encrypt("x")


def test_tampered_ciphertext_is_refused():
    box = SecretBox(generate_key())
    sealed = box.encrypt("sa-token-123")
    prefix, body = sealed.rsplit(".", 1)
    # flip one character in the middle of the sealed body
    i = len(body) // 2
    flipped = body[:i] + ("A" if body[i] != "A" else "B") + body[i + 1:]
    with pytest.raises(SecretBoxError):
        box.decrypt(prefix + "." + flipped)


def test_ciphertext_moved_to_another_context_is_refused():
    box = SecretBox(generate_key())
    sealed = box.encrypt("k", context="cluster:a:token")
    with pytest.raises(SecretBoxError):
        box.decrypt(sealed, context="cluster:b:token")


def test_wrong_key_is_refused_and_old_key_still_decrypts_after_rotation():
    old, new = generate_key(), generate_key()
    sealed = SecretBox(old).encrypt("s")
    with pytest.raises(SecretBoxError):
        SecretBox(new).decrypt(sealed)
    assert SecretBox(new, [old]).decrypt(sealed) == "s"


@pytest.mark.parametrize("key", ["", "not base64!", "c2hvcnQ="])
def test_bad_keys_are_rejected_with_a_reason(key):
    with pytest.raises(SecretBoxError):
        SecretBox(key)


def test_missing_key_in_config_says_what_to_set(monkeypatch):
    monkeypatch.delenv("MAE_SECRET_KEY", raising=False)
    with pytest.raises(SecretBoxError, match="MAE_SECRET_KEY"):
        SecretBox.from_config({"SECRET_KEY": None})
