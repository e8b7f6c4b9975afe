"""The operator picks up a rotated report token without a restart: on a 401 it reads its
token file again (a mounted Secret is updated in place) and sends with the new token."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from mae_operator.sender import Sender
from mae_operator.state import State


class MAE:
    """Takes reports only with ``self.token``; records the Authorization header of each POST."""

    def __init__(self, token):
        self.token, self.seen = token, []
        mae = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                mae.seen.append(self.headers.get("Authorization"))
                self.send_response(202 if self.headers.get("Authorization") == f"Bearer {mae.token}" else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


def sender_for(mae, token_file):
    stop = threading.Event()
    guard = threading.Timer(10, stop.set)  # a broken sender gives up instead of hanging the test
    guard.daemon = True
    guard.start()
    return Sender(State(), mae.url, "test", token_file.read_text().strip(), stop, backoff_base=0.05,
                  backoff_cap=0.1, token_source=lambda: token_file.read_text().strip()), stop


def test_a_rotated_token_is_read_again_and_used(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("old-token\n")
    mae = MAE("new-token")
    token_file.write_text("new-token\n")  # rotated: the Secret behind the file was updated
    sender, stop = sender_for(mae, token_file)
    sender.token, sender.session.headers["Authorization"] = "old-token", "Bearer old-token"
    try:
        assert sender.deliver([{"namespace": "shop", "name": "web-v1"}]) is True
    finally:
        stop.set()
        mae.httpd.shutdown()
    assert mae.seen == ["Bearer old-token", "Bearer new-token"]  # at once, no backoff wait between


def test_an_unchanged_token_keeps_backing_off(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("wrong-token")
    mae = MAE("right-token")
    sender, stop = sender_for(mae, token_file)
    threading.Timer(0.5, stop.set).start()
    try:
        assert sender.deliver([{"namespace": "shop", "name": "web-v1"}]) is False  # told to stop
    finally:
        mae.httpd.shutdown()
    assert mae.seen and set(mae.seen) == {"Bearer wrong-token"}
    assert len(mae.seen) < 20  # backed off between attempts, not a tight loop
