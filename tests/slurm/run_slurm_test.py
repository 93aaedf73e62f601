"""The workflow on a real SLURM cluster: a single-node cluster on localhost (Debian's slurm-wlm and munge, CPU only,
no GPU gres), the tiny end-to-end run submitted through `snakemake --workflow-profile profiles/slurm`
(snakemake-executor-plugin-slurm), and its outputs compared with a local run's. Run it with `make test-slurm` (as
root); it exits 0 with a "SKIPPED:" line where slurm-wlm/munge cannot be installed or root is missing.

What is checked: every job of the workflow went through sbatch (SLURM's job completion log lists one COMPLETED job per
Snakemake job, under the run's job name, and the plugin kept an sbatch log per job); folds, windows and the submission
equal the local run's (scores to 1e-5); then detection over a nested archive of the tiny test recordings, split into
one shard per recording (detect.hours_per_job), runs each shard as its own sbatch job and gives the local run's
detections; the cluster is shut down afterwards, also on failure.

The cluster has no accounting database (slurmdbd), so `sacct` answers "accounting storage is disabled"; job status
comes from `squeue` instead (the plugin's --slurm-status-command squeue, with MinJobAge long enough for finished jobs
to stay listed), and finished jobs are read from jobcomp/filetxt.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from rfcx.constants import SPECIES_COLUMNS

REPO = Path(__file__).resolve().parents[2]
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol")
#: Where srun inside a job looks for the config: the jobstep plugin drops SLURM_CONF (every SLURM_* variable but the
#: job's identity) from the environment of the nested srun, so the test cluster's config must be at the default path.
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# written by rfcx tests/slurm/run_slurm_test.py; removed when the test ends"


def say(message: str) -> None:
    print(f"[test-slurm] {message}", flush=True)


def tiny_config() -> dict:
    """The tiny configuration of the end-to-end workflow test (one source of truth)."""
    spec = importlib.util.spec_from_file_location("rfcx_conftest", REPO / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TINY


def ensure_packages() -> str | None:
    """Install slurm-wlm and munge if missing; the reason they cannot be had, or None."""
    if all(shutil.which(tool) for tool in DAEMONS):
        return None
    if shutil.which("apt-get") is None:
        return "slurm-wlm/munge are not installed and apt-get is not available"
    prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if prefix is None:
        return "slurm-wlm/munge are not installed and installing them needs root"
    say("installing slurm-wlm and munge with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"]):
        result = subprocess.run(prefix + command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            return f"`{' '.join(command)}` failed: {(result.stderr or result.stdout).strip()[-500:]}"
    missing = [tool for tool in DAEMONS if not shutil.which(tool)]
    return f"still missing after apt-get: {', '.join(missing)}" if missing else None


def node_memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


class Cluster:
    """munged, slurmctld and slurmd of a one-node cluster, with every file under `root` (nothing in /etc)."""

    def __init__(self, root: Path, cpus: int, memory_mb: int):
        self.root, self.cpus, self.memory_mb = root, cpus, memory_mb
        self.node = socket.gethostname().split(".")[0]
        self.conf = SYSTEM_CONF
        self.jobcomp = root / "log" / "jobcomp.txt"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def write_config(self) -> None:
        for folder in ("munge", "state", "spool", "log"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        r = self.root
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        self.conf.write_text("\n".join([
            MARKER,
            "ClusterName=rfcxtest",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            "SlurmctldPort=16817", "SlurmdPort=16818",  # away from a system cluster's 6817/6818
            "SlurmUser=root", "SlurmdUser=root",
            "AuthType=auth/munge", f"AuthInfo=socket={r}/munge/munge.socket", "CredType=cred/munge",
            f"StateSaveLocation={r}/state", f"SlurmdSpoolDir={r}/spool/slurmd-%n",
            f"SlurmctldPidFile={r}/slurmctld.pid", f"SlurmdPidFile={r}/slurmd.pid",
            f"SlurmctldLogFile={r}/log/slurmctld.log", f"SlurmdLogFile={r}/log/slurmd.log",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",  # no cgroups needed (containers)
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory",
            "SchedulerType=sched/backfill", "MpiDefault=none", "ReturnToService=2",
            "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
            f"JobCompType=jobcomp/filetxt", f"JobCompLoc={self.jobcomp}",
            "MinJobAge=3600",  # finished jobs stay in squeue: the plugin's status source without slurmdbd
            # CPU only: no GresTypes/Gres, so a job asking for --gpus is refused
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))

    def start(self) -> None:
        self.write_config()
        r = self.root
        subprocess.run(["munged", "--force", f"--socket={r}/munge/munge.socket", f"--key-file={r}/munge/munge.key",
                        f"--log-file={r}/log/munged.log", f"--pid-file={r}/munge/munged.pid",
                        f"--seed-file={r}/munge/munged.seed"], check=True, env=self.env)
        subprocess.run(["slurmctld", "-i"], check=True, env=self.env)
        subprocess.run(["slurmd"], check=True, env=self.env)
        deadline = time.time() + 60
        while time.time() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=self.env).stdout
            if state.strip() == "idle":
                say(f"cluster up: node {self.node}, {self.cpus} CPUs, {self.memory_mb} MB, partition debug")
                return
            time.sleep(1)
        raise RuntimeError(f"the SLURM node did not become idle (sinfo: {state.strip()!r}); see {r}/log")

    def stop(self) -> None:
        subprocess.run(["scontrol", "shutdown"], capture_output=True, env=self.env)
        for pid_file in (self.root / "slurmd.pid", self.root / "slurmctld.pid"):
            wait_for_exit(pid_file)
        subprocess.run(["munged", "--stop", f"--socket={self.root}/munge/munge.socket"], capture_output=True)
        if self.conf.exists() and self.conf.read_text().startswith(MARKER):
            self.conf.unlink()
        say("cluster shut down")

    def completed_jobs(self) -> list[dict[str, str]]:
        """Finished jobs from the job completion log: one `key=value ...` line per job."""
        if not self.jobcomp.exists():
            return []
        return [dict(field.split("=", 1) for field in line.split() if "=" in field)
                for line in self.jobcomp.read_text().splitlines() if line.strip()]


def wait_for_exit(pid_file: Path, seconds: float = 20) -> None:
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().strip())
    except ValueError:
        return
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    os.kill(pid, 15)


def workflow_copy(folder: Path, config: dict) -> Path:
    folder.mkdir(parents=True)
    for item in ("Snakefile", "workflow", "rfcx", "profiles"):
        source = REPO / item
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / item,
                                                              **({"ignore": shutil.ignore_patterns("__pycache__")}
                                                                 if source.is_dir() else {}))
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def cluster_profile(folder: Path, cpus: int, memory_mb: int) -> tuple[Path, list[str]]:
    """profiles/slurm/config.yaml fitted to the test node: no GPU (no gres here), threads and memory capped to the
    node. Returns the profile folder and the list of changes, printed so the difference is in plain sight."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    changes = []
    for rule, threads in profile.get("set-threads", {}).items():
        if threads > cpus:
            profile["set-threads"][rule] = cpus
            changes.append(f"{rule}: threads {threads} -> {cpus}")
    for rule, resources in profile.get("set-resources", {}).items():
        if resources.get("gpu"):
            resources["gpu"] = 0
            changes.append(f"{rule}: gpu 1 -> 0 (CPU-only cluster)")
        if resources.get("mem_mb", 0) > memory_mb // 2:
            changes.append(f"{rule}: mem_mb {resources['mem_mb']} -> {memory_mb // 2}")
            resources["mem_mb"] = memory_mb // 2
    profile.update({"slurm-init-seconds-before-status-checks": 5, "slurm-status-command": "squeue",
                    "slurm-no-account": True, "retries": 0})
    changes.append("status via squeue (no slurmdbd), first status check after 5 s, no account, no retries")
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder, changes


def run(command: list[str], cwd: Path, env: dict, log: Path) -> float:
    start = time.time()
    with open(log, "w") as out:
        result = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.time() - start
    if result.returncode != 0:
        print(log.read_text()[-6000:])
        raise AssertionError(f"`{' '.join(command)}` failed (exit {result.returncode}) after {elapsed:.0f} s; "
                             f"log: {log}")
    return elapsed


def write_archive(run_folder: Path, archive: Path) -> dict:
    """A deployment tree of the tiny test recordings (two sites, repeated file names) and the config that detects
    on it in one shard per recording."""
    sources = sorted((run_folder / "data" / "synthetic" / "tiny-seed0" / "test").glob("*.flac"))
    names = ["A/0301/20240301_053000.flac", "B/0301/20240301_053000.flac", "A/0302/20240302_060000.flac",
             "B/0302/20240302_060000.flac"]
    for name, source in zip(names, sources):
        (archive / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, archive / name)
    return {"detect": {"input_dir": str(archive), "hours_per_job": 0.001, "min_score": 0.0}}


def compare_detections(local: Path, cluster: Path) -> list[str]:
    """Differences between the two runs' archive detections (scores to 1e-5)."""
    a, b = (pd.read_parquet(run / "results/detections/detections.parquet") for run in (local, cluster))
    if a.empty or not a.drop(columns="score").equals(b.drop(columns="score")):
        return [f"detections differ: {len(a)} local, {len(b)} on the cluster"]
    gap = float(np.abs(a.score - b.score).max())
    say(f"detections.parquet: {len(a)} detections, largest score difference {gap:.2e}")
    return [f"detection scores differ by up to {gap:.2e}"] if gap > 1e-5 else []


def compare_outputs(local: Path, cluster: Path) -> list[str]:
    """Differences between the two runs' results (empty: the same)."""
    problems = []
    for table in ("results/data/folds.parquet", "results/data/windows.parquet"):
        a, b = pd.read_parquet(local / table), pd.read_parquet(cluster / table)
        if not a.equals(b):
            problems.append(f"{table} differs")
    a, b = pd.read_csv(local / "results/submission.csv"), pd.read_csv(cluster / "results/submission.csv")
    if list(a.columns) != list(b.columns) or list(a.recording_id) != list(b.recording_id):
        problems.append("submission.csv: different rows or columns")
    else:
        gap = float(np.abs(a.iloc[:, 1:].to_numpy() - b.iloc[:, 1:].to_numpy()).max())
        say(f"submission.csv: largest score difference {gap:.2e}")
        if gap > 1e-5:
            problems.append(f"submission.csv: scores differ by up to {gap:.2e}")
    for fold_file in sorted((local / "results/oof").glob("*.parquet")):
        a, b = pd.read_parquet(fold_file), pd.read_parquet(cluster / "results/oof" / fold_file.name)
        scores = list(SPECIES_COLUMNS)
        gap = float(np.abs(a[scores].to_numpy() - b[scores].to_numpy()).max())
        if gap > 1e-5 or not a.drop(columns=scores).equals(b.drop(columns=scores)):
            problems.append(f"oof/{fold_file.name}: differs (scores by up to {gap:.2e})")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (cluster logs, both runs)")
    args = parser.parse_args()

    reason = ensure_packages()
    if reason:
        say(f"SKIPPED: {reason}")
        return 0
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        say("FAILED: snakemake-executor-plugin-slurm is not installed (pip install -r requirements-slurm.txt)")
        return 1

    if SYSTEM_CONF.exists() and not SYSTEM_CONF.read_text().startswith(MARKER):
        say(f"SKIPPED: {SYSTEM_CONF} exists: this machine has its own SLURM setup, which this test leaves alone "
            "(run the workflow there with --workflow-profile profiles/slurm instead)")
        return 0
    if os.geteuid() != 0:
        say("SKIPPED: starting slurmd and writing /etc/slurm/slurm.conf need root")
        return 0
    root = Path(tempfile.mkdtemp(prefix="rfcx-slurm-"))
    cpus, memory_mb = os.cpu_count() or 1, node_memory_mb() - 1024
    cluster = Cluster(root / "cluster", cpus, memory_mb)
    started = time.time()
    try:
        cluster.start()
        config = tiny_config()
        local = workflow_copy(root / "local", config)
        remote = workflow_copy(root / "slurm", config)
        profile, changes = cluster_profile(root / "profile", cpus, memory_mb)
        say("profiles/slurm adapted to the test node: " + "; ".join(changes))
        snakemake = [sys.executable, "-m", "snakemake"]

        seconds = run([*snakemake, "--workflow-profile", str(profile)], remote, cluster.env, root / "slurm.log")
        say(f"cluster run finished in {seconds:.0f} s")
        # each job on as many threads as on the cluster: a fold trained on another thread count rounds differently
        threads = yaml.safe_load((profile / "config.yaml").read_text())["set-threads"]
        same_threads = ["--set-threads", *(f"{rule}={count}" for rule, count in threads.items())]
        seconds = run([*snakemake, "--cores", str(cpus), *same_threads], local, os.environ.copy(), root / "local.log")
        say(f"local run finished in {seconds:.0f} s")

        failures = []
        jobs = cluster.completed_jobs()
        executed = [line for line in (root / "slurm.log").read_text().splitlines() if line.startswith("rule ")]
        submitted = [line for line in (root / "slurm.log").read_text().splitlines()
                     if "has been submitted with SLURM jobid" in line]
        logs = sorted((remote / ".snakemake" / "slurm_logs").rglob("*.log"))
        say(f"{len(executed)} Snakemake jobs, {len(submitted)} sbatch submissions, {len(jobs)} finished SLURM jobs "
            f"in the job completion log, {len(logs)} sbatch logs kept")
        states = {job.get("JobState") for job in jobs}
        names = {job.get("Name") for job in jobs}
        if not submitted or len(jobs) < len(submitted):
            failures.append(f"expected every submitted job ({len(submitted)}) in SLURM's completion log, "
                            f"found {len(jobs)}")
        if states != {"COMPLETED"}:
            failures.append(f"SLURM job states: {states}")
        if len(names) != 1:
            failures.append(f"jobs of more than one run: {names}")
        trained = [job for job in logs if "rule_train" in str(job)]
        if len(trained) != config["folds"]["n_folds"]:
            failures.append(f"expected one sbatch job per fold's training, found {len(trained)}")
        queue = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i %j %T"], capture_output=True,
                               text=True, env=cluster.env).stdout
        say(f"squeue --states=all:\n{queue.rstrip()}")
        sacct = subprocess.run(["sacct", "-X", "-n"], capture_output=True, text=True, env=cluster.env)
        say(f"sacct (no slurmdbd here): {(sacct.stdout + sacct.stderr).strip()}")

        failures += compare_outputs(local, remote)

        # detection over an archive, one shard per recording: each shard its own sbatch job
        detect = write_archive(remote, root / "archive")
        for folder in (remote, local):
            (folder / "detect.yaml").write_text(yaml.safe_dump(detect))
        configs = ["--configfile", "config.yaml", "detect.yaml"]
        seconds = run([*snakemake, "--workflow-profile", str(profile), *configs], remote, cluster.env,
                      root / "slurm_detect.log")
        say(f"cluster detection finished in {seconds:.0f} s")
        run([*snakemake, "--cores", str(cpus), *same_threads, *configs], local, os.environ.copy(),
            root / "local_detect.log")
        shard_jobs = sorted((remote / ".snakemake" / "slurm_logs" / "rule_detect_shard").rglob("*.log"))
        planned = (root / "slurm_detect.log").read_text().count("rule detect_shard:")
        say(f"{planned} detection shards planned, {len(shard_jobs)} sbatch logs of detect_shard jobs")
        if planned < 3 or len(shard_jobs) != planned:
            failures.append(f"expected each of the >= 3 shards ({planned}) as its own sbatch job, found "
                            f"{len(shard_jobs)}")
        if len(cluster.completed_jobs()) < len(jobs) + planned:
            failures.append("the detection shards are not all in SLURM's completion log")
        failures += compare_detections(local, remote)
        if failures:
            for failure in failures:
                say(f"FAILED: {failure}")
            return 1
        say(f"PASSED in {time.time() - started:.0f} s: the workflow ran through SLURM and matches the local run")
        return 0
    finally:
        cluster.stop()
        if args.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
