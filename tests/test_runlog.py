"""rfcx.runlog.logged: a job's output goes to its log, its thread pools follow the cores Snakemake gave it."""

from __future__ import annotations

import os

import pytest

from rfcx.runlog import logged

THREAD_VARIABLES = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "TF_NUM_INTEROP_THREADS")


@pytest.mark.parametrize(("threads", "inter_op"), [(1, "1"), (2, "2"), (8, "2")])
def test_a_job_uses_its_cores_with_two_inter_op_threads_from_two_cores_up(tmp_path, monkeypatch, threads, inter_op):
    for variable in THREAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    with logged(tmp_path / "job.log", threads=threads):
        print("inside the job")
    assert {variable: os.environ[variable] for variable in THREAD_VARIABLES} == {
        "OMP_NUM_THREADS": str(threads), "TF_NUM_INTRAOP_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": inter_op}
    assert (tmp_path / "job.log").read_text() == "inside the job\n"


def test_a_failing_job_keeps_its_traceback_in_the_log_and_names_the_log_on_the_console(tmp_path, capfd):
    with pytest.raises(ValueError, match="bad row"), logged(tmp_path / "logs" / "job.log"):
        raise ValueError("bad row")
    assert "Traceback" in (tmp_path / "logs" / "job.log").read_text()
    console = capfd.readouterr().err  # written to sys.__stderr__, past redirect_stderr
    assert "ValueError: bad row" in console and str(tmp_path / "logs" / "job.log") in console
