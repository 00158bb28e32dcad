"""Hostile stand-in servers on loopback: raw sockets (no framework smoothing anything over), each
counting the connections it accepted, answering every request with one behaviour — drip an
answer a byte at a time, send an endless or enormous body, redirect elsewhere, or answer a fixed
status, headers and body. Optionally over TLS (a `trustme` certificate)."""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

Behaviour = Callable[["Exchange"], None]


@dataclass
class Exchange:
    """One accepted connection: its request head, and a way to answer."""

    sock: socket.socket
    head: bytes

    @property
    def path(self) -> str:
        return self.head.split(b" ", 2)[1].decode("latin-1") if self.head.count(b" ") >= 2 else ""

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False


def answer(status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> Behaviour:
    def run(exchange: Exchange) -> None:
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Content-Type: application/json", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        exchange.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    return run


def drip(seconds: float, status: int = 200) -> Behaviour:
    """Headers at once, then one byte a second for `seconds` (a body that never completes in time)."""

    def run(exchange: Exchange) -> None:
        exchange.send(f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n".encode())
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and exchange.send(b" "):
            time.sleep(1.0)

    return run


def enormous(total: int, *, declared: bool) -> Behaviour:
    """A body of `total` bytes, announced in Content-Length or sent chunked."""

    def run(exchange: Exchange) -> None:
        chunk = b"0" * 65536
        if declared:
            exchange.send(f"HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n".encode())
            sent = 0
            while sent < total and exchange.send(chunk):
                sent += len(chunk)
            return
        exchange.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = 0
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        while sent < total and exchange.send(frame):
            sent += len(chunk)
        exchange.send(b"0\r\n\r\n")

    return run


def redirect(location: str) -> Behaviour:
    return answer(302, b"", {"Location": location})


@dataclass
class HostileServer:
    behaviour: Behaviour
    tls: ssl.SSLContext | None = None
    accepted: int = 0
    paths: list[str] = field(default_factory=list)
    _server: socketserver.ThreadingTCPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def __enter__(self) -> "HostileServer":
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer.accepted += 1
                sock: socket.socket = self.request
                sock.settimeout(10)
                try:
                    if outer.tls is not None:
                        sock = outer.tls.wrap_socket(sock, server_side=True)
                    head = b""
                    while b"\r\n\r\n" not in head and len(head) < 65536:
                        data = sock.recv(4096)
                        if not data:
                            return
                        head += data
                except (OSError, ssl.SSLError):
                    return
                exchange = Exchange(sock, head)
                outer.paths.append(exchange.path)
                outer.behaviour(exchange)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


def tls_pair(directory: Path) -> tuple[ssl.SSLContext, str]:
    """A server TLS context for `localhost`/127.0.0.1 signed by a fresh test CA, and the path of
    the CA's PEM file (what SSL_CERT_FILE names so that Authpipe trusts it)."""
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    path = directory / "test-ca.pem"
    path.write_bytes(ca.cert_pem.bytes())
    return context, str(path)
