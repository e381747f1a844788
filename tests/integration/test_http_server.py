"""The server as ``mailshot serve`` runs it (uvicorn with :func:`uvicorn_options`, on
127.0.0.1, spoken to over raw sockets), against slow and greedy clients (issue 15): a
request head that trickles in is cut off at the header timeout, while normal requests,
kept-alive connections and the bridge's long-polling lease are not; an oversized body is
refused at once without being held in memory; a 500 says ``Connection: close``."""

from __future__ import annotations

import resource
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from mailshot.app.server import create_app
from mailshot.core.settings import Settings
from mailshot.core.web.server import uvicorn_options
from tests.conftest import Keys

HEAD_TIMEOUT = 1.0


@contextmanager
def serving(app: FastAPI, settings: Settings) -> Iterator[int]:
    """``app`` served by uvicorn in a thread with ``serve``'s options; yields the port."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, **uvicorn_options(settings)
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield int(port)
    finally:
        server.should_exit = True
        thread.join(15)


def tuned(settings: Settings, **changes: Any) -> Settings:
    values = {"http_header_timeout_seconds": HEAD_TIMEOUT, "http_keep_alive_seconds": 2}
    return settings.model_copy(update=values | changes)


@pytest.fixture
def port(settings: Settings) -> Iterator[int]:
    live = tuned(settings)
    with serving(create_app(live), live) as p:
        yield p


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 answer with a Content-Length body: status, headers, body."""
    data = b""
    while b"\r\n\r\n" not in data:
        got = sock.recv(65536)
        assert got, f"the connection closed before an answer: {data!r}"
        data += got
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        got = sock.recv(65536)
        assert got, "the connection closed in the middle of the answer"
        body += got
    return int(lines[0].split()[1]), headers, body


def closed_by_server(sock: socket.socket, within: float) -> float:
    """Seconds until the server closes ``sock`` (whatever it sends first is read and
    dropped); fails if it is still open after ``within`` seconds."""
    start = time.monotonic()
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def get(port: int, path: str, headers: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n".encode()


# ---- slow clients -------------------------------------------------------------------------
def test_slowloris_connections_are_closed_at_the_header_timeout(port: int) -> None:
    socks = [connect(port) for _ in range(5)]
    for s in socks:
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
    start = time.monotonic()
    open_ones = list(socks)
    answers: list[bytes] = []
    while open_ones and time.monotonic() - start < 10 * HEAD_TIMEOUT:
        time.sleep(HEAD_TIMEOUT / 4)
        for s in list(open_ones):  # one more header line each, never the blank line
            try:
                s.sendall(b"X-Slow: 1\r\n")
            except OSError:
                open_ones.remove(s)
                continue
            s.settimeout(0.01)
            try:
                got = s.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                got = b""
            answers.append(got)
            open_ones.remove(s)
    elapsed = time.monotonic() - start
    assert not open_ones, "a connection trickling headers is still open"
    assert elapsed < HEAD_TIMEOUT + 2.5
    assert any(a.startswith(b"HTTP/1.1 408") and b"REQUEST_HEAD_TIMEOUT" in a for a in answers)
    for s in socks:
        s.close()


def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout(port: int) -> None:
    with connect(port) as s:
        assert closed_by_server(s, within=HEAD_TIMEOUT + 3) >= HEAD_TIMEOUT * 0.9


def test_requests_on_a_kept_alive_connection_are_not_cut_off(port: int) -> None:
    with connect(port) as s:
        for _ in range(3):
            s.sendall(get(port, "/healthz"))
            status, headers, _ = read_answer(s)
            assert status == 200 and headers.get("connection") != "close"
            time.sleep(HEAD_TIMEOUT * 1.2)  # idle between requests: the keep-alive's time
        # Idle past the keep-alive timeout: the server closes the connection.
        assert closed_by_server(s, within=5) < 4


def test_a_long_poll_outlasts_the_header_timeout(port: int, keys: Keys) -> None:
    body = b'{"worker_id": "slow-test", "wait_seconds": 3}'
    with connect(port) as s:
        s.sendall(
            f"POST /crm/api/v1/sync/lease HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {keys.crm_integration}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        start = time.monotonic()
        status, _, _ = read_answer(s)
        waited = time.monotonic() - start
        assert status == 204  # no work came: it waited the whole 3 s
        assert waited >= 2.5
        s.sendall(get(port, "/healthz"))  # and the connection is still good
        assert read_answer(s)[0] == 200


def test_past_the_concurrency_limit_new_requests_get_503(settings: Settings) -> None:
    live = tuned(settings, http_max_concurrency=3, http_header_timeout_seconds=10.0)
    with serving(create_app(live), live) as p:
        held = [connect(p) for _ in range(3)]
        time.sleep(0.2)
        with connect(p) as s:
            s.sendall(get(p, "/healthz"))
            assert read_answer(s)[0] == 503
        for h in held:
            h.close()
        time.sleep(0.2)
        with connect(p) as s:
            s.sendall(get(p, "/healthz"))
            assert read_answer(s)[0] == 200


# ---- greedy clients -----------------------------------------------------------------------
def _rss_mib() -> float:
    with open("/proc/self/status") as fh:  # noqa: PTH123 (a proc file)
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_large_body_is_refused_at_once_and_never_held(
    port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    size = 100 * 2**20
    head = (
        f"POST /crm/api/v1/people HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    with connect(port) as s:  # the answer comes before any of the body is sent
        s.sendall(head)
        start = time.monotonic()
        status, headers, body = read_answer(s)
        answered = time.monotonic() - start
    assert status == 413 and b"REQUEST_TOO_LARGE" in body
    assert headers["content-type"] == "application/json"
    block = b"x" * 2**20
    before = _rss_mib()
    with connect(port) as s:  # a client that sends it all anyway still gets the answer
        s.sendall(head)
        start = time.monotonic()
        for _ in range(size // len(block)):
            s.sendall(block)
        status, _, body = read_answer(s)
        sent = time.monotonic() - start
        s.sendall(get(port, "/healthz"))  # the body was drained: the connection goes on
        assert read_answer(s)[0] == 200
    grown = _rss_mib() - before
    assert status == 413
    with capsys.disabled():
        print(
            f"\n413 for a declared {size >> 20} MiB body in {answered * 1000:.1f} ms; "
            f"sent whole in {sent:.2f} s, RSS grew {grown:.1f} MiB"
        )


def test_a_500_closes_the_connection_and_says_so(settings: Settings) -> None:
    live = tuned(settings)
    app = create_app(live)

    def boom() -> None:
        raise RuntimeError("unexpected")

    app.state.esp.add_api_route("/api/v1/boom", boom)
    with serving(app, live) as p, connect(p) as s:
        s.sendall(get(p, "/esp/api/v1/boom"))
        status, headers, body = read_answer(s)
        assert status == 500
        assert headers["connection"] == "close"
        assert b"INTERNAL_ERROR" in body
        assert closed_by_server(s, within=2) < 2
