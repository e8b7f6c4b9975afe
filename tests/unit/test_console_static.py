"""The console's static file lookup never leaves gateway/console/."""
import pytest

from gateway.routes.console import CONSOLE_DIR, resolve_static


@pytest.mark.parametrize("relative", [
    "../../etc/passwd", "..%2f..%2fetc/passwd", "../routes/console.py", "./index.html",
    "a/../../service.py", "", "/etc/passwd", ".hidden", "x\\..\\y", "app.js\x00.png", "missing.js",
])
def test_refuses_anything_but_a_console_file(relative):
    assert resolve_static(relative) is None


def test_finds_a_console_file():
    assert resolve_static("index.html") == CONSOLE_DIR / "index.html"
