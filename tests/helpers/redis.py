"""A real redis-server (Debian's package) of the tests' own: a free loopback port, its files in
a temporary folder, no persistence, a password — never another user's Redis. With `tls`, it
listens over TLS only, with a throw-away CA and server certificate made by `openssl`."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PASSWORD = "test-redis-pass-0001"


def redis_server_path() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Certificates:
    """A CA and a server certificate it signed for 127.0.0.1, as PEM files."""

    ca: Path
    cert: Path
    key: Path


def make_certificates(folder: Path, openssl: str = "openssl") -> Certificates:
    """A throw-away CA and a server certificate for 127.0.0.1 (EC keys: quick to make)."""
    folder.mkdir(parents=True, exist_ok=True)
    made = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    ca_key, request = folder / "ca.key", folder / "server.csr"
    extensions = folder / "server.ext"
    extensions.write_text("subjectAltName = IP:127.0.0.1\n")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca_name = f"/CN=aigw test CA {folder.name}"
    steps = [
        ("req", "-x509", *ec, "-keyout", ca_key, "-out", made.ca, "-days", "2", "-subj", ca_name),
        ("req", "-new", *ec, "-keyout", made.key, "-out", request, "-subj", "/CN=127.0.0.1"),
        ("x509", "-req", "-in", request, "-CA", made.ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", made.cert, "-days", "2", "-extfile", extensions),
    ]  # fmt: skip
    for step in steps:
        subprocess.run([openssl, *map(str, step)], check=True, capture_output=True, timeout=30)
    return made


class RedisServer:
    """`redis-server` on 127.0.0.1; `stop()` and `start()` again keep its port (an outage).
    With `tls`, its only port is a TLS one (no client certificates asked for)."""

    def __init__(self, folder: Path, executable: str, *, tls: Certificates | None = None):
        self.folder = folder
        self.executable = executable
        self.tls = tls
        self.port = _free_port()
        self.started = False  # once started, the port is in URLs handed out: it stays
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.tls is not None:
            return self.tls_url(self.tls.ca)
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def tls_url(self, ca: Path) -> str:
        """The rediss:// URL of this server, trusting the CA in `ca`."""
        return f"rediss://:{PASSWORD}@127.0.0.1:{self.port}/0?ssl_ca_certs={ca}"

    def _listen(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        return [
            *("--port", "0", "--tls-port", str(self.port)),
            *("--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)),
            *("--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no"),
        ]

    def start(self) -> RedisServer:
        """Start it and wait until it answers (10 s at most). A port taken meanwhile by
        another process: a first start moves to another free port; a restart keeps its port
        (its URL is in use) and tries again until the deadline."""
        self.folder.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + 10
        while not self._launch(deadline):
            if time.monotonic() > deadline:
                log = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start on {self.port}: {log}")
            if not self.started:
                self.port = _free_port()
            time.sleep(0.1)
        self.started = True
        return self

    def _launch(self, deadline: float) -> bool:
        """One redis-server on self.port: True once it answers, False when it exited."""
        self.process = subprocess.Popen(
            [
                self.executable,
                *self._listen(),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                PASSWORD,
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while not self._answers():
            if self.process.poll() is not None:
                self.process = None
                return False
            if time.monotonic() > deadline:
                self.stop()
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def flush(self) -> None:
        self._command(b"FLUSHALL")

    def pause(self, milliseconds: int) -> None:
        """Answer no client for a while, keeping every key (a slow Redis, not a lost one)."""
        self._command(f"CLIENT PAUSE {milliseconds} ALL".encode())

    def _answers(self) -> bool:
        try:
            return self._command(b"PING") == b"+PONG\r\n"
        except OSError:
            return False

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        if self.tls is None:
            return sock
        context = ssl.create_default_context(cafile=str(self.tls.ca))
        try:
            return context.wrap_socket(sock, server_hostname="127.0.0.1")
        except OSError:
            sock.close()
            raise

    def _command(self, name: bytes) -> bytes:
        """One command over a plain socket (AUTH first): the tests' own view, not aigw's."""
        with self._connect() as sock:
            auth = f"AUTH {PASSWORD}\r\n".encode()
            sock.sendall(auth + name + b"\r\n")
            answer = b""
            while answer.count(b"\r\n") < 2:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                answer += chunk
        return answer.split(b"\r\n", 1)[1] if b"\r\n" in answer else answer
