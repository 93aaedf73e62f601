"""rfcx.pipeline.runlog.logged: a job's output goes to its log, its thread pools follow the cores Snakemake gave it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rfcx.pipeline.runlog import logged

THREAD_VARIABLES = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "TF_NUM_INTEROP_THREADS")


@pytest.mark.parametrize(("threads", "onednn", "inter_op"), [
    (1, None, "1"), (2, None, "1"), (8, "1", "1"), (2, "0", "2"), (8, "false", "2"), (1, "0", "1")])
def test_a_job_uses_its_cores_with_two_inter_op_threads_only_without_onednn(tmp_path, monkeypatch, threads, onednn,
                                                                           inter_op):
    for variable in THREAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    if onednn is None:  # rfcx/__init__.py's default
        monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    else:
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", onednn)
    with logged(tmp_path / "job.log", threads=threads):
        print("inside the job")
    assert {variable: os.environ[variable] for variable in THREAD_VARIABLES} == {
        "OMP_NUM_THREADS": str(threads), "TF_NUM_INTRAOP_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": inter_op}
    assert (tmp_path / "job.log").read_text() == "inside the job\n"


def test_importing_rfcx_turns_onednn_on_unless_the_user_chose() -> None:
    probe = "import os, rfcx; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    assert subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "1"
    assert subprocess.run([sys.executable, "-c", probe], env={**env, "TF_ENABLE_ONEDNN_OPTS": "0"},
                          capture_output=True, text=True, check=True).stdout.strip() == "0"


def test_a_failing_job_keeps_its_traceback_in_the_log_and_names_the_log_on_the_console(tmp_path, capfd):
    with pytest.raises(ValueError, match="bad row"), logged(tmp_path / "logs" / "job.log"):
        raise ValueError("bad row")
    assert "Traceback" in (tmp_path / "logs" / "job.log").read_text()
    console = capfd.readouterr().err  # written to sys.__stderr__, past redirect_stderr
    assert "ValueError: bad row" in console and str(tmp_path / "logs" / "job.log") in console


def test_model_jobs_take_half_the_cores_on_cpus_so_two_run_side_by_side_and_their_own_count_with_a_gpu() -> None:
    from rfcx.pipeline.threads import model_job_threads

    assert [model_job_threads(cores, 0, gpu_threads=8) for cores in (1, 2, 3, 8)] == [1, 1, 1, 4]
    assert model_job_threads(2, 1, gpu_threads=8) == 8  # Snakemake caps it at --cores


def test_folds_train_in_pairs_on_half_the_cores_and_an_odd_last_fold_on_all_of_them() -> None:
    from rfcx.pipeline.threads import training_threads

    assert [training_threads(2, 0, 8, fold, 3) for fold in range(3)] == [1, 1, 2]
    assert [training_threads(8, 0, 8, fold, 5) for fold in range(5)] == [4, 4, 4, 4, 8]
    assert [training_threads(8, 0, 8, fold, 4) for fold in range(4)] == [4, 4, 4, 4]
    assert [training_threads(2, 1, 8, fold, 3) for fold in range(3)] == [8, 8, 8]
