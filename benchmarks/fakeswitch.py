"""What the benchmark switches share: greet, read command blocks, answer them.

A subclass of `CommandHandler` answers each command in ``command`` (True ends
the connection) and sends with ``send``, which keeps replies and the events a
streaming thread writes from interleaving mid-frame.
"""

from __future__ import annotations

import socket
import socketserver
import threading

from eslkit.protocol import auth_request


class CommandHandler(socketserver.BaseRequestHandler):
    def setup(self) -> None:
        self.lock = threading.Lock()

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(auth_request())
        buf = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    if self.command(sock, block.decode("utf-8", "replace").strip()):
                        return
        except OSError:
            pass
        finally:
            self.ended()

    def command(self, sock: socket.socket, cmd: str) -> bool:
        """Answer one command; True when the connection should end."""
        raise NotImplementedError

    def ended(self) -> None:
        """The client hung up, said exit, or the link broke."""

    def send(self, sock: socket.socket, data: bytes) -> None:
        with self.lock:
            sock.sendall(data)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
