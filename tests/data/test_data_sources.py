"""Sources other than a local pynwb HDF5 file: Zarr, HTTP range requests, NWB 2.1-era and MatNWB files."""

from __future__ import annotations

import http.server
import os
import re
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import reader_fixtures
from nwb_ldns.data import load_session
from nwb_ldns.data.remote import HTTPRangeFile

SOURCE_ATTRS = ("source_path", "source_sha256")


def assert_same_session(a: xr.Dataset, b: xr.Dataset, ignore=SOURCE_ATTRS) -> None:
    """Equal variables, coordinates and attrs, except the attrs that name where the data came from."""
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    attrs_a = {k: v for k, v in a.attrs.items() if k not in ignore}
    attrs_b = {k: v for k, v in b.attrs.items() if k not in ignore}
    assert attrs_a == attrs_b


def test_zarr_equals_hdf5(maze_session, tmp_path):
    import hdmf_zarr
    import numcodecs
    from pynwb import NWBHDF5IO

    path, _ = maze_session
    store = tmp_path / "maze.nwb.zarr"
    with NWBHDF5IO(str(path), "r") as reader, hdmf_zarr.ZarrIO(
        str(store), mode="w", manager=reader.manager, object_codec_class=numcodecs.JSON
    ) as writer:
        writer.export(src_io=reader, write_args=dict(link_data=False))
    options = dict(align="move_onset_time", window=(-0.25, 0.45), bin_width=0.005, behavior="hand_vel",
                   unit_filter="heldout==False")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_hdf5 = load_session(path, **options)
        from_zarr = load_session(store, **options)
    assert_same_session(from_hdf5, from_zarr)
    assert from_zarr.attrs["source_path"] == str(store)
    assert len(from_zarr.attrs["source_sha256"]) == 64
    assert from_zarr.attrs["source_sha256"] != from_hdf5.attrs["source_sha256"]


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files from one directory, honouring single `Range: bytes=a-b` requests; counts range requests."""

    ranges_served: list[int] = []

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404, "not found")
            return
        size = path.stat().st_size
        match = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
        if match is None:
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.write(path.read_bytes())
            return
        start = int(match.group(1))
        stop = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
        with open(path, "rb") as handle:
            handle.seek(start)
            body = handle.read(stop - start + 1)
        type(self).ranges_served.append(len(body))
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{stop}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _QuietServer(http.server.ThreadingHTTPServer):
    """A threaded test server that does not print the tracebacks of connections the client (or the flaky handler)
    drops on purpose: printing them from server threads also made CPython 3.11's traceback module call ast.parse
    concurrently with pytest's, which can crash pytest ("AST constructor recursion depth mismatch")."""

    def handle_error(self, request, client_address) -> None:
        pass


@pytest.fixture
def http_root(tmp_path):
    """(directory, base URL) of a threaded HTTP server on 127.0.0.1, shut down after the test (or after 120 s)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **k: _RangeHandler(*a, directory=str(root), **k)  # noqa: E731
    server = _QuietServer(("127.0.0.1", 0), handler)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    watchdog = threading.Timer(120, server.shutdown)
    watchdog.daemon = True
    watchdog.start()
    _RangeHandler.ranges_served = []
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_remote_url_equals_local_path(maze_session, http_root):
    path, _ = maze_session
    root, base = http_root
    (root / "maze.nwb").write_bytes(path.read_bytes())
    options = dict(align="move_onset_time", window=(-0.25, 0.45), bin_width=0.005, behavior="hand_vel")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = load_session(path, **options)
        remote = load_session(f"{base}/maze.nwb", **options)
    assert_same_session(local, remote)
    assert remote.attrs["source_path"] == f"{base}/maze.nwb"
    assert remote.attrs["source_sha256"] == ""
    assert _RangeHandler.ranges_served, "the reader should use range requests"
    from nwb_ldns.data import describe_session

    info = describe_session(f"{base}/maze.nwb")
    assert info["backend"] == "remote-hdf5" and info["trial_tables"][0]["n_rows"] == 12


def test_remote_reads_far_less_than_the_file(tmp_path, http_root):
    root, base = http_root
    size = reader_fixtures.write_with_large_raw(root / "big.nwb")
    ds = load_session(f"{base}/big.nwb", bin_width=0.1)
    assert ds.sizes["trial"] == 5 and ds["counts"].values.sum() > 0
    fetched = sum(_RangeHandler.ranges_served)
    assert size > 8_000_000 and fetched < size / 2, (fetched, size)


def test_range_file_fetches_only_the_blocks_it_needs(http_root):
    root, base = http_root
    data = np.random.default_rng(0).integers(0, 256, 5 * 4096 + 17, dtype=np.uint8).tobytes()
    (root / "blob.bin").write_bytes(data)
    with HTTPRangeFile(f"{base}/blob.bin", block_size=4096) as remote:
        assert remote.size == len(data)
        remote.seek(4096 * 3 + 10)
        assert remote.read(100) == data[4096 * 3 + 10 : 4096 * 3 + 110]
        remote.seek(-20, os.SEEK_END)
        assert remote.read() == data[-20:]
        assert remote.bytes_fetched == 2 * 4096 + 17  # blocks 3 and 4 plus the short last block, nothing else


def test_remote_missing_file_is_input_error(http_root):
    from nwb_ldns.errors import InputFileError

    _, base = http_root
    with pytest.raises(InputFileError, match="HTTP 404.*check the URL"):
        load_session(f"{base}/absent.nwb")


def test_nwb21_style_file_reads(mock_counts, tmp_path):
    path, counts = mock_counts
    old = reader_fixtures.edited_copy(path, tmp_path / "nwb21.nwb", reader_fixtures.make_nwb21_style)
    import h5py

    with h5py.File(old, "r") as f:  # the fixture really has the old layout
        assert f["units"].attrs["colnames"].dtype.kind == "S"
        assert f["units/spike_times_index"].dtype == np.int32
    ds = load_session(old)
    np.testing.assert_array_equal(ds["counts"].values, counts)
    assert ds.attrs["source_nwb_version"] == "2.1.0"
    assert "trial_condition" in ds


def test_real_matnwb_file_each_trial_table(real_nwb_path):
    before = real_nwb_path.stat().st_mtime_ns
    expected_rows = {"encoding_table": 90, "recognition_table": 180, "timediscrimination_table": 180}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for table, rows in expected_rows.items():
            ds = load_session(real_nwb_path, trials_table=table, bin_width=0.05)
            assert ds.sizes["trial"] == rows and ds.sizes["unit"] == 35
            assert ds.attrs["trials_table"] == f"intervals/{table}"
            assert ds["counts"].values.sum() > 0
            assert "trial_RT" in ds or table == "encoding_table"
        aligned = load_session(real_nwb_path, trials_table="intervals/recognition_table", align="fixcross_time",
                               window=(0.0, 1.0), bin_width=0.02)
    assert aligned.sizes["time"] == 50 and aligned["mask"].values.all()
    # single-valued electrodes region without an index -> each unit's electrode location
    assert set(aligned["unit_location"].values.tolist()) == {"hippocampus_right", "amygdala_right"}
    assert aligned.attrs["source_identifier"] == "TWH103_CBID4"
    assert aligned.attrs["source_sha256"] == "1f6d811347d83d9693ce824bded9d73f5c88d8542e78069211da52381153f046"
    assert real_nwb_path.stat().st_mtime_ns == before


def test_real_file_overlapping_trials_counted_in_each(real_nwb_path):
    """recognition_table has 3 trials overlapping the next one; spikes in an overlap count in both trials."""
    import h5py

    with h5py.File(real_nwb_path, "r") as f:
        flat = f["units/spike_times"][()]
        index = f["units/spike_times_index"][()].astype(np.int64)
    spikes = np.split(flat, index[:-1])
    with pytest.warns(UserWarning, match="trial windows overlap"):
        ds = load_session(real_nwb_path, trials_table="recognition_table", bin_width=0.05)
    lengths = ds["mask"].values.sum(axis=1)
    for w, start in enumerate(ds["align_time"].values):
        edges = start + np.arange(lengths[w] + 1) * 0.05
        expected = np.stack([np.histogram(s, edges)[0] for s in spikes], axis=1)
        np.testing.assert_array_equal(ds["counts"].values[w, : lengths[w]], expected)


def test_real_file_filter_units_by_electrode_location(real_nwb_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        amygdala = load_session(real_nwb_path, trials_table="recognition_table", bin_width=0.1,
                                unit_filter="location==amygdala_right")
        everything = load_session(real_nwb_path, trials_table="recognition_table", bin_width=0.1)
    assert amygdala.sizes["unit"] == 10
    assert set(amygdala["unit_location"].values.tolist()) == {"amygdala_right"}
    np.testing.assert_array_equal(
        amygdala["counts"].values, everything["counts"].sel(unit=amygdala["unit"].values).values
    )


# --- remote reads that fail: retries with backoff, then one error naming the URL ------------------------------------

class _FlakyHandler(_RangeHandler):
    """A range server that misbehaves on chosen requests (numbered from 1 across all connections).

    plan: request number -> "cut" (headers for the whole range, half the body, then the connection is closed) or
    "503" (server busy); `fail_from` makes every request from that number on fail with `fail_how`.
    """

    plan: dict[int, str] = {}
    fail_from: int | None = None
    fail_how = "cut"
    count = 0
    actions: list[str] = []
    lock = threading.Lock()

    def do_GET(self) -> None:
        cls = type(self)
        with cls.lock:
            cls.count += 1
            number = cls.count
        action = cls.plan.get(number)
        if cls.fail_from is not None and number >= cls.fail_from:
            action = cls.fail_how
        cls.actions.append(action or "ok")
        if action == "503":
            self.send_error(503, "busy")
        elif action == "cut":
            self._cut()
        else:
            super().do_GET()

    def _cut(self) -> None:
        path = Path(self.translate_path(self.path))
        size = path.stat().st_size
        match = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
        start = int(match.group(1))
        stop = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
        with open(path, "rb") as handle:
            handle.seek(start)
            body = handle.read(stop - start + 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{stop}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True
        import socket

        self.connection.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def flaky_http(tmp_path, mock_counts, monkeypatch):
    """(URL of the mock session on a flaky server, the handler class to plan failures, recorded retry sleeps)."""
    import functools

    import nwb_ldns.data.opening as opening
    import nwb_ldns.data.remote as remote

    root = tmp_path / "www"
    root.mkdir()
    (root / "mock.nwb").write_bytes(mock_counts[0].read_bytes())
    handler = lambda *a, **k: _FlakyHandler(*a, directory=str(root), **k)  # noqa: E731
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    _FlakyHandler.plan, _FlakyHandler.fail_from, _FlakyHandler.fail_how = {}, None, "cut"
    _FlakyHandler.count, _FlakyHandler.actions = 0, []
    sleeps: list[float] = []
    monkeypatch.setattr(remote, "RETRY_DELAYS", (0.01, 0.02, 0.04))
    monkeypatch.setattr(remote, "_pause", sleeps.append)
    # small blocks, so that reading the session takes several range requests (the file is ~100 kB)
    monkeypatch.setattr(opening, "HTTPRangeFile", functools.partial(remote.HTTPRangeFile, block_size=16384))
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/mock.nwb", _FlakyHandler, sleeps
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("plan", [
    {2: "cut"},  # the first block after the size probe
    {3: "cut", 4: "cut", 6: "503"},  # two drops in a row, then a busy answer
    {1: "503", 2: "503"},  # busy on the very first request
], ids=["one-drop", "drops-and-503", "busy-at-start"])
def test_remote_read_retries_dropped_connections(flaky_http, mock_counts, plan):
    url, handler, sleeps = flaky_http
    handler.plan = dict(plan)
    remote = load_session(url)
    local = load_session(mock_counts[0])
    np.testing.assert_array_equal(remote["counts"].values, local["counts"].values)
    assert handler.actions.count("ok") >= 3, handler.actions
    assert [action for action in handler.actions if action != "ok"] == list(plan.values())  # every failure met
    # at least one backoff delay per failed request (on a loaded machine the local socket itself may drop a
    # connection now and then, which is retried the same way)
    assert len(sleeps) >= len(plan) and set(sleeps) <= {0.01, 0.02, 0.04}, sleeps


@pytest.mark.parametrize("how, fragment", [("cut", "connection failed mid-transfer"), ("503", "HTTP 503")])
@pytest.mark.parametrize("good", [1, 2, 3])
def test_remote_read_gives_up_with_one_error(flaky_http, how, fragment, good):
    """A server that fails every request after `good` good ones: retries with growing delays, then one error."""
    from nwb_ldns.errors import InputFileError

    url, handler, sleeps = flaky_http
    handler.fail_from, handler.fail_how = good + 1, how
    with pytest.raises(InputFileError) as raised:
        load_session(url)
    message = str(raised.value)
    assert message.startswith(f"cannot read {url} (bytes "), message  # ours, not wrapped in a pynwb error
    assert url in message and fragment in message and "on all 4 tries" in message, message
    assert "download the file and pass its local path" in message
    assert sleeps == [0.01, 0.02, 0.04]  # backoff: each delay longer than the last
    assert handler.actions[good:] == [how] * 4


def test_remote_read_failure_is_one_cli_error(flaky_http, monkeypatch):
    """The same through `nwb-ldns inspect`: exit code 2, one `Error:` line naming the URL, no traceback."""
    from click.testing import CliRunner

    from nwb_ldns.data import remote
    from nwb_ldns.cli.main import cli

    monkeypatch.setattr(remote, "_pause", lambda seconds: None)  # the delays are checked above; don't wait here
    monkeypatch.setattr(remote, "REQUEST_TIMEOUT", 3.0)  # a dropped connection on a busy machine: retried, not waited
    url, handler, _ = flaky_http
    handler.fail_from = 3
    result = CliRunner().invoke(cli, ["inspect", url])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and url in errors[0] and "tries" in errors[0], result.output
