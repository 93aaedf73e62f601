"""The quality benchmark: every recipe is a valid config that differs from the default by its switch alone and
shares the dataset, folds and budget; a finished run's scores are collected and laid side by side."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from rfcx.bench.quality import REPO, Budget, Outcome, collect, recipe_config, recipes, render_markdown, render_text
from rfcx.cli import main
from rfcx.prediction.scoring import score_table


def changed_keys(a: dict, b: dict) -> set[str]:
    keys = set()
    for section in set(a) | set(b):
        if isinstance(a.get(section), dict) and isinstance(b.get(section), dict):
            keys |= {f"{section}.{k}" for k in set(a[section]) | set(b[section]) if a[section].get(k) != b[section].get(k)}
        elif a.get(section) != b.get(section):
            keys.add(section)
    return keys


def test_every_recipe_validates_and_shares_the_data_folds_and_budget(tmp_path) -> None:
    budget = Budget(scale="tiny", folds=2, epochs=1, steps_per_epoch=2, batch_size=4)
    configs = {name: recipe_config(recipe, budget, tmp_path) for name, recipe in recipes().items()}
    for config in configs.values():
        assert config["synth"] == {"scale": "tiny", "seed": 0, "root": str(tmp_path)}
        assert config["folds"]["n_folds"] == 2 and config["seed"] == 0 and config["results_dir"] == "results"
        assert (config["train"]["epochs"], config["train"]["steps_per_epoch"], config["train"]["batch_size"]) == (1, 2, 4)
    default = configs["default"]
    assert configs["reference"]["model"]["output"] == "softmax" and default["model"]["output"] == "sigmoid"
    assert changed_keys(default, configs["sed-max"]) == {"model.head"}
    assert changed_keys(default, configs["no-frequency-channel"]) == {"model.frequency_channel"}
    assert changed_keys(default, configs["no-band-floor"]) == {"features.band_floor_quantile", "features.noise_gate_db"}
    assert changed_keys(default, configs["no-noise-gate"]) == {"features.noise_gate_db"}
    assert changed_keys(default, configs["minmax-scaling"]) == {"features.scaling"}
    assert changed_keys(default, configs["confuser-mix"]) == {"augment"}
    assert configs["confuser-mix"]["augment"] == [*default["augment"], {"type": "ConfuserMix", "p": 0.5}]
    assert not any(entry["type"] == "ConfuserMix" for entry in default["augment"])
    assert changed_keys(default, configs["mixup"]) == {"augment"}
    assert changed_keys(default, configs["pseudo-labels"]) == {"pseudo_label.enabled"}
    assert changed_keys(default, configs["calibration"]) == {"calibration.enabled"}
    assert configs["mixup"]["augment"][-1]["type"] == "Mixup"
    assert default["augment"] == yaml.safe_load((REPO / "config.yaml").read_text())["augment"]


def fake_results(root, seed: int) -> None:
    """A results folder as the workflow writes it (scores from rfcx.prediction.scoring on random predictions)."""
    rng = np.random.default_rng(seed)
    truth = (rng.random((40, 24)) < 0.1).astype(float)
    truth[np.arange(40), rng.integers(0, 24, 40)] = 1
    (root / "scores").mkdir(parents=True)
    (root / "scores" / "oof.json").write_text(json.dumps({**score_table(truth, rng.random((40, 24))), "per_fold": {},
                                                          "recordings": score_table(truth, rng.random((40, 24)))}))
    (root / "scores" / "test.json").write_text(json.dumps({"test": score_table(truth, rng.random((40, 24)))}))
    (root / "benchmarks" / "train").mkdir(parents=True)
    for fold in range(2):
        pd.DataFrame({"s": [10.0 + fold], "max_rss": [1.0]}).to_csv(root / "benchmarks" / "train" / f"fold{fold}.tsv",
                                                                    sep="\t", index=False)


def test_finished_runs_are_collected_and_laid_side_by_side(tmp_path) -> None:
    known = recipes()
    outcomes = []
    for seed, name in enumerate(["reference", "default", "mixup"]):
        fake_results(tmp_path / name / "results", seed)
        outcomes.append(collect(known[name], tmp_path / name / "results", wall_seconds=60.0))
    outcomes.append(Outcome(known["softmax"], tmp_path / "softmax", 5.0, error="snakemake exited 1"))
    assert outcomes[0].train_seconds == 21.0
    text = render_text(outcomes)
    assert "reference" in text and "default" in text and "snakemake exited 1" in text and "s23" in text
    markdown = render_markdown(outcomes, Budget(scale="tiny"))
    assert "## Side by side" in markdown and "## Ablations" in markdown and "## Test LWLRAP per species" in markdown
    assert f"{outcomes[1].test['lwlrap']:.4f}" in markdown and "cores" in markdown
    # the held-out train recordings' whole-recording score, beside the window-level OOF score, and its change
    default, mixup = outcomes[1].oof["recordings"]["lwlrap"], outcomes[2].oof["recordings"]["lwlrap"]
    mixup_line = next(line for line in markdown.splitlines() if line.startswith("| mixup"))
    assert f"| {mixup:.4f} | {mixup - default:.4f} |" in mixup_line and f"{default:.4f}" in text


def test_the_defaults_test_time_choices_get_their_own_table_or_say_why_not(tmp_path) -> None:
    fake_results(tmp_path / "default" / "results", 1)
    outcome = collect(recipes()["default"], tmp_path / "default" / "results", wall_seconds=60.0)
    outcome.test_time = [{"variant": "max pooling, mean of 3 folds", "test_lwlrap": 0.7, "change": 0.0,
                          "run_setting": True},
                         {"variant": "mean pooling, mean of 3 folds", "test_lwlrap": 0.41, "change": -0.29,
                          "run_setting": False}]
    markdown = render_markdown([outcome], Budget(scale="tiny"))
    assert "## Test-time choices" in markdown
    assert "| **max pooling, mean of 3 folds** (run) | 0.7000 | 0.0000 |" in markdown
    assert "| mean pooling, mean of 3 folds | 0.4100 | -0.2900 |" in markdown
    outcome.test_time, outcome.test_time_error = None, "ValueError: no test_truth.csv"
    assert "Not scored: ValueError: no test_truth.csv" in render_markdown([outcome], Budget(scale="tiny"))


def test_a_run_of_ablations_alone_renders_without_a_side_by_side_table(tmp_path) -> None:
    fake_results(tmp_path / "minmax-scaling" / "results", 3)
    outcome = collect(recipes()["minmax-scaling"], tmp_path / "minmax-scaling" / "results", wall_seconds=60.0)
    markdown = render_markdown([outcome], Budget(scale="tiny"))
    assert "## Side by side" not in markdown and "## Ablations" in markdown
    ablation_line = next(line for line in markdown.splitlines() if line.startswith("| minmax-scaling"))
    assert f"{outcome.oof['lwlrap']:.4f}" in ablation_line and "| - |" in ablation_line  # no default: no change


def test_an_unknown_recipe_is_refused_before_anything_runs(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown recipe"):
        main(["quality", "--recipes", "default,nonsense", "--work-dir", str(tmp_path), "--markdown",
              str(tmp_path / "q.md")])
    assert not any(tmp_path.iterdir())


def test_a_blended_run_gives_a_row_for_each_family_alone_and_one_for_the_blend(tmp_path) -> None:
    results = tmp_path / "blend" / "results"
    fake_results(results, 4)
    (results / "scores" / "oof_probe.json").write_text((results / "scores" / "oof.json").read_text())
    test = json.loads((results / "scores" / "test.json").read_text())
    test["families"] = {"cnn": test["test"], "probe": test["test"]}
    (results / "scores" / "test.json").write_text(json.dumps(test))
    (results / "scores" / "blend.json").write_text(json.dumps({"weights": {"cnn": 0.3, "probe": 0.7},
                                                               "oof_recordings_lwlrap": 0.9123}))
    pd.DataFrame({"s": [7.0]}).to_csv(results / "benchmarks" / "embed.tsv", sep="\t", index=False)
    outcome = collect(recipes()["blend"], results, wall_seconds=100.0)
    rows = {member.recipe.name: member.row() for member in [*outcome.families, outcome]}
    assert list(rows) == ["blend:cnn", "blend:probe", "blend"]
    assert rows["blend:cnn"]["train_seconds"] == 21.0 and rows["blend:probe"]["train_seconds"] == 7.0
    assert rows["blend"]["recording_oof_lwlrap"] == 0.9123 and rows["blend"]["oof_lwlrap"] is None
    assert rows["blend"]["wall_seconds"] == 100.0 and rows["blend:cnn"]["wall_seconds"] is None
    assert "cnn 0.30, probe 0.70" in rows["blend"]["description"]
    markdown = render_markdown([*outcome.families, outcome], Budget(data_dir="/data/real"))
    assert "dataset: `/data/real`" in markdown and "| blend:probe |" in markdown


def test_a_dataset_of_your_own_replaces_the_synthetic_one(tmp_path) -> None:
    config = recipe_config(recipes()["probe"], Budget(data_dir=str(tmp_path)), tmp_path / "synth")
    assert config["data_dir"] == str(tmp_path.resolve()) and config["families"] == ["probe"]


def test_a_run_of_the_probe_alone_is_one_row_with_its_own_scores(tmp_path) -> None:
    results = tmp_path / "probe" / "results"
    fake_results(results, 5)
    (results / "scores" / "oof.json").rename(results / "scores" / "oof_probe.json")
    (results / "scores" / "blend.json").write_text(json.dumps({"weights": {"probe": 1.0},
                                                               "oof_recordings_lwlrap": 0.5}))
    pd.DataFrame({"s": [9.0]}).to_csv(results / "benchmarks" / "embed.tsv", sep="\t", index=False)
    outcome = collect(recipes()["probe"], results, wall_seconds=50.0)
    assert not outcome.families and outcome.train_seconds == 9.0
    assert outcome.row()["oof_lwlrap"] == json.loads((results / "scores" / "oof_probe.json").read_text())["lwlrap"]
