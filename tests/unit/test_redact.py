"""Secret values in previews: markers only, compared where both values are known."""
import base64

from shared import redact


def b64(text):
    return base64.b64encode(text.encode()).decode()


NEW = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
       "stringData": {"password": "new-pw", "user": "app"}, "data": {"token": b64("t0k")}}


def test_the_new_manifest_shows_keys_not_values():
    shown = redact.desired(NEW)
    assert shown["data"] == {"password": "<redacted>", "user": "<redacted>", "token": "<redacted>"}
    assert "stringData" not in shown and "new-pw" not in str(shown) and b64("t0k") not in str(shown)
    assert NEW["stringData"]["password"] == "new-pw"  # the manifest to apply is untouched
    other = {"kind": "ConfigMap", "data": {"a": "b"}}
    assert redact.desired(other) is other


def test_the_live_object_says_only_whether_each_value_differs():
    live = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "annotations": {
        "mae.io/last-applied": '{"stringData": {"password": "old-pw"}}', "note": "kept"}},
        "data": {"password": b64("old-pw"), "user": b64("app"), "stale": b64("x")}}
    shown = redact.live(live, NEW)
    assert shown["data"] == {"password": redact.CHANGED, "user": "<redacted>", "stale": redact.CHANGED}
    assert "old-pw" not in str(shown) and b64("old-pw") not in str(shown)
    assert shown["metadata"]["annotations"] == {"mae.io/last-applied": "<redacted>", "note": "kept"}
    assert redact.live(None, NEW) is None
