"""`vaekit explore`: the server starts on loopback and answers, --api-only leaves out the page,
--timeout and --max-connections reach the server, and an address that cannot be used, an option out
of range or a missing web extra is one line with exit code 2."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_support import cli_env, vaekit_command

pytest.importorskip("fastapi", reason="the explorer needs the web extra: pip install 'vaekit[web]'")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@dataclass
class Served:
    port: int
    line: str  # the first line on stdout, printed once the model, codes and threshold are ready


def _serve(pristine_run: Path, data_store: Path, *args: str):
    """Start ``vaekit explore RUN --port PORT ARGS`` in a real process; yield it, then stop it."""
    port = _free_port()
    process = subprocess.Popen(vaekit_command("explore", pristine_run, "--port", str(port), *args),
                               env=cli_env(data_store), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        if not line:
            pytest.fail(f"vaekit explore exited {process.wait(30)}: {process.stderr.read()}")
        yield Served(port, line)
    finally:
        process.terminate()
        process.wait(timeout=30)


# Two servers for the module (each start costs an interpreter and the run's codes, 7-12 s under load):
# the page with a connection cap, and the API alone with a short request deadline.
@pytest.fixture(scope="module")
def page_server(pristine_run: Path, data_store: Path):
    yield from _serve(pristine_run, data_store, "--max-connections", "2")


@pytest.fixture(scope="module")
def api_server(pristine_run: Path, data_store: Path):
    yield from _serve(pristine_run, data_store, "--api-only", "--timeout", "1")


def test_explore_serves_page_and_api_on_loopback(page_server: Served) -> None:
    port = page_server.port
    assert page_server.line.startswith(f"vaekit explorer: http://127.0.0.1:{port}/")
    base = f"http://127.0.0.1:{port}"
    status, body = _wait_for(base + "/api/info")
    assert status == 200 and json.loads(body)["latent_dim"] == 4
    status, page = _get(base + "/")
    assert status == 200 and b"/static/explorer.js" in page
    status, body = _get(base + "/api/openapi.json")
    assert status == 200 and "/api/decode" in json.loads(body)["paths"]


def test_api_only_serves_no_page(api_server: Served) -> None:
    port = api_server.port
    assert api_server.line.strip().endswith(f"http://127.0.0.1:{port}/api/openapi.json  (Ctrl-C stops it)")
    assert _wait_for(f"http://127.0.0.1:{port}/api/info")[0] == 200
    assert _get(f"http://127.0.0.1:{port}/")[0] == 404


def _wait_for(url: str, tries: int = 100) -> tuple[int, bytes]:
    for _ in range(tries):
        try:
            return _get(url)
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    pytest.fail(f"{url} never answered")


def test_timeout_closes_a_stalled_request(api_server: Served) -> None:
    port = api_server.port
    assert _wait_for(f"http://127.0.0.1:{port}/api/info")[0] == 200
    with socket.create_connection(("127.0.0.1", port), timeout=30) as stalled:
        stalled.sendall(b"GET /api/info HTTP/1.1\r\nHost: explorer\r\n")  # and never the blank line
        answer, deadline = b"", time.monotonic() + 30
        while time.monotonic() < deadline and (chunk := stalled.recv(4096)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 ") and b"not received within 1 s" in answer, answer


def test_max_connections_answers_503_over_the_cap(page_server: Served) -> None:
    port = page_server.port
    assert _wait_for(f"http://127.0.0.1:{port}/api/info")[0] == 200
    stalled = []
    try:
        for _ in range(2):  # two requests in progress, their bodies held back (the deadline is 30 s)
            stalled.append(socket.create_connection(("127.0.0.1", port), timeout=30))
            stalled[-1].sendall(b"POST /api/decode HTTP/1.1\r\nHost: explorer\r\nContent-Length: 100\r\n"
                                b"Expect: 100-continue\r\n\r\n")
            assert stalled[-1].recv(4096).startswith(b"HTTP/1.1 100 ")  # the server has taken the request up
        status, body = _get(f"http://127.0.0.1:{port}/api/info")
        assert status == 503 and "more than 2 connections" in json.loads(body)["error"], body
    finally:
        for connection in stalled:
            connection.close()


@pytest.mark.parametrize("option", [("--timeout", "0"), ("--timeout", "nan"), ("--max-connections", "0")])
def test_an_option_out_of_range_is_refused(run_main, pristine_run: Path, option: tuple[str, str]) -> None:
    code, _, err = run_main("explore", pristine_run, *option)
    assert code == 2 and option[0] in err and "Traceback" not in err, err


def test_a_busy_port_is_one_line(run_main, pristine_run: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = run_main("explore", pristine_run, "--port", port)
    assert code == 2, err
    assert f"--port {port} on 127.0.0.1: cannot listen there" in err and "Traceback" not in err
    assert "vaekit explorer:" not in out


def test_a_host_that_is_not_an_address_is_one_line(run_main, pristine_run: Path) -> None:
    code, _, err = run_main("explore", pristine_run, "--host", "no-such-host.invalid", "--port", "8123")
    assert code == 2 and "--host 'no-such-host.invalid'" in err, err


def test_without_the_web_extra_the_error_names_it(run_main, pristine_run: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import fails as if it were not installed
    code, _, err = run_main("explore", pristine_run)
    assert code == 2 and "pip install 'vaekit[web]'" in err, err


def test_a_missing_run_is_one_line(run_main, tmp_path: Path) -> None:
    code, _, err = run_main("explore", tmp_path / "nothing")
    assert code == 2 and "does not exist" in err, err
