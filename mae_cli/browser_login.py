"""``mae login`` through the browser.

The CLI listens on 127.0.0.1 (a random port) and opens the console at
``#/cli?port=...&state=...``. The console (after the person logs in there, and
agrees) creates a personal access token named for this CLI and POSTs it to
``http://127.0.0.1:<port>/callback`` with the state, as a form body: the token never
appears in a URL, and the random state ties the answer to this very login.
Without a browser, the person pastes a token instead.
"""
from __future__ import annotations

import http.server
import secrets
import threading
import urllib.parse
import webbrowser

import click

PAGE = """<!doctype html><meta charset="utf-8"><title>mae</title>
<p style="font-family:sans-serif;margin:3rem">{}</p>"""


def browser_login(url: str, open_browser: bool, timeout: float, say) -> str:
    if open_browser:
        token = _via_browser(url, timeout, say)
        if token:
            return token
        say("No answer from the browser; paste a token instead.")
    say(f"Create a token in the console ({url}/) or with the API (POST /api/v1/tokens), then paste it.")
    try:
        return click.prompt("Token", hide_input=True, err=True).strip()
    except click.Abort:
        raise click.ClickException("No token given.")


def _via_browser(url: str, timeout: float, say) -> str | None:
    state = secrets.token_urlsafe(24)
    received: dict = {}
    done = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            if self.path != "/callback":
                return self._answer(404, "Not found.")
            length = min(int(self.headers.get("Content-Length") or 0), 8192)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            if not secrets.compare_digest((form.get("state") or [""])[0], state):
                return self._answer(400, "This login was not started by this mae command.")
            token = (form.get("token") or [""])[0]
            if not token:
                return self._answer(400, "No token was sent.")
            received["token"] = token
            done.set()
            self._answer(200, "The mae command line is logged in. You can close this tab.")

        def do_GET(self):
            self._answer(404, "Not found.")

        def _answer(self, status, text):
            body = PAGE.format(text).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # keep the terminal clean
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    login_page = f"{url}/#/cli?{urllib.parse.urlencode({'port': port, 'state': state})}"
    try:
        say(f"Opening {login_page} — log in there and allow the command line.")
        if not webbrowser.open(login_page):
            say("Could not open a browser.")
            return None
        done.wait(timeout)
        return received.get("token")
    finally:
        server.shutdown()
        server.server_close()
