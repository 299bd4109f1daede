"""Checksummed, resumable downloads against a local HTTP server on 127.0.0.1 (no internet)."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vaekit.config import DataConfig
from vaekit.data.download import default_root, download, fetch_files, find_local
from vaekit.errors import DataError, DownloadError

PAYLOAD = bytes(range(256)) * 64  # 16 KiB
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class _Server:
    """A tiny file server; ``honour_range`` decides whether ``Range`` requests get a 206."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.honour_range = True
        self.requests: list[dict[str, str | int | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (the http.server hook name)
                body = server.files.get(self.path.lstrip("/"))
                wanted = self.headers.get("Range")
                record: dict[str, str | int | None] = {"path": self.path, "range": wanted}
                server.requests.append(record)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if wanted and server.honour_range:
                    start = int(wanted.removeprefix("bytes=").rstrip("-"))
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])
                record["sent"] = len(body) - start

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours proxy variables; the tests talk to 127.0.0.1 directly."""
    for scheme in ("http", "https", "all"):
        monkeypatch.delenv(f"{scheme}_proxy", raising=False)
        monkeypatch.delenv(f"{scheme.upper()}_PROXY", raising=False)


@pytest.fixture
def server() -> Iterator[_Server]:
    files = {"data.bin": PAYLOAD}
    srv = _Server(files)
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(timeout=5)


@pytest.fixture
def closed_url() -> str:
    """A URL on a local port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/data.bin"


def test_download_writes_verified_file(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "data.bin"
    assert download(server.url + "data.bin", dest, PAYLOAD_SHA256, timeout=5) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "sub" / "data.bin.part").exists()


def test_checksum_mismatch_removes_part_file(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match=r"data\.bin.*SHA-256 [0-9a-f]{64}, expected 0{64}"):
        download(server.url + "data.bin", dest, "0" * 64, timeout=5)
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


def test_resumes_partial_download_with_range(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:5000])
    download(server.url + "data.bin", dest, PAYLOAD_SHA256, timeout=5)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1]["range"] == "bytes=5000-"
    assert server.requests[-1]["sent"] == len(PAYLOAD) - 5000


def test_restarts_when_server_ignores_range(server: _Server, tmp_path: Path) -> None:
    server.honour_range = False
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(b"stale bytes from another file")
    download(server.url + "data.bin", dest, PAYLOAD_SHA256, timeout=5)
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_file_is_verified_on_416(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)
    download(server.url + "data.bin", dest, PAYLOAD_SHA256, timeout=5)
    assert dest.read_bytes() == PAYLOAD


def test_http_error_is_a_download_error(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"HTTP 404"):
        download(server.url + "missing.bin", tmp_path / "missing.bin", PAYLOAD_SHA256, timeout=5)


def test_unreachable_url_says_how_to_supply_files(closed_url: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"could not reach .*data\.root=DIR") as info:
        download(closed_url, tmp_path / "data.bin", PAYLOAD_SHA256, timeout=5)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "data.bin").exists()


def test_default_root_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "store"))
    assert default_root("mnist") == tmp_path / "store" / "mnist"
    monkeypatch.delenv("VAEKIT_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_root("mnist") == tmp_path / "home" / ".cache" / "vaekit" / "mnist"


@pytest.fixture
def empty_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    store = tmp_path / "store"
    monkeypatch.setenv("VAEKIT_DATA", str(store))
    return store


def test_fetch_files_uses_local_copy_without_network(
    empty_store: Path, closed_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "data.bin").write_bytes(PAYLOAD)
    config = DataConfig(root=str(root), download=True)
    paths = fetch_files("toy", {"data.bin": (closed_url, PAYLOAD_SHA256)}, config)
    assert paths == {"data.bin": root / "data.bin"}


def test_fetch_files_accepts_uncompressed_twin(empty_store: Path, closed_url: str) -> None:
    folder = empty_store / "toy"
    folder.mkdir(parents=True)
    (folder / "data.bin").write_bytes(PAYLOAD)
    config = DataConfig(download=False)
    paths = fetch_files("toy", {"data.bin.gz": (closed_url, PAYLOAD_SHA256)}, config)
    assert paths == {"data.bin.gz": folder / "data.bin"}


def test_fetch_files_searches_extra_dirs(empty_store: Path, tmp_path: Path) -> None:
    system = tmp_path / "system"
    system.mkdir()
    (system / "data.bin").write_bytes(PAYLOAD)
    config = DataConfig(download=False)
    found = find_local("toy", ["data.bin", "other.bin"], config, extra_dirs=[system])
    assert found == {"data.bin": system / "data.bin", "other.bin": None}


def test_fetch_files_missing_offline_says_where_it_looked(
    empty_store: Path, closed_url: str, tmp_path: Path
) -> None:
    config = DataConfig(root=str(tmp_path / "root"), download=False)
    with pytest.raises(DataError, match=r"data\.bin not found \(looked in .*root.*store") as info:
        fetch_files("toy", {"data.bin": (closed_url, PAYLOAD_SHA256)}, config)
    assert "data.download is false" in str(info.value)


def test_fetch_files_downloads_into_root(server: _Server, empty_store: Path, tmp_path: Path):
    config = DataConfig(root=str(tmp_path / "root"), download=True)
    paths = fetch_files("toy", {"data.bin": (server.url + "data.bin", PAYLOAD_SHA256)}, config)
    assert paths["data.bin"] == tmp_path / "root" / "data.bin"
    assert paths["data.bin"].read_bytes() == PAYLOAD


def test_fetch_files_downloads_into_default_root(server: _Server, empty_store: Path) -> None:
    config = DataConfig(download=True)
    paths = fetch_files("toy", {"data.bin": (server.url + "data.bin", PAYLOAD_SHA256)}, config)
    assert paths["data.bin"] == empty_store / "toy" / "data.bin"
    assert paths["data.bin"].read_bytes() == PAYLOAD
