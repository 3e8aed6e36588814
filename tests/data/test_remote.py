"""Remote sources: http(s) through fsspec with range reads, retries with backoff, auth headers, s3:// and DANDI.

A threaded http.server in the test process serves real NWB files with `Range` support and logs every request, so
the tests can count the bytes fetched, inject failures (503, dropped connections) and check the headers sent.
Nothing here touches the network: the DANDI client is replaced by a fake.
"""

from __future__ import annotations

import http.server
import os
import re
import socket
import sys
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import reader_fixtures
from nwb_ldns.data import load_session
from nwb_ldns.errors import InputFileError, MissingExtraError


@dataclass
class ServerState:
    """What one test server does and what it saw: `plan` maps request numbers (from 1, HEAD and GET alike) to a
    failure ("503", "cut": half the body then a closed connection); from `fail_from` on every request fails with
    `fail_how`; `token` makes it answer 401 to requests without `Authorization: <token>`."""

    root: Path
    plan: dict[int, str] = field(default_factory=dict)
    fail_from: int | None = None
    fail_how: str = "503"
    token: str | None = None
    log: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bytes_served(self) -> int:
        return sum(entry["bytes"] for entry in self.log)

    def actions(self) -> list[str]:
        return [entry["action"] for entry in self.log]


class _Handler(http.server.BaseHTTPRequestHandler):
    state: ServerState  # set on the per-server subclass
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do (connections are reused and sometimes cut)

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        state = self.state
        with state.lock:
            number = len(state.log) + 1
            action = state.plan.get(number, "ok")
            if state.fail_from is not None and number >= state.fail_from:
                action = state.fail_how
            entry = {"method": self.command, "range": self.headers.get("Range"), "action": action, "bytes": 0,
                     "auth": self.headers.get("Authorization")}
            state.log.append(entry)
        if action == "503":
            return self._status(503, "Service Unavailable")
        if state.token is not None and self.headers.get("Authorization") != state.token:
            entry["action"] = "401"
            return self._status(401, "Unauthorized")
        path = state.root / self.path.lstrip("/").split("?")[0]
        if not path.is_file():
            entry["action"] = "404"
            return self._status(404, "Not Found")
        size = path.stat().st_size
        match = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
        start, stop = (0, size - 1) if match is None else (
            int(match.group(1)), min(int(match.group(2)) if match.group(2) else size - 1, size - 1))
        with open(path, "rb") as handle:
            handle.seek(start)
            body = b"" if head else handle.read(stop - start + 1)
        self.send_response(200 if match is None else 206)
        if match is not None:
            self.send_header("Content-Range", f"bytes {start}-{stop}/{size}")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(stop - start + 1))
        self.end_headers()
        if head:
            return
        if action == "cut":  # headers for the whole range, half the body, then the connection is gone
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)
        entry["bytes"] = len(body)

    def _status(self, code: int, reason: str) -> None:
        self.send_response(code, reason)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _QuietServer(http.server.ThreadingHTTPServer):
    """Does not print the tracebacks of connections dropped on purpose (printing them from server threads also
    made CPython 3.11's traceback module race pytest's ast.parse)."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """(ServerState, base URL) of a range-capable server on 127.0.0.1; retries are recorded instead of waited."""
    import nwb_ldns.data.remote as remote

    state = ServerState(root=tmp_path / "www")
    state.root.mkdir()
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.sleeps = []
    monkeypatch.setattr(remote, "RETRY_DELAYS", (0.01, 0.02, 0.04, 0.08))
    monkeypatch.setattr(remote, "_pause", state.sleeps.append)
    monkeypatch.delenv("NWB_LDNS_HTTP_TOKEN", raising=False)
    monkeypatch.delenv("DANDI_API_KEY", raising=False)
    try:
        yield state, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def mock_url(server, mock_counts, monkeypatch):
    """(state, URL) of the ~100 kB mock session, read in 16 kB blocks so that a load takes several requests."""
    import nwb_ldns.data.remote as remote

    state, base = server
    (state.root / "mock.nwb").write_bytes(mock_counts[0].read_bytes())
    monkeypatch.setattr(remote, "DEFAULT_BLOCK_SIZE", 16384)
    return state, f"{base}/mock.nwb"


def _same_session(a: xr.Dataset, b: xr.Dataset) -> None:
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    skip = {"source_path", "source_sha256"}
    assert {k: v for k, v in a.attrs.items() if k not in skip} == {k: v for k, v in b.attrs.items() if k not in skip}


# --- reading: same data as the local file, only the bytes needed -----------------------------------------------------

def test_remote_url_equals_local_path(maze_session, server):
    from nwb_ldns.data import describe_session

    path, _ = maze_session
    state, base = server
    (state.root / "maze.nwb").write_bytes(path.read_bytes())
    options = dict(align="move_onset_time", window=(-0.25, 0.45), bin_width=0.005, behavior="hand_vel")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = load_session(path, **options)
        remote = load_session(f"{base}/maze.nwb", **options)
    _same_session(local, remote)
    assert remote.attrs["source_path"] == f"{base}/maze.nwb" and remote.attrs["source_sha256"] == ""
    assert all(e["range"] for e in state.log if e["method"] == "GET"), "every GET should be a range request"
    info = describe_session(f"{base}/maze.nwb")
    assert info["backend"] == "remote-hdf5" and info["trial_tables"][0]["n_rows"] == 12


def test_remote_reads_far_less_than_the_file(server):
    state, base = server
    size = reader_fixtures.write_with_large_raw(state.root / "big.nwb")
    ds = load_session(f"{base}/big.nwb", bin_width=0.1)
    assert ds.sizes["trial"] == 5 and ds["counts"].values.sum() > 0
    fetched = state.bytes_served()
    assert size > 8_000_000 and fetched < size / 4, (fetched, size)
    assert all(e["range"] for e in state.log if e["method"] == "GET")


def test_remote_file_fetches_only_the_blocks_it_needs(server, monkeypatch):
    import nwb_ldns.data.remote as remote

    state, base = server
    data = np.random.default_rng(0).integers(0, 256, 5 * 4096 + 17, dtype=np.uint8).tobytes()
    (state.root / "blob.bin").write_bytes(data)
    monkeypatch.setattr(remote, "DEFAULT_BLOCK_SIZE", 4096)
    with remote.open_remote(f"{base}/blob.bin") as handle:
        assert handle.size == len(data)
        handle.seek(4096 * 3 + 10)
        assert handle.read(100) == data[4096 * 3 + 10: 4096 * 3 + 110]
        handle.seek(-20, os.SEEK_END)
        assert handle.read() == data[-20:]
        handle.seek(4096 * 3)
        assert handle.read(4096) == data[4096 * 3: 4096 * 4]  # cached: no new request
    # blocks 3 and 4 and the short last block, nothing else; one HEAD for the size
    assert state.bytes_served() == 2 * 4096 + 17, state.log
    assert [(e["method"], e["range"]) for e in state.log] == [
        ("HEAD", None), ("GET", "bytes=12288-16383"), ("GET", "bytes=16384-20479"), ("GET", "bytes=20480-24575")]


def test_remote_missing_file_is_input_error(server):
    _, base = server
    with pytest.raises(InputFileError, match=r"HTTP 404.*check the URL"):
        load_session(f"{base}/absent.nwb")


def test_server_without_range_support_is_refused(server, monkeypatch):
    """A server that ignores Range (answers 200 with the whole file) is refused instead of downloaded block by block."""
    state, base = server
    (state.root / "blob.bin").write_bytes(bytes(200_000))
    import nwb_ldns.data.remote as remote

    monkeypatch.setattr(remote, "DEFAULT_BLOCK_SIZE", 4096)
    monkeypatch.setattr(_Handler, "_answer", _ignore_range)
    with remote.open_remote(f"{base}/blob.bin") as handle, pytest.raises(InputFileError, match="range requests"):
        handle.seek(50_000)
        handle.read(10)


def _ignore_range(self, head: bool) -> None:
    body = (self.state.root / "blob.bin").read_bytes()
    self.send_response(200)
    self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    if not head:
        self.wfile.write(body)


# --- retries with backoff, then one error naming the URL ------------------------------------------------------------

@pytest.mark.parametrize("plan", [
    {1: "503", 2: "503"},  # busy on the very first requests (the size probe)
    {3: "cut"},  # a block cut mid-transfer
    {3: "cut", 4: "cut", 6: "503"},  # two drops in a row, then a busy answer
], ids=["busy-at-start", "one-drop", "drops-and-503"])
def test_remote_read_retries_transient_failures(mock_url, mock_counts, plan):
    state, url = mock_url
    state.plan = dict(plan)
    remote = load_session(url)
    np.testing.assert_array_equal(remote["counts"].values, load_session(mock_counts[0])["counts"].values)
    assert state.actions().count("ok") >= 3, state.actions()
    assert [a for a in state.actions() if a != "ok"] == list(plan.values())  # every planned failure was met
    # a backoff delay before each retry (a failed HEAD size probe falls back to a GET: the two count as one try)
    assert len(state.sleeps) >= (1 if set(plan) == {1, 2} else len(plan)), state.sleeps
    assert set(state.sleeps) <= {0.01, 0.02, 0.04, 0.08}, state.sleeps


def test_inspect_survives_an_injected_503(mock_url):
    """`nwb-ldns inspect URL` on a server that answers 503 to the first requests: retried, exit 0."""
    from click.testing import CliRunner

    from nwb_ldns.cli.main import cli

    state, url = mock_url
    state.plan = {1: "503", 2: "503"}  # the HEAD size probe, then its GET fallback
    result = CliRunner().invoke(cli, ["inspect", url])
    assert result.exit_code == 0, result.output
    assert state.actions()[:3] == ["503", "503", "ok"] and state.sleeps == [0.01]
    assert url in result.output and "20" in result.output, result.output


def test_baseline_and_evaluate_take_a_url(mock_url, mock_counts, tmp_path):
    """`baseline psth URL` and `evaluate URL ...` read the session in place, and score the same as the local file."""
    import json

    from click.testing import CliRunner

    from nwb_ldns.cli.main import cli

    state, url = mock_url
    local = str(mock_counts[0])
    out = tmp_path / "psth.nwb"
    result = CliRunner().invoke(cli, ["baseline", "psth", url, "--out", str(out), "--n", "8", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "from" in result.output and state.bytes_served() > 0
    scores = {}
    for name, real in (("remote", url), ("local", local)):
        target = tmp_path / f"{name}.json"
        result = CliRunner().invoke(cli, ["evaluate", real, str(out), "--bootstrap", "0", "--no-memorisation",
                                          "--json", str(target)])
        assert result.exit_code == 0, result.output
        scores[name] = json.loads(target.read_text())
    assert scores["remote"]["real"]["path"] == url
    assert scores["remote"]["generated"] == scores["local"]["generated"]  # every statistic, bit for bit
    missing = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "nope.nwb"), str(out)])
    assert missing.exit_code == 2 and "does not exist" in missing.output


@pytest.mark.parametrize("how, fragment, good", [
    ("503", "HTTP 503 Service Unavailable", 0),  # from the size probe on
    ("503", "HTTP 503 Service Unavailable", 2),  # after the first block
    ("cut", "mid-transfer", 2),  # (a HEAD size probe has no body to cut)
])
def test_remote_read_gives_up_with_one_error(mock_url, how, fragment, good):
    """A server that fails every request after `good` good ones: 5 tries with growing delays, then one error."""
    state, url = mock_url
    state.fail_from, state.fail_how = good + 1, how
    with pytest.raises(InputFileError) as raised:
        load_session(url)
    message = str(raised.value)
    assert message.startswith(f"cannot read {url}"), message  # ours, not wrapped in a pynwb error
    assert fragment in message and "on all 5 tries" in message, message
    assert "download the file and pass its local path" in message and "\n" not in message
    assert state.sleeps == [0.01, 0.02, 0.04, 0.08]  # backoff: each delay longer than the last
    failed = [a for a in state.actions() if a != "ok"]
    assert failed == [how] * (len(failed)) and len(failed) >= 5  # (the size probe tries HEAD, then GET)


def test_remote_failure_is_one_cli_error(mock_url):
    """The same through `nwb-ldns inspect`: exit code 2, one `Error:` line naming the URL and status, no traceback."""
    from click.testing import CliRunner

    from nwb_ldns.cli.main import cli

    state, url = mock_url
    state.fail_from = 1
    result = CliRunner().invoke(cli, ["inspect", url])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and url in errors[0] and "HTTP 503" in errors[0] and "tries" in errors[0], result.output


def test_unreachable_host_is_not_retried(server):
    state, _ = server
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(InputFileError, match=r"cannot reach http://127\.0\.0\.1:\d+/x\.nwb.*check the URL"):
        load_session(f"http://127.0.0.1:{port}/x.nwb")
    assert state.sleeps == []


# --- auth ------------------------------------------------------------------------------------------------------------

def test_token_from_the_environment_is_sent(mock_url, monkeypatch):
    state, url = mock_url
    state.token = "Bearer s3cret"
    with pytest.raises(InputFileError, match=r"HTTP 401.*NWB_LDNS_HTTP_TOKEN"):
        load_session(url)
    assert state.sleeps == []  # 401 is not worth a retry
    monkeypatch.setenv("NWB_LDNS_HTTP_TOKEN", "s3cret")
    assert load_session(url).sizes["trial"] == 20
    assert state.log[-1]["auth"] == "Bearer s3cret"


def test_auth_headers_by_host(monkeypatch):
    from nwb_ldns.data.remote_urls import auth_headers

    monkeypatch.delenv("NWB_LDNS_HTTP_TOKEN", raising=False)
    monkeypatch.delenv("DANDI_API_KEY", raising=False)
    assert auth_headers("https://lab.example.org/a.nwb") == ()
    monkeypatch.setenv("NWB_LDNS_HTTP_TOKEN", "Basic dXNlcjpwdw==")  # a full header value is sent as it is
    monkeypatch.setenv("DANDI_API_KEY", "k123")
    assert auth_headers("https://lab.example.org/a.nwb") == (("Authorization", "Basic dXNlcjpwdw=="),)
    # the DANDI API gets the DANDI key (in DANDI's `token` scheme), never the other token
    assert auth_headers("https://api.dandiarchive.org/api/assets/x/download/") == (("Authorization", "token k123"),)


# --- s3:// and other schemes ----------------------------------------------------------------------------------------

def test_s3_without_s3fs_names_the_extra(monkeypatch):
    from click.testing import CliRunner

    from nwb_ldns.cli.main import cli

    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if not installed (import raises ImportError)
    with pytest.raises(MissingExtraError, match=r"s3:// URLs needs the optional package s3fs.*nwb-ldns\[remote\]"):
        load_session("s3://dandiarchive/blobs/abc/def")
    result = CliRunner().invoke(cli, ["inspect", "s3://dandiarchive/blobs/abc/def"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "pip install 'nwb-ldns[remote]'" in errors[0], result.output


@pytest.mark.parametrize("source, pattern", [
    ("s3://bucket-only", r"not an S3 object URL.*s3://BUCKET/KEY"),
    ("ftp://example.org/a.nwb", r"ftp:// sources are not supported.*dandi://DANDISET/PATH"),
    ("https://example.org/session.nwb.zarr", r"remote Zarr store.*download"),
    ("dandi://000003/sub-1/ses.nwb.zarr/", r"remote Zarr store.*download"),
])
def test_bad_remote_sources_are_one_line(source, pattern):
    with pytest.raises(InputFileError, match=pattern):
        load_session(source)


# --- DANDI: parsing, and resolution through a fake client -----------------------------------------------------------

API = "https://api.dandiarchive.org/api"
ASSET = "0a1b2c3d-1111-2222-3333-444455556666"


@pytest.mark.parametrize("text, expected", [
    ("dandi://000003/sub-A/sub-A_ses-1.nwb", (API, "000003", None, "sub-A/sub-A_ses-1.nwb", None)),
    ("dandi://DANDI/000003@0.210812.1448/sub-A/x.nwb", (API, "000003", "0.210812.1448", "sub-A/x.nwb", None)),
    ("dandi://dandi-sandbox/000123@draft/x.nwb",
     ("https://api.sandbox.dandiarchive.org/api", "000123", "draft", "x.nwb", None)),
    (f"https://api.dandiarchive.org/api/assets/{ASSET}/download/", (API, None, None, None, ASSET)),
    (f"https://api.dandiarchive.org/api/dandisets/000003/versions/draft/assets/{ASSET}/download/",
     (API, "000003", "draft", None, ASSET)),
    ("https://dandiarchive.org/dandiset/000003/0.210812.1448/files?location=sub-A%2Fx.nwb",
     (API, "000003", "0.210812.1448", "sub-A/x.nwb", None)),
    ("https://dandiarchive.org/dandiset/000003/files?location=sub-A/x.nwb", (API, "000003", None, "sub-A/x.nwb", None)),
])
def test_dandi_references_parse(text, expected):
    from nwb_ldns.data.remote_urls import parse_source

    source = parse_source(text)
    ref = source.dandi
    assert (ref.api_url, ref.dandiset_id, ref.version, ref.path, ref.asset_id) == expected
    # an API asset URL is plain https too (readable without the dandi client); the others need the API
    assert source.kind == ("http" if ref.asset_id else "dandi")


@pytest.mark.parametrize("text, pattern", [
    ("dandi://000003", r"not a DANDI asset reference.*dandi://DANDISET\[@VERSION\]/PATH"),
    ("dandi://00003/x.nwb", r"unknown DANDI instance '00003'"),
    ("dandi://linc/000003/x.nwb", r"unknown DANDI instance 'linc'.*dandi, dandi-sandbox"),
    ("https://dandiarchive.org/dandiset/000003", r"DANDI web page, not a file"),
])
def test_bad_dandi_references(text, pattern):
    from nwb_ldns.data.remote_urls import parse_source

    with pytest.raises(InputFileError, match=pattern):
        parse_source(text)


def test_plain_urls_are_not_dandi():
    from nwb_ldns.data.remote_urls import parse_source

    for text in ["https://lab.example.org/data/s1.nwb", "https://api.dandiarchive.org/api/info/"]:
        source = parse_source(text)
        assert source.kind == "http" and source.dandi is None and source.url == text


class NotFoundError(Exception):
    """Named as dandi's own, which resolve_dandi recognises by name."""


NotFoundError.__module__ = "dandi.exceptions"


class _FakeAsset:
    def __init__(self, path, urls, asset_type="AssetType.BLOB", redirect=None):
        self.path, self.urls, self.asset_type, self.redirect = path, urls, asset_type, redirect

    def get_content_url(self, regex=r".*", follow_redirects=False, strip_query=False):
        for url in self.urls:
            if re.search(regex, url):
                return self.redirect if follow_redirects and self.redirect else url
        raise NotFoundError("No matching URL found in asset's contentUrl metadata field")


class _FakeClient:
    """Stands in for dandi.dandiapi.DandiAPIClient: records the calls, serves `assets` by path and by id."""

    calls: list = []
    assets: dict = {}

    def __init__(self, api_url=None, token=None):
        type(self).calls.append(("client", api_url, token))

    def get_asset(self, asset_id):
        type(self).calls.append(("asset", asset_id))
        if asset_id not in self.assets:
            raise NotFoundError(f"No such asset: {asset_id}")
        return self.assets[asset_id]

    def get_dandiset(self, dandiset_id, version_id=None):
        type(self).calls.append(("dandiset", dandiset_id, version_id))
        return self

    def get_asset_by_path(self, path):
        type(self).calls.append(("path", path))
        if path not in self.assets:
            raise NotFoundError(f"No asset at path {path!r}")
        return self.assets[path]


S3 = "https://dandiarchive.s3.amazonaws.com/blobs/abc/def/0123"


@pytest.fixture
def fake_dandi(monkeypatch):
    monkeypatch.delenv("DANDI_API_KEY", raising=False)
    _FakeClient.calls = []
    _FakeClient.assets = {
        "sub-A/x.nwb": _FakeAsset("sub-A/x.nwb", [f"{API}/assets/{ASSET}/download/", S3]),
        ASSET: _FakeAsset("sub-A/x.nwb", [f"{API}/assets/{ASSET}/download/", S3]),
        "sub-B/emb.nwb": _FakeAsset("sub-B/emb.nwb", [f"{API}/assets/{ASSET}/download/"],
                                    redirect="https://dandiarchive-embargo.s3.amazonaws.com/x?X-Amz-Signature=1"),
        "sub-C/z.nwb.zarr": _FakeAsset("sub-C/z.nwb.zarr", [S3], asset_type="AssetType.ZARR"),
    }
    return _FakeClient


def test_dandi_resolves_to_the_s3_url(fake_dandi, monkeypatch):
    from nwb_ldns.data.remote_urls import parse_source, resolve_dandi

    assert resolve_dandi(parse_source("dandi://000003@draft/sub-A/x.nwb").dandi, fake_dandi) == S3
    assert fake_dandi.calls == [("client", API, None), ("dandiset", "000003", "draft"), ("path", "sub-A/x.nwb")]
    fake_dandi.calls = []
    monkeypatch.setenv("DANDI_API_KEY", "k123")
    ref = parse_source(f"https://api.dandiarchive.org/api/assets/{ASSET}/download/").dandi
    assert resolve_dandi(ref, fake_dandi) == S3
    assert fake_dandi.calls == [("client", API, "k123"), ("asset", ASSET)]
    # embargoed: no public S3 URL listed, so the API's download URL is followed to its signed S3 URL
    ref = parse_source("dandi://000003/sub-B/emb.nwb").dandi
    assert resolve_dandi(ref, fake_dandi).startswith("https://dandiarchive-embargo.s3.amazonaws.com/")


@pytest.mark.parametrize("text, pattern", [
    ("dandi://000003/sub-Z/missing.nwb", r"cannot look up sub-Z/missing\.nwb in Dandiset 000003 .*NotFoundError.*"
                                         r"check the Dandiset number, version and path"),
    ("dandi://000003/sub-C/z.nwb.zarr", r"is a Zarr asset.*dandi download"),
])
def test_dandi_lookup_failures_are_one_line(fake_dandi, text, pattern):
    from nwb_ldns.data.remote_urls import parse_source, resolve_dandi

    with pytest.raises(InputFileError, match=pattern):
        resolve_dandi(parse_source(text).dandi, fake_dandi)


def test_dandi_http_error_names_the_api_key(fake_dandi):
    from nwb_ldns.data.remote_urls import parse_source, resolve_dandi

    class HTTPError(Exception):
        response = type("Response", (), {"status_code": 401})()

    HTTPError.__module__ = "requests.exceptions"

    def refuse(self, path):
        raise HTTPError("401 Client Error: Unauthorized")

    fake_dandi.get_asset_by_path = refuse
    with pytest.raises(InputFileError, match=r"embargoed: set DANDI_API_KEY"):
        resolve_dandi(parse_source("dandi://000003/sub-A/x.nwb").dandi, fake_dandi)


def test_dandi_source_reads_through_its_resolved_url(mock_url, mock_counts, monkeypatch):
    """load_session("dandi://...") reads the file at the URL the DANDI API gives, and keeps the dandi:// name."""
    import nwb_ldns.data.remote as remote

    state, url = mock_url
    seen = []
    monkeypatch.setattr(remote, "resolve_dandi", lambda ref: seen.append(ref) or url)
    ds = load_session("dandi://000003/sub-A/mock.nwb")
    np.testing.assert_array_equal(ds["counts"].values, load_session(mock_counts[0])["counts"].values)
    assert ds.attrs["source_path"] == "dandi://000003/sub-A/mock.nwb"
    assert seen[0].dandiset_id == "000003" and seen[0].path == "sub-A/mock.nwb"
    assert all(e["auth"] is None for e in state.log)  # resolved URLs get no Authorization header


def test_dandi_without_the_client_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dandi.dandiapi", None)
    with pytest.raises(MissingExtraError, match=r"DANDI.*needs the optional package dandi.*nwb-ldns\[dandi\]"):
        load_session("dandi://000003/sub-A/x.nwb")


def test_reads_run_without_garbage_collection(mock_url, monkeypatch):
    """h5py holds its lock while it calls readinto; a collection on fsspec's loop thread that frees an h5py object
    would wait for that lock while the read waits for the loop (a deadlock): reads run with gc disabled."""
    import gc

    import nwb_ldns.data.remote as remote

    states = []
    original = remote.RemoteFile._read_at
    monkeypatch.setattr(remote.RemoteFile, "_read_at",
                        lambda self, start, length: states.append(gc.isenabled()) or original(self, start, length))
    assert load_session(mock_url[1]).sizes["trial"] == 20
    assert states and not any(states) and gc.isenabled()
