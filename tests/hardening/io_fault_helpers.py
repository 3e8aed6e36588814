"""Helpers for the I/O fault tests: damaged inputs built by hand, and a worker that runs commands on small tmpfs.

Run as a script inside `unshare -rm` (a private mount namespace, where mounting a tmpfs is allowed), the worker
mounts a fresh tmpfs per case (read-only, or small enough that the output fills it), runs the CLI in process
(one torch import for every case), lists what is left on the tmpfs, unmounts it and prints one JSON line per case.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def corrupt_spike_chunk(source: Path, target: Path, chunk: int = 2) -> str:
    """Copy an NWB file with units/spike_times rewritten chunked + gzip, then overwrite one chunk's bytes on disk.

    Returns the damaged dataset's HDF5 path. The chunk's file offset comes from HDF5 itself (get_chunk_info), so
    only compressed bytes of that chunk change: the file still opens, and the read of that chunk fails.
    """
    import h5py

    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as handle:
        old = handle["units/spike_times"]
        data, attrs = old[...], dict(old.attrs)
        del handle["units/spike_times"]
        new = handle["units"].create_dataset("spike_times", data=data, chunks=(max(len(data) // 8, 1),),
                                             compression="gzip")
        for key, value in attrs.items():
            new.attrs[key] = value
        handle["units/spike_times_index"].attrs["target"] = new.ref  # the index points at the new dataset
        info = new.id.get_chunk_info(chunk)
        name = new.name
    with open(target, "r+b") as raw:
        raw.seek(info.byte_offset)
        raw.write(b"\xff" * info.size)
    return name


def pickle_payload(marker: Path) -> bytes:
    """Protocol-0 pickle bytes whose unpickling calls builtins.open(marker, "w"), creating the marker file.

    Written by hand (opcodes GLOBAL, MARK, STRING, TUPLE, REDUCE, STOP) so the test never unpickles anything.
    """
    path = str(marker).replace("\\", "\\\\").replace("'", "\\'")
    return f"cbuiltins\nopen\n(S'{path}'\nS'w'\ntR.".encode()


def make_pickle_store(source: Path, target: Path, marker: Path, dataset: str = "units/spike_times",
                      codec: str = "pickle") -> None:
    """Copy a Zarr NWB store and make `dataset` use `codec` as its only filter, its one chunk the pickle payload.

    Both places hdmf-zarr and zarr read array metadata from are changed: the array's .zarray and the consolidated
    .zmetadata.
    """
    shutil.copytree(source, target)
    array = target / dataset
    meta = json.loads((array / ".zarray").read_text())
    meta.update(compressor=None, filters=[{"id": codec, "protocol": 2}], chunks=meta["shape"])
    (array / ".zarray").write_text(json.dumps(meta))
    for chunk in array.iterdir():
        if not chunk.name.startswith("."):
            chunk.unlink()
    (array / "0").write_bytes(pickle_payload(marker))
    consolidated = target / ".zmetadata"
    if consolidated.exists():
        whole = json.loads(consolidated.read_text())
        whole["metadata"][f"{dataset}/.zarray"] = meta
        consolidated.write_text(json.dumps(whole))


def unshare_available(scratch: Path) -> str | None:
    """None when `unshare -rm` may mount a tmpfs here, else the reason it may not (for pytest.skip)."""
    if shutil.which("unshare") is None:
        return "the unshare command is not installed"
    point = scratch / "probe"
    point.mkdir(exist_ok=True)
    try:
        done = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs '{point}'"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unshare failed: {error}"
    if done.returncode != 0:
        return f"unshare -rm cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}"
    return None


def run_cases(cases: list[dict], timeout: float = 600) -> tuple[subprocess.CompletedProcess, dict[str, dict]]:
    """Run the worker (this file) in a private mount namespace; return the process and case id -> result."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", TQDM_DISABLE="1", OMP_NUM_THREADS="1")
    done = subprocess.run(["unshare", "-rm", sys.executable, __file__], input=json.dumps(cases),
                          capture_output=True, text=True, timeout=timeout, env=env)
    results = {}
    for line in done.stdout.splitlines():
        if line.startswith("CASE "):
            result = json.loads(line[len("CASE "):])
            results[result["id"]] = result
    return done, results


def _left_on(mount: Path) -> list[str]:
    return sorted(str(path.relative_to(mount)) for path in mount.rglob("*"))


def _run_case(case: dict) -> dict:
    """Mount, run `nwb-ldns ARGS` in process, list what is left, unmount."""
    from click.testing import CliRunner

    from nwb_ldns.cli.main import cli

    mount = Path(case["mount"])
    options = "ro" if case["mode"] == "ro" else f"size={case['size']}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], check=True)
    try:
        result = CliRunner().invoke(cli, case["args"])
        return {"id": case["id"], "exit_code": result.exit_code, "stderr": result.stderr, "stdout": result.stdout,
                "exception": repr(result.exception), "left": _left_on(mount)}
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def main() -> None:
    """Read the cases (JSON list on stdin), print `CASE {json}` per case."""
    import torch

    torch.set_num_threads(1)
    for case in json.loads(sys.stdin.read()):
        print("CASE " + json.dumps(_run_case(case)), flush=True)


if __name__ == "__main__":
    main()
