"""The Snakemake workflow for real, end to end on the tiny synthetic dataset in a temporary folder: every output,
a valid submission, nothing to do on a second call, the right stages re-run after a change, and bad data stopping
the run at validation without touching earlier results."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import TINY, snakemake, workflow_copy
from rfcx.cli import main
from rfcx.constants import SUBMISSION_COLUMNS

REPO = Path(__file__).resolve().parents[1]
OUTPUTS = [
    "results/submission.csv", "results/scores/oof.json", "results/scores/test.json",
    "results/scores/oof_per_fold.csv", "results/report/oof_per_species.png", "results/report/training_curves.png",
    "results/report/augmentations.png", "results/report/submission_preview.csv", "results/summary.txt",
    "results/models/fold0/model.keras", "results/models/fold1/history.csv", "results/oof/fold1.parquet",
    "results/oof/fold0_recordings.parquet",
    "results/test/fold0_windows.parquet", "results/data/folds.parquet", "results/data/windows.parquet",
    "results/data/waveforms.npy", "results/logs/train/fold0.log",
]
#: Every rule of a run with the optional stages (calibration, pseudo-labels, detection) off.
PLAIN_RULES = {"synth", "validate", "split_folds", "crop_windows", "cache_waveforms", "train", "predict_oof",
               "predict_oof_recordings",
               "score_oof", "predict_test", "ensemble", "plot_training", "plot_augmentations", "summarise", "all"}


def planned_rules(workdir: Path, change: dict | None = None, *extra: str) -> set[str]:
    """Rules a dry run would execute, optionally with config `change` laid over config.yaml (and `extra` arguments,
    e.g. --forceall for the whole plan)."""
    args = [*extra]
    if change:
        (workdir / "change.yaml").write_text(yaml.safe_dump(change))
        args += ["--configfile", "config.yaml", "change.yaml"]
    out = snakemake(workdir, "-n", "--quiet", "rules", *args).stdout
    if "Job stats:" not in out:
        return set()
    rules = set()
    for line in out.split("Job stats:", 1)[1].splitlines()[3:]:  # skip the header and its underline
        if not line.strip() or line.split()[0] == "total":
            break
        rules.add(line.split()[0])
    return rules


def copy_of_run(finished_run: Path, destination: Path, change: dict) -> Path:
    """A copy of a finished run (code, results and Snakemake's records, times kept) whose config.yaml has `change`
    laid over it, so a test can take it further without disturbing the other tests' run."""
    shutil.copytree(finished_run, destination, symlinks=True)
    config = yaml.safe_load((destination / "config.yaml").read_text())
    (destination / "config.yaml").write_text(yaml.safe_dump({**config, **change}))
    return destination


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A copy of the workflow run to the end on the tiny dataset."""
    workdir = workflow_copy(tmp_path_factory.mktemp("workflow"), TINY)
    trace = workdir / "import_trace"
    trace.mkdir()
    snakemake(workdir, env={"RFCX_IMPORT_TRACE": str(trace),
                            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "tests" / "import_trace"),
                                                                        os.environ.get("PYTHONPATH")]))})
    return workdir


def test_the_workflow_makes_every_output_and_a_valid_submission(finished_run: Path) -> None:
    for output in OUTPUTS:
        assert (finished_run / output).exists(), output
    data = finished_run / "data" / "synthetic" / "tiny-seed0"
    submission = pd.read_csv(finished_run / "results/submission.csv")
    sample = pd.read_csv(data / "sample_submission.csv")
    assert tuple(submission.columns) == SUBMISSION_COLUMNS
    assert list(submission.recording_id) == list(sample.recording_id)
    assert submission.iloc[:, 1:].notna().all().all()
    oof = json.loads((finished_run / "results/scores/oof.json").read_text())
    test = json.loads((finished_run / "results/scores/test.json").read_text())["test"]
    assert 0 < oof["lwlrap"] <= 1 and set(oof["per_fold"]) == {"0", "1"}
    assert 0 < test["lwlrap"] <= 1 and test["n"] == len(sample)
    assert "OOF LWLRAP" in (finished_run / "results/summary.txt").read_text()


def test_a_second_call_has_nothing_to_do(finished_run: Path) -> None:
    result = snakemake(finished_run)
    assert "Nothing to be done" in result.stdout + result.stderr


def test_a_moved_project_folder_has_nothing_to_do(finished_run: Path, tmp_path) -> None:
    """Renaming or moving the folder of a finished run (code and results together) must not retrain anything: the
    code inputs are recorded relative to it."""
    moved = copy_of_run(finished_run, tmp_path / "renamed", {})
    result = snakemake(moved, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_changing_a_training_parameter_reruns_training_and_what_follows_only(finished_run: Path) -> None:
    rules = planned_rules(finished_run, {"train": {**TINY["train"], "learning_rate": 0.0005}})
    assert {"train", "predict_oof", "predict_test", "score_oof", "ensemble"} <= rules
    assert not rules & {"synth", "validate", "split_folds", "crop_windows", "cache_waveforms"}


def test_changing_the_window_length_reruns_from_the_windows_on(finished_run: Path) -> None:
    rules = planned_rules(finished_run, {"windows": {"window_seconds": 8.0}})
    assert {"crop_windows", "cache_waveforms", "train", "predict_oof", "predict_test", "ensemble"} <= rules
    assert not rules & {"synth", "validate", "split_folds"}


def test_changing_the_test_hop_rescores_whole_recordings_without_retraining(finished_run: Path) -> None:
    rules = planned_rules(finished_run, {"predict": {**TINY["predict"], "hop_seconds": 2.0}})
    assert rules == {"predict_oof_recordings", "predict_test", "score_oof", "ensemble", "summarise", "all"}
    rules = planned_rules(finished_run, {"predict": {**TINY["predict"], "oof_recordings": False}})
    assert rules == {"score_oof", "summarise", "all"}


def test_held_out_train_recordings_are_scored_whole_against_their_tp_species(finished_run: Path) -> None:
    """The recording-level OOF score, recomputed here from the per-recording scores and train_tp.csv alone: every
    train recording once, in the fold that held it out, max-pooled like the test recordings."""
    from rfcx.model.metrics import lwlrap

    data = finished_run / "data" / "synthetic" / "tiny-seed0"
    folds = pd.read_parquet(finished_run / "results/data/folds.parquet")
    scored = pd.concat([pd.read_parquet(finished_run / f"results/oof/fold{fold}_recordings.parquet")
                        for fold in (0, 1)], ignore_index=True)
    assert sorted(scored.recording_id) == sorted(folds.recording_id)
    assert (folds.set_index("recording_id").fold.loc[scored.recording_id].to_numpy() == scored.fold.to_numpy()).all()
    tp = pd.read_csv(data / "train_tp.csv")
    for row in scored.itertuples():
        present = set(tp.species_id[tp.recording_id == row.recording_id])
        assert {s for s in range(24) if getattr(row, f"t{s}") == 1} == present
    oof = json.loads((finished_run / "results/scores/oof.json").read_text())
    truth, scores = scored[[f"t{s}" for s in range(24)]].to_numpy(), scored[[f"s{s}" for s in range(24)]].to_numpy()
    assert oof["recordings"]["lwlrap"] == pytest.approx(lwlrap(truth, scores), abs=1e-12)
    assert oof["recordings"]["n"] == len(folds) and set(oof["recordings"]["per_fold"]) == {"0", "1"}
    table = pd.read_csv(finished_run / "results/scores/oof_per_fold.csv")
    assert table.recording_lwlrap.iloc[-1] == pytest.approx(oof["recordings"]["lwlrap"])
    summary = (finished_run / "results/summary.txt").read_text()
    assert f"OOF LWLRAP, whole recordings: {oof['recordings']['lwlrap']:.4f}" in summary


def test_every_rule_lists_as_inputs_the_rfcx_code_its_script_imported(finished_run: Path) -> None:
    """The run's scripts recorded the rfcx modules they really imported (tests/import_trace); each rule's inputs
    (Snakemake's own summary) hold every one of them, as rfcx.pipeline.codedeps derives them from the imports."""
    from rfcx.pipeline.codedeps import module_file, reached_modules

    imported = {path.stem: set(path.read_text().split()) for path in (finished_run / "import_trace").glob("*.txt")}
    assert {"validate", "train", "predict_oof", "predict_test", "score_oof", "ensemble", "summarise"} <= set(imported)
    assert "rfcx.model.backbones" in imported["train"] and "rfcx.pipeline.stages" in imported["train"]
    summary = snakemake(finished_run, "--detailed-summary").stdout.splitlines()
    header = summary[0].split("\t")
    inputs_of = {}
    for line in summary[1:]:
        row = dict(zip(header, line.split("\t")))
        inputs_of.setdefault(row["rule"], set()).update(row["input-file(s)"].split(","))
    assert "rfcx/model/backbones.py" in inputs_of["train"] and "rfcx/pipeline/stages.py" in inputs_of["score_oof"]
    for script, modules in imported.items():
        reached = reached_modules(REPO / "workflow" / "scripts" / f"{script}.py")
        assert modules <= reached, (script, modules - reached)
        for rule in {script} | ({"score_probe_oof"} if script == "score_oof" else set()):
            if rule not in inputs_of:
                continue
            files = {str(module_file(name).relative_to(REPO)) for name in modules}
            assert files <= inputs_of[rule], (rule, files - inputs_of[rule])


def test_editing_a_script_or_the_model_code_reruns_its_rule(finished_run: Path) -> None:
    script = finished_run / "workflow" / "scripts" / "score_oof.py"
    script.write_text(script.read_text() + "\n# edited\n")
    assert planned_rules(finished_run) == {"score_oof", "summarise", "all"}
    snakemake(finished_run)  # bring it up to date again
    model_code = finished_run / "rfcx" / "model" / "detector.py"
    model_code.write_text(model_code.read_text() + "\n# edited\n")
    rules = planned_rules(finished_run)
    assert "train" in rules and not rules & {"split_folds", "crop_windows", "cache_waveforms"}
    model_code.write_text(model_code.read_text().removesuffix("\n# edited\n"))
    snakemake(finished_run, "--touch")
    # any module a script reaches, however indirectly: the backbones (through the model) re-run the model's rules
    # and what follows them, the stages hub every rule that calls it, and a module that no rule of this run (the
    # CNN alone) reaches nothing
    data_rules = {"synth", "validate", "split_folds", "crop_windows", "cache_waveforms"}
    for module, expected, spared in (
            ("model/backbones", {"train", "predict_oof", "predict_oof_recordings", "predict_test"}, data_rules),
            ("pipeline/stages", PLAIN_RULES - {"synth", "all"}, {"synth"}), ("model/embedding", set(), PLAIN_RULES)):
        source = finished_run / "rfcx" / f"{module}.py"
        original = source.read_text()
        source.write_text(original + "\n# edited\n")
        rules = planned_rules(finished_run)
        source.write_text(original)
        snakemake(finished_run, "--touch")
        assert expected <= rules and not rules & spared, (module, rules)


def test_a_run_into_another_results_dir_leaves_the_first_runs_logs_alone(finished_run: Path) -> None:
    before = tree_digest(finished_run / "results" / "logs")
    assert "train/fold0.log" in before
    (finished_run / "other.yaml").write_text(yaml.safe_dump({"results_dir": "other"}))
    try:
        snakemake(finished_run, "other/data/windows.parquet", "--configfile", "config.yaml", "other.yaml")
        assert (finished_run / "other" / "logs" / "crop_windows.log").is_file()
        assert tree_digest(finished_run / "results" / "logs") == before
        assert (finished_run / "results" / "logs" / "crop_windows.log").exists() and not (finished_run / "logs").exists()
    finally:
        shutil.rmtree(finished_run / "other", ignore_errors=True)
        (finished_run / "other.yaml").unlink()


def test_a_corrupt_flac_stops_the_run_at_validation_and_keeps_earlier_results(finished_run: Path, tmp_path) -> None:
    """A user's dataset (a copy of the tiny one): after a successful run, one FLAC goes bad."""
    shutil.copytree(finished_run / "data" / "synthetic" / "tiny-seed0", tmp_path / "mydata")
    for item in ("Snakefile", "workflow", "rfcx", "profiles"):
        (tmp_path / item).symlink_to(finished_run / item)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**TINY, "data_dir": "mydata"}))
    snakemake(tmp_path, "results/data/windows.parquet")
    before = tree_digest(tmp_path / "results")
    flac = sorted((tmp_path / "mydata" / "train").glob("*.flac"))[0]
    flac.write_bytes(b"fLaC" + b"\x00not audio" * 50)
    result = snakemake(tmp_path, check=False)
    assert result.returncode != 0
    console = result.stdout + result.stderr
    assert f"mydata/train/{flac.name}" in console and "unreadable audio" in console
    after = tree_digest(tmp_path / "results")
    # the failed check removes its own record (Snakemake clears a job's output before running it) and its log now
    # names the bad file; every other result of the earlier run is untouched, and nothing after validation ran
    before.pop("data/validated.json")
    assert flac.name in (tmp_path / "results" / "logs" / "validate.log").read_text()
    assert {**after, "logs/validate.log": None} == {**before, "logs/validate.log": None}


def test_the_report_renders_offline_with_every_result(finished_run: Path) -> None:
    snakemake(finished_run, "--report", "report.zip")
    import zipfile

    with zipfile.ZipFile(finished_run / "report.zip") as archive:
        names = "\n".join(archive.namelist())
    for figure in ("training_curves.png", "oof_per_species.png", "augmentations.png", "submission_preview.csv",
                   "oof_per_fold.csv", "summary.txt"):
        assert figure in names, figure


def test_the_benchmark_runs_at_tiny_size_and_reports_every_figure(finished_run: Path, tmp_path) -> None:
    """`rfcx bench --size tiny` on the tiny run's config and data (the CI smoke test of the full benchmark)."""
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "rfcx.cli", "bench", "--size", "tiny", "--config", str(finished_run / "config.yaml"),
         "--data-dir", str(finished_run / "data" / "synthetic" / "tiny-seed0"), "--workflow-dir", str(finished_run),
         "--json", str(out), "--markdown", str(tmp_path / "RESULTS.md")],
        cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    measured = json.loads(out.read_text())
    timings = measured["timings"]
    for figure in ("reference train (aug)", "reference validation", "pipeline train (aug + log-mel)",
                   "pipeline validation (log-mel)", "train step, real augmented input", "train step, constant input",
                   "inference: decode + windows + predict", "inference: decode only", "inference: predict only",
                   "snakemake -n on a finished run", "reference train (aug), one core",
                   "reference validation, one core", "pipeline train (aug + log-mel), one core",
                   "pipeline validation (log-mel), one core", "pipeline train, mel-power cache (aug + dB)",
                   "pipeline train, mel-power cache (aug + dB), one core",
                   "mel-power cache build (per span, once per fold)"):
        assert timings[figure]["items"] > 0 and timings[figure]["wall_seconds"] > 0, figure
        assert figure in result.stdout
    # even at this size the cache + batched log-mel beats whole-FLAC decoding + librosa per clip
    assert measured["ratios"]["validation input, pipeline / reference, per core"] > 2
    # real input adds the cache read and the augmentation layers to every step, so it cannot be much faster than a
    # constant batch (with this toy model the input dominates: ratios of ~0.07-0.5 have been seen)
    assert 0 < measured["ratios"]["training, real input / constant input"] < 2
    assert "| ratio | value |" in (tmp_path / "RESULTS.md").read_text()


def test_test_time_choices_are_scored_from_the_kept_window_scores_and_reproduce_the_runs_test_score(
        finished_run: Path, tmp_path) -> None:
    from rfcx.bench.test_time import score_test_time_variants

    data = finished_run / "data" / "synthetic" / "tiny-seed0"
    table = score_test_time_variants(finished_run / "results", data, pooling="max", method="mean")
    assert list(table.variant) == ["max pooling, mean of 2 folds", "max pooling, rank_mean of 2 folds",
                                   "mean pooling, mean of 2 folds", "mean pooling, rank_mean of 2 folds",
                                   "max pooling, fold 0 alone", "max pooling, fold 1 alone"]
    # the run's own setting (config: max pooling, mean of folds) is the workflow's own test score, to the digit
    own = table[table.run_setting]
    test = json.loads((finished_run / "results/scores/test.json").read_text())["test"]
    assert list(own.variant) == ["max pooling, mean of 2 folds"] and own.test_lwlrap.iloc[0] == test["lwlrap"]
    assert own.change.iloc[0] == 0 and table.test_lwlrap.between(0, 1).all()
    assert (table.change == table.test_lwlrap - test["lwlrap"]).all()
    # without test truth there is nothing to score against: said, naming the folder
    no_truth = tmp_path / "data"
    shutil.copytree(data, no_truth)
    (no_truth / "test_truth.csv").unlink()
    with pytest.raises(ValueError, match=f"{no_truth}.*no test_truth.csv"):
        score_test_time_variants(finished_run / "results", no_truth)


def test_the_optional_stages_are_not_planned_when_off(finished_run: Path) -> None:
    assert planned_rules(finished_run, None, "--forceall") == PLAIN_RULES
    assert planned_rules(finished_run, {"calibration": {"enabled": False}}) == set()


def test_calibration_fits_on_oof_and_calibrates_the_submission(finished_run: Path, tmp_path) -> None:
    change = {"calibration": {"enabled": True, "min_positives": 1}}
    assert planned_rules(finished_run, change) == {"calibrate", "ensemble", "summarise", "all"}
    run = copy_of_run(finished_run, tmp_path / "run", change)
    result = snakemake(run)
    assert "rule train:" not in result.stdout + result.stderr and "rule calibrate:" in result.stdout + result.stderr
    calibration = json.loads((run / "results/calibration/calibration.json").read_text())
    assert calibration["method"] == "platt" and len(calibration["species"]) == 24
    estimate = json.loads((run / "results/scores/calibration.json").read_text())
    assert 0 < estimate["oof_lwlrap_raw"] <= 1 and 0 < estimate["oof_lwlrap_calibrated"] <= 1
    assert set(estimate["per_fold"]) == {"0", "1"}
    raw = pd.read_csv(finished_run / "results/submission.csv")
    calibrated = pd.read_csv(run / "results/submission.csv")
    assert list(calibrated.recording_id) == list(raw.recording_id) and calibrated.iloc[:, 1:].notna().all().all()
    assert not calibrated.equals(raw)
    test = json.loads((run / "results/scores/test.json").read_text())
    assert test["test_uncalibrated"]["lwlrap"] == pytest.approx(
        json.loads((finished_run / "results/scores/test.json").read_text())["test"]["lwlrap"])
    assert "OOF LWLRAP calibrated" in (run / "results/summary.txt").read_text()


def test_pseudo_labels_train_a_second_stage_that_makes_every_prediction(finished_run: Path, tmp_path) -> None:
    # thresholds an untrained toy model's scores (~0.04 everywhere) pass, so every fold gets pseudo windows
    change = {"pseudo_label": {"enabled": True, "threshold": 0.01, "low_threshold": 0.0, "max_windows": 6},
              "calibration": {"enabled": True, "min_positives": 1}}
    plan = planned_rules(finished_run, change)
    assert {"predict_unlabelled", "pseudo_label", "cache_pseudo", "train_stage2", "predict_oof", "predict_test",
            "score_oof", "calibrate", "ensemble", "plot_training", "summarise"} <= plan
    assert not plan & {"train", "crop_windows", "cache_waveforms"}  # stage 1 is reused as it is
    run = copy_of_run(finished_run, tmp_path / "run", change)
    snakemake(run)
    folds = pd.read_parquet(run / "results/data/folds.parquet").set_index("recording_id").fold
    for fold in (0, 1):
        pseudo = pd.read_parquet(run / f"results/pseudo/fold{fold}.parquet")
        assert 0 < len(pseudo) <= 6 and (pseudo.recording_id.map(folds) != fold).all()
        assert ((pseudo.filter(regex=r"^t\d+$") >= -1) & (pseudo.filter(regex=r"^t\d+$") <= 1)).all().all()
        assert (run / f"results/stage2/models/fold{fold}/model.keras").exists()
        assert f"{len(pseudo)} pseudo-labelled windows" in (run / f"results/logs/train_stage2/fold{fold}.log").read_text()
        stage1_oof = pd.read_parquet(finished_run / f"results/oof/fold{fold}.parquet")
        stage2_oof = pd.read_parquet(run / f"results/oof/fold{fold}.parquet")
        assert list(stage2_oof.window_id) == list(stage1_oof.window_id)  # validated on the labelled windows only
        assert not stage2_oof.equals(stage1_oof)  # ... by the stage-2 model
    submission = pd.read_csv(run / "results/submission.csv")
    sample = pd.read_csv(run / "data/synthetic/tiny-seed0/sample_submission.csv")
    assert tuple(submission.columns) == SUBMISSION_COLUMNS and list(submission.recording_id) == list(sample.recording_id)
    assert submission.iloc[:, 1:].notna().all().all()
    assert 0 < json.loads((run / "results/scores/oof.json").read_text())["lwlrap"] <= 1


PROBE = REPO / "benchmarks" / "probe_fold0.sh"


def test_the_one_fold_probe_trains_fold_0_and_prints_its_best_validation_score(finished_run: Path, tmp_path) -> None:
    """benchmarks/probe_fold0.sh (benchmarks/PROBES.md) on the tiny data: fold 0 only, its overrides applied, and the
    printed figure is the best val LWLRAP of the history it wrote."""
    overrides = yaml.safe_dump({key: TINY[key] for key in ("features", "model", "train")}, default_flow_style=False)
    env = {**os.environ, "DATA": str(finished_run / "data" / "synthetic" / "tiny-seed0"),
           "PROBES": str(tmp_path), "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(PROBE), "tiny", overrides], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    history = pd.read_csv(tmp_path / "tiny/results/models/fold0/history.csv")
    assert len(history) == TINY["train"]["epochs"]
    assert result.stdout.startswith(f"tiny: best val LWLRAP {history['val_lwlrap'].max():.4f} at epoch ")
    assert not (tmp_path / "tiny/results/models/fold1").exists()  # one fold only

    missing = subprocess.run(["bash", str(PROBE), "nodata"], env={**env, "DATA": str(tmp_path / "absent")},
                             capture_output=True, text=True)
    assert missing.returncode != 0 and f"no dataset at {tmp_path / 'absent'}" in missing.stderr


def test_detection_over_a_nested_archive_runs_in_shards_redoes_only_a_replaced_files_shard_and_matches_one_job(
        finished_run: Path, tmp_path: Path) -> None:
    """Two sites whose recorders wrote the same file name, a second day, and a corrupt file: one shard per
    recording (detect.hours_per_job below a recording's minute)."""
    test_flacs = sorted((finished_run / "data" / "synthetic" / "tiny-seed0" / "test").glob("*.flac"))
    archive = tmp_path / "archive"
    names = ["A/0301/20240301_053000.flac", "B/0301/20240301_053000.flac", "A/0302/20240302_060000.flac"]
    for name, source in zip(names, test_flacs):
        (archive / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, archive / name)
    (archive / "A" / "bad.flac").write_bytes(b"fLaC" + b"\x00not audio" * 50)
    detect = {"input_dir": str(archive), "hours_per_job": 0.001, "min_score": 0.03}  # the untrained toy scores ~0.04
    run = copy_of_run(finished_run, tmp_path / "run", {"detect": detect})
    result = snakemake(run)
    assert "rule train:" not in result.stdout + result.stderr
    out = run / "results" / "detections"
    shard_logs = sorted((run / "results" / "logs" / "detect").glob("shard-*.log"))
    assert len(shard_logs) == 3 and all("1 scored, 0 skipped, 0 failed" in log.read_text() for log in shard_logs)
    table = pd.read_parquet(out / "detections.parquet")
    assert set(table.path) == set(names) and set(table.site) == {"A", "B"}
    assert (table.start_time == table.file_start + pd.to_timedelta(table.start, unit="s")).all()
    a, b = (pd.read_parquet(out / site / "0301" / "20240301_053000.scores.parquet") for site in "AB")
    assert not a.equals(b)  # two recordings, two outputs, nothing overwritten
    failures = pd.read_csv(out / "failures.csv")
    assert failures.file.tolist() == [str(archive / "A" / "bad.flac")]
    assert pd.read_csv(out / "summary.csv").recording.tolist() == sorted(name[:-5] for name in names)
    assert set(pd.read_csv(out / "activity_by_hour.csv").hour) == {5, 6}
    assert json.loads((out / "detect.json").read_text())["min_score"] == 0.03
    snakemake(run, "--report", "report.zip")
    assert any(name.endswith("/activity.png") for name in zipfile.ZipFile(run / "report.zip").namelist())

    # one job over the whole archive (rfcx detect) finds exactly the sharded run's detections
    single = tmp_path / "single"
    assert main(["detect", "--results", str(run / "results"), "--input", str(archive), "--output", str(single),
                 "--min-score", "0.03", "--batch-size", "16", "--quiet"]) == 1  # 1: a file failed
    assert pd.read_csv(single / "failures.csv").file.tolist() == failures.file.tolist()
    pd.testing.assert_frame_equal(pd.read_parquet(single / "detections.parquet"), table)

    # a recording replaced in place: its shard alone is planned, and that shard scores that recording alone
    shutil.copy(test_flacs[3], archive / names[2])
    plan = snakemake(run, "-n").stdout
    assert plan.count("rule detect_shard:") == 1 and "rule train" not in plan and "rule predict" not in plan
    before = {log: log.stat().st_mtime_ns for log in shard_logs}
    snakemake(run)
    changed = [log for log in shard_logs if log.stat().st_mtime_ns != before[log]]
    assert len(changed) == 1 and "1 scored, 0 skipped" in changed[0].read_text()
    assert not pd.read_parquet(out / "detections.parquet").equals(table)  # the new audio's scores
    assert "Nothing to be done" in snakemake(run, "-n").stdout
