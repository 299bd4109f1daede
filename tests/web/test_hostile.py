"""The explorer under hostile clients, over real sockets (a uvicorn server as ``vaekit explore`` runs it):
a request sent too slowly (a stalled or trickled header, a stalled body) is answered 408 and its
connection closed; over the connection cap a request that has arrived closes the longest stalled one,
or gets a JSON 503 when every connection is busy with a request; a body over the cap with an honest
length gets a 413 every client can read.

Servers (``conftest.py``): ``strict_server`` (1 s deadline, 8 connections), ``capped_server`` (4
connections, a long deadline), ``server`` (the defaults). No test times the server: bounds are 30 s,
far beyond what a request needs, and every wait polls.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from vaekit.web.explorer import Limits

BOUND = 30.0  # seconds: a deadline of 1 s has long passed; nothing here blocks for longer
HEADER = b"GET /api/info HTTP/1.1\r\nHost: explorer\r\n"  # a request's header, not yet ended
LARGE = 5 * 1024 * 1024  # an oversized body: over Limits.max_body_bytes, under the server's drain bound


def _address(base: str) -> tuple[str, int]:
    parts = urlsplit(base)
    return parts.hostname, parts.port


def _stall(base: str, count: int, sent: bytes = HEADER) -> list[socket.socket]:
    """``count`` connections that each send ``sent`` and then nothing."""
    sockets = []
    for _ in range(count):
        connection = socket.create_connection(_address(base), timeout=BOUND)
        connection.sendall(sent)
        sockets.append(connection)
    return sockets


def _until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection; fails after ``BOUND`` seconds."""
    received, deadline = b"", time.monotonic() + BOUND
    while (left := deadline - time.monotonic()) > 0:
        connection.settimeout(left)
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    pytest.fail(f"the server kept the connection open for {BOUND:.0f} s (received {received[:200]!r})")


def _answer(raw: bytes) -> tuple[int, dict[str, str], dict]:
    """A raw HTTP/1.1 answer -> its status, headers (lower-case names) and JSON body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


def _request(base: str, method: str = "GET", path: str = "/api/info", body=None,
             headers: dict | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(*_address(base), timeout=BOUND)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _served_again(base: str) -> None:
    """Poll until a plain request is answered 200 (stalled connections gone); fails after ``BOUND``."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if _request(base)[0] == 200:
            return
        time.sleep(0.1)
    pytest.fail(f"the server did not answer 200 again within {BOUND:.0f} s")


def _busy(base: str, count: int) -> list[socket.socket]:
    """``count`` requests in progress: each header sent and taken up by the app (it asked for the body
    with a ``100 Continue``), then one byte of a 100-byte body and nothing more."""
    sockets = []
    for _ in range(count):
        connection = socket.create_connection(_address(base), timeout=BOUND)
        sockets.append(connection)
        connection.sendall(b"POST /api/decode HTTP/1.1\r\nHost: explorer\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 100\r\nExpect: 100-continue\r\n\r\n")
        assert connection.recv(4096).startswith(b"HTTP/1.1 100 ")
        connection.sendall(b"{")
    return sockets


def _close(sockets: list[socket.socket]) -> None:
    for connection in sockets:
        connection.close()


def _assert_dropped(raw: bytes, why: str) -> None:
    """Closed to make room: with a 408 saying so, or nothing if the server had not read its bytes yet."""
    if raw:
        status, _, body = _answer(raw)
        assert status == 408 and why in body["error"], raw


def _assert_timed_out(raw: bytes) -> None:
    status, headers, body = _answer(raw)
    assert status == 408 and headers["connection"] == "close", raw
    assert "not received within 1 s" in body["error"]


# ---------------------------------------------------------------------------- the deadline
def test_a_stalled_header_is_answered_408_and_closed(strict_server) -> None:
    stalled = _stall(strict_server, 1)
    try:
        _assert_timed_out(_until_closed(stalled[0]))
    finally:
        _close(stalled)


def test_a_silent_connection_is_closed_without_an_answer(strict_server) -> None:
    silent = _stall(strict_server, 1, sent=b"")
    try:
        assert _until_closed(silent[0]) == b""  # perhaps an idle keep-alive: an answer could be misread
    finally:
        _close(silent)


def test_a_header_trickled_byte_by_byte_is_cut_off(strict_server) -> None:
    """Bytes that keep coming do not extend the deadline: it bounds the whole request."""
    connection = _stall(strict_server, 1)[0]
    try:
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            readable, _, _ = select.select([connection], [], [], 0.1)
            if readable:
                break
            try:
                connection.sendall(b"a")  # a header line that never ends
            except (BrokenPipeError, ConnectionResetError):
                break
        _assert_timed_out(_until_closed(connection))
    finally:
        connection.close()


def test_a_stalled_body_is_answered_408_and_closed(strict_server) -> None:
    head = (b"POST /api/decode HTTP/1.1\r\nHost: explorer\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{\"z\": [[")
    stalled = _stall(strict_server, 1, sent=head)
    try:
        _assert_timed_out(_until_closed(stalled[0]))
    finally:
        _close(stalled)
    assert _request(strict_server)[0] == 200


def test_a_kept_alive_connection_serves_requests_within_the_deadline(strict_server) -> None:
    connection = http.client.HTTPConnection(*_address(strict_server), timeout=BOUND)
    try:
        for _ in range(3):
            connection.request("POST", "/api/sample", body=json.dumps({"n": 2}),
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            assert response.status == 200 and len(json.loads(response.read())["items"]) == 2
    finally:
        connection.close()


# ---------------------------------------------------------------------------- the connection cap
def test_stalled_connections_over_the_cap_make_room_for_a_request_and_are_closed(strict_server) -> None:
    stalled = _stall(strict_server, 12)  # the cap is 8
    try:
        status, _, body = _request(strict_server)  # 503 while they are new, 200 once one makes room
        assert status == 200 or (status == 503 and "more than 8 connections" in json.loads(body)["error"]), body
        for connection in stalled:
            _assert_dropped(_until_closed(connection), "request: not ")
    finally:
        _close(stalled)
    _served_again(strict_server)


def test_over_the_cap_a_request_closes_the_longest_stalled_connection(capped_server) -> None:
    stalled = _stall(capped_server, 5)  # the cap is 4; their deadline is far off
    try:
        _served_again(capped_server)  # once they have waited a second, the oldest makes room
        _assert_dropped(_until_closed(stalled[0]), "while the server was full (4 connections)")
    finally:
        _close(stalled)


def test_when_every_connection_is_busy_a_request_is_answered_503_in_json(capped_server) -> None:
    _served_again(capped_server)  # no stalled connections left from another test
    stalled = _busy(capped_server, 4)  # the cap is full
    try:
        status, headers, body = _request(capped_server)
        assert status == 503 and headers["connection"] == "close", body
        assert "more than 4 connections" in json.loads(body)["error"]
        # a body is read before the answer, so a client that sends all of it first still reads the 503
        status, _, body = _request(capped_server, "POST", "/api/decode", body=b" " * 1_500_000,
                                   headers={"Content-Type": "application/json", "Connection": "close"})
        assert status == 503 and "error" in json.loads(body)
    finally:
        _close(stalled)
    _served_again(capped_server)


# ---------------------------------------------------------------------------- bodies over the cap
def _post_http_client(base: str, headers: dict) -> tuple[int, dict[str, str], bytes]:
    return _request(base, "POST", "/api/decode", body=b" " * LARGE,
                    headers={"Content-Type": "application/json", **headers})


def _post_urllib(base: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(base + "/api/decode", data=b" " * LARGE,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=BOUND) as response:
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def _post_chunked(base: str) -> tuple[int, dict[str, str], bytes]:
    chunks = (b" " * 65536 for _ in range(LARGE // 65536))  # no length: http.client sends it chunked
    return _request(base, "POST", "/api/decode", body=chunks, headers={"Content-Type": "application/json"})


def _post_expecting_continue(base: str) -> tuple[int, dict[str, str], bytes]:
    """The header alone, asking ``Expect: 100-continue``: the body is sent only if the server says go on."""
    with socket.create_connection(_address(base), timeout=BOUND) as connection:
        connection.sendall(b"POST /api/decode HTTP/1.1\r\nHost: explorer\r\nContent-Type: application/json\r\n"
                           b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % LARGE)
        status, headers, body = _answer(_until_closed(connection))
    return status, headers, json.dumps(body).encode()


CLIENTS = {
    "http.client": lambda base: _post_http_client(base, {}),
    "http.client, Connection: close": lambda base: _post_http_client(base, {"Connection": "close"}),
    "urllib": _post_urllib,
    "chunked": _post_chunked,
    "Expect: 100-continue": _post_expecting_continue,
}


@pytest.mark.parametrize("client", CLIENTS)
def test_an_oversized_body_gets_a_413_the_client_can_read(server, client) -> None:
    status, headers, body = CLIENTS[client](server)
    assert status == 413 and headers["connection"] == "close", body
    assert json.loads(body)["error"] == f"request body: expected at most {Limits().max_body_bytes:,} bytes"
    assert _request(server)[0] == 200
