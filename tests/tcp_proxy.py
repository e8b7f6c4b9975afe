"""A cuttable TCP proxy: a dependency outage for one process, leaving the shared server up."""
import socket
import threading

from tests.conftest import free_port


class Proxy:
    """A TCP proxy to a server (Redis, MariaDB) that a test can cut — refusing new connections and
    dropping open ones, as a server that went away — and restore."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self.conns: list[socket.socket] = []
        self.listener = None
        self.restore()

    def restore(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(64)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def cut(self):
        # Shut down, and let the threads blocked on these sockets close them: a socket closed
        # under a green thread still reading it leaves that reader registered with the hub.
        listener, self.listener = self.listener, None
        for sock in [listener, *self.conns]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.conns.clear()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                listener.close()
                return
            if self.listener is not listener:  # cut while accepting
                client.close()
                listener.close()
                return
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except (OSError, EOFError):
            pass
        # Shut both down (the other pump, reading dst, wakes up), but close only the socket
        # this thread reads: a socket closed under another green thread's read leaves that
        # reader registered with the hub, and a later file on the same fd number fails.
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        src.close()
