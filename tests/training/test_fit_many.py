"""Many sessions (issue 11, part 2): `fit SESSION... --out-dir DIR --jobs J`, the executor entry point
(`nwb_ldns.batch.fit_sessions`), the SLURM array recipe, `convert willett --jobs` and the option errors."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import pytest
import torch
from click.testing import CliRunner

from nwb_ldns.batch import Task, exit_code, fit_sessions, run_tasks, summary_table
from nwb_ldns.model_dir import LDNSModel
from nwb_ldns.testing import write_mock_session
from nwb_ldns.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
FIT_ARGS = ["--preset", "tiny", "--epochs", "2", "--seed", "3"]  # 2 epochs: the first is the LR warm-up
FIT_OPTIONS = {"preset": "tiny", "overrides": {"autoencoder.epochs": 2, "diffusion.epochs": 2, "seed": 3}}
WEIGHTS = ("autoencoder.safetensors", "denoiser.safetensors")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def digests(model_dir: Path) -> dict[str, str]:
    return {name: hashlib.sha256((model_dir / name).read_bytes()).hexdigest() for name in WEIGHTS}


@pytest.fixture(scope="module")
def sessions(tmp_path_factory) -> Path:
    """a.nwb and c.nwb (different data) and broken.nwb (a session cut off after 3000 bytes)."""
    root = tmp_path_factory.mktemp("many")
    write_mock_session(root / "a.nwb", seed=0)
    write_mock_session(root / "c.nwb", seed=1)
    write_mock_session(root / "whole.nwb", seed=2)
    (root / "broken.nwb").write_bytes((root / "whole.nwb").read_bytes()[:3000])
    (root / "whole.nwb").unlink()
    return root


@pytest.fixture(scope="module")
def jobs_run(sessions):
    """`fit a.nwb broken.nwb c.nwb --out-dir out --jobs 2` (run once for the tests that read its result)."""
    out = sessions / "out"
    result = invoke("fit", sessions / "a.nwb", sessions / "broken.nwb", sessions / "c.nwb", "--out-dir", out,
                    "--jobs", "2", *FIT_ARGS)
    return result, out


def test_jobs_fit_one_model_per_session_and_report_the_broken_one(sessions, jobs_run):
    result, out = jobs_run
    shown = f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.exit_code == 2, shown  # the only failure is an input error
    assert sorted(p.name for p in out.iterdir()) == ["a.ldns", "c.ldns"], shown  # no broken.ldns, no .partial
    assert not [p for p in out.rglob("*") if ".partial" in p.name]
    models = {name: LDNSModel.load(out / f"{name}.ldns") for name in ("a", "c")}
    for name, model in models.items():  # each model was trained on its own session
        assert model.data["source"]["source_path"].endswith(f"{name}.nwb")
    assert digests(out / "a.ldns")["autoencoder.safetensors"] != digests(out / "c.ldns")["autoencoder.safetensors"]

    table = result.stdout.splitlines()
    assert table[0].split()[:2] == ["session", "status"]
    rows = {Path(line.split()[0]).name: line for line in table[1:4]}
    assert rows["a.nwb"].split()[1:3] == ["ok", str(out / "a.ldns")]
    assert rows["c.nwb"].split()[1:3] == ["ok", str(out / "c.ldns")]
    assert rows["broken.nwb"].split()[1:3] == ["failed", "-"]
    assert "truncated or corrupt: download or copy it again" in rows["broken.nwb"]  # the error with its fix
    assert table[4].startswith("2 of 3 sessions ok, 1 failed")
    assert "Traceback" not in result.output
    # one progress line per session and stage in the parent (a CliRunner stream is not a terminal)
    assert "a.nwb: started" in result.stderr and "c.nwb: diffusion epoch 1/2" in result.stderr, shown


def test_executor_entry_point_gives_the_models_of_jobs(sessions, jobs_run):
    """A caller's executor (here a thread pool) runs the same tasks: same seed -> byte-identical weights."""
    _, out = jobs_run
    threads = torch.get_num_threads()
    with ThreadPoolExecutor(max_workers=1) as executor:  # --jobs 2 gave each worker cpu_count // 2 threads
        outcomes = fit_sessions([sessions / "a.nwb", sessions / "c.nwb"], sessions / "executor", executor=executor,
                                fit_options=FIT_OPTIONS, progress=False,
                                torch_threads=max(1, (os.cpu_count() or 1) // 2))
    torch.set_num_threads(threads)
    assert [o.status for o in outcomes] == ["ok", "ok"], summary_table(outcomes)
    assert exit_code(outcomes) == 0
    for name in ("a", "c"):
        assert outcomes[["a", "c"].index(name)].output == str(sessions / "executor" / f"{name}.ldns")
        assert digests(sessions / "executor" / f"{name}.ldns") == digests(out / f"{name}.ldns")


def test_slurm_array_recipe_runs_without_slurm(sessions, jobs_run, tmp_path):
    _, out = jobs_run
    listing = tmp_path / "sessions.txt"
    listing.write_text(f"{sessions / 'a.nwb'}\n{sessions / 'c.nwb'}\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "SLURM_ARRAY_TASK_ID": "2", "SLURM_CPUS_PER_TASK": str(max(1, (os.cpu_count() or 1) // 2))}  # as --jobs 2
    script = ROOT / "examples" / "slurm_array.sh"
    done = subprocess.run(["bash", str(script), str(listing), str(tmp_path / "models"), *FIT_ARGS], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["c.ldns"]  # line 2 only
    assert digests(tmp_path / "models" / "c.ldns") == digests(out / "c.ldns")
    env.pop("SLURM_ARRAY_TASK_ID")
    unset = subprocess.run(["bash", str(script), str(listing), str(tmp_path / "models")], env=env,
                           capture_output=True, text=True, timeout=60)
    assert unset.returncode != 0 and "SLURM_ARRAY_TASK_ID" in unset.stderr
    beyond = subprocess.run(["bash", str(script), str(listing), str(tmp_path / "models")],
                            env={**env, "SLURM_ARRAY_TASK_ID": "3"}, capture_output=True, text=True, timeout=60)
    assert beyond.returncode == 2 and "no line 3" in beyond.stderr


def test_executor_example_script(sessions, tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "fit_many_executor.py"), str(sessions / "c.nwb"),
                           str(sessions / "broken.nwb"), "--out-dir", str(tmp_path / "m"), "--workers", "2",
                           "--preset", "tiny", "--epochs", "1"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "c.nwb" in done.stdout and "1 of 2 sessions ok, 1 failed" in done.stdout
    LDNSModel.load(tmp_path / "m" / "c.ldns")
    assert not (tmp_path / "m" / "broken.ldns").exists()


def test_runner_keeps_going_and_sorts_failures(tmp_path):
    """A user error, a bug and a success in one process: every task runs; exit 1 because of the bug."""
    from fit_many_helpers import bug_task, ok_task, user_error_task

    tasks = [Task("u", "u.out", user_error_task), Task("b", "b.out", bug_task), Task("o", "o.out", ok_task)]
    outcomes = run_tasks(tasks, progress=False)
    assert [o.status for o in outcomes] == ["failed", "failed", "ok"]
    assert outcomes[0].user_error and outcomes[0].error.startswith("the session has no Units table; add one")
    assert not outcomes[1].user_error and outcomes[1].error == "RuntimeError: something we did not expect"
    assert "Traceback" in outcomes[1].traceback
    assert exit_code(outcomes) == 1 and exit_code(outcomes[::2]) == 2 and exit_code(outcomes[2:]) == 0
    assert "(1 unexpected: a bug to report" in summary_table(outcomes)


def test_a_killed_worker_fails_its_session_and_the_rest_still_run():
    from fit_many_helpers import dying_task, ok_task

    tasks = [Task("dies", "d", dying_task), Task("slow", "s", ok_task, {"seconds": 1.0}),
             Task("later", "l", ok_task), Task("last", "x", ok_task)]
    outcomes = run_tasks(tasks, jobs=2, progress=False)
    assert outcomes[0].status == "failed" and "worker process died" in outcomes[0].error
    assert not outcomes[0].user_error and exit_code(outcomes) == 1
    assert outcomes[3].status == "ok"  # not started when the pool broke: rerun in a fresh pool


def test_convert_willett_jobs(tmp_path):
    from tests.convert.helpers import write_competition_mat

    root = tmp_path / "competitionData"
    write_competition_mat(root / "train" / "t12.2022.04.28.mat", [30, 20], ["a b", "c"], [1, 1], seed=1)
    write_competition_mat(root / "test" / "t12.2022.04.28.mat", [25], ["d"], [2], seed=2)
    write_competition_mat(root / "train" / "t12.2022.05.05.mat", [40], ["e f"], [1], seed=3)
    (root / "train" / "t12.2022.06.01.mat").write_bytes(b"MATLAB 5.0 MAT-file, then garbage" + b"\x00" * 200)
    result = invoke("convert", "willett", root, tmp_path / "out", "--jobs", "2", "--quiet")
    assert result.exit_code == 2, result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["sub-T12_ses-t12-2022-04-28_ecephys.nwb", "sub-T12_ses-t12-2022-05-05_ecephys.nwb"]
    lines = result.stdout.splitlines()
    assert "t12.2022.06.01  failed" in lines[3] and "re-extract it from competitionData.tar.gz" in lines[3]
    assert lines[-1].startswith("2 of 3 sessions ok, 1 failed")

    shutil.move(root / "train" / "t12.2022.06.01.mat", tmp_path / "removed.mat")  # the same, one at a time
    assert invoke("convert", "willett", root, tmp_path / "one", "--quiet").exit_code == 0
    for name in written:
        with h5py.File(tmp_path / "out" / name) as parallel, h5py.File(tmp_path / "one" / name) as serial:
            assert (parallel["processing/ecephys/tx1/data"][:] == serial["processing/ecephys/tx1/data"][:]).all()
            assert list(parallel["intervals/trials/sentence"][:]) == list(serial["intervals/trials/sentence"][:])


@pytest.mark.parametrize("extra, fragment", [
    (["--out", "one.ldns", "--out-dir", "models"], "--out and --out-dir exclude each other"),
    (["--jobs", "2"], "needs --out-dir"),
    (["--out-dir", "models", "--dry-run"], "run it on one session without --out-dir"),
    (["--out-dir", "models", "--jobs", "0"], "x>=1"),
])
def test_option_errors(sessions, tmp_path, extra, fragment, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("fit", sessions / "a.nwb", sessions / "c.nwb", *extra)
    assert result.exit_code == 2 and fragment in result.output, result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_same_named_sessions_and_a_file_as_out_dir_are_refused(sessions, tmp_path):
    (tmp_path / "sub").mkdir()
    shutil.copy(sessions / "a.nwb", tmp_path / "sub" / "a.nwb")
    twice = invoke("fit", sessions / "a.nwb", tmp_path / "sub" / "a.nwb", "--out-dir", tmp_path / "models")
    assert twice.exit_code == 2 and "would write" in twice.stderr and not (tmp_path / "models").exists()
    (tmp_path / "file").write_text("x")
    as_file = invoke("fit", sessions / "a.nwb", "--out-dir", tmp_path / "file")
    assert as_file.exit_code == 2 and "Error:" in as_file.stderr and "Traceback" not in as_file.output


def test_every_session_failing_leaves_no_out_dir(sessions, tmp_path):
    result = invoke("fit", sessions / "broken.nwb", "--out-dir", tmp_path / "models", "--quiet")
    assert result.exit_code == 2, result.output
    assert result.stdout.splitlines()[-1].startswith("0 of 1 sessions ok, 1 failed")
    assert not (tmp_path / "models").exists()
