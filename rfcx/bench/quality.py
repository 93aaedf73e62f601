"""The quality benchmark: the reference recipe, the project default and one-switch ablations, side by side.

Every recipe is the whole Snakemake workflow, run into its own working folder on the same synthetic dataset (one copy,
generated once), with the same folds (same seed and fold count), the same training budget and the same test set, so
the only difference between two lines is the recipe. A recipe is config.yaml with a few layers over it (section by
section, as `snakemake --configfile` merges them): `config/reference.yaml` for the reference, nothing for the
default, one switch for each ablation. The table reports OOF LWLRAP, test LWLRAP (the synthetic test set has truth),
per-species test LWLRAP and the training time (Snakemake's `benchmark:` of the train jobs, summed over folds), and
`benchmarks/QUALITY.md` records it with the machine and the budget. The default's run also gets its test-time
choices (pooling, fold ensembling) scored on its own fold models (rfcx.bench.test_time): no retraining needed.

    rfcx quality --scale hard                          # reference, default and every ablation (hours on a CPU)
    rfcx quality --scale tiny --epochs 1 --steps 2     # a smoke run
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from rfcx.constants import N_SPECIES
from rfcx.pipeline.config import apply_schema

REPO = Path(__file__).resolve().parents[2]
SPECIES = [f"s{index}" for index in range(N_SPECIES)]


@dataclass(frozen=True)
class Recipe:
    """A named configuration: `layers` (YAML files under the repository, then dicts) laid over config.yaml."""

    name: str
    description: str
    files: tuple[str, ...] = ()
    overrides: tuple[dict[str, Any], ...] = ()
    ablation: bool = False


def _with_augment(entry: dict[str, Any]) -> dict[str, Any]:
    """An override that appends one augmentation to config.yaml's list."""
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    return {"augment": [*base.get("augment", []), entry]}


def recipes() -> dict[str, Recipe]:
    """The reference, the default and one ablation per switch (each relative to the default)."""
    ablations = [
        Recipe("sed-max", "sed head, max pooling over time (frame-wise loss on tp/fp boxes)",
               overrides=({"model": {"head": "sed", "sed_pooling": "max"}},)),
        Recipe("sed-attention", "sed head, attention pooling over time",
               overrides=({"model": {"head": "sed", "sed_pooling": "attention"}},)),
        Recipe("mixup", "+ Mixup (p 0.5, alpha 0.4)", overrides=(_with_augment({"type": "Mixup", "p": 0.5,
                                                                                 "alpha": 0.4}),)),
        Recipe("specaugment", "+ SpecAugment (p 0.5, 2 time and 2 frequency masks)",
               overrides=(_with_augment({"type": "SpecAugment", "p": 0.5}),)),
        Recipe("no-band-floor", "without subtracting each mel band's background floor (features.band_floor_quantile 0; "
               "the noise gate above that floor goes with it)",
               overrides=({"features": {"band_floor_quantile": 0, "noise_gate_db": 0}},)),
        Recipe("no-noise-gate", "without the noise gate above each band's floor (features.noise_gate_db 0)",
               overrides=({"features": {"noise_gate_db": 0}},)),
        Recipe("minmax-scaling", "each window's dB image stretched to [0, 1] instead of divided by features.scale_db",
               overrides=({"features": {"scaling": "minmax"}},)),
        Recipe("confuser-mix", "+ confuser mixing (ConfuserMix p 0.5: fp-centred windows mixed into the "
               "training windows instead of trained on as negatives of their own)",
               overrides=(_with_augment({"type": "ConfuserMix", "p": 0.5}),)),
        Recipe("no-frequency-channel", "without the mel-band position channel",
               overrides=({"model": {"frequency_channel": False}},)),
        Recipe("softmax", "softmax + categorical cross-entropy instead of sigmoid + binary",
               overrides=({"model": {"output": "softmax"}},)),
        Recipe("anchor-labels", "one species per crop (the anchor box's) instead of every species in it",
               overrides=({"train": {"labels": "anchor"}},)),
        Recipe("plain-init", "keras.applications' initialisation instead of zero-initialised residual branches",
               overrides=({"model": {"zero_init_residual": False}},)),
        Recipe("bn-0.99", "BatchNorm momentum 0.99 instead of 0.9", overrides=({"model": {"bn_momentum": 0.99}},)),
        Recipe("constant-lr", "constant learning rate instead of cosine", overrides=({"train": {"schedule": "constant"}},)),
        Recipe("pseudo-labels", "+ a second stage on pseudo-labelled unlabelled audio (pseudo_label.enabled)",
               overrides=({"pseudo_label": {"enabled": True}},)),
        Recipe("calibration", "+ per-species Platt scaling fitted on the OOF predictions (calibration.enabled)",
               overrides=({"calibration": {"enabled": True}},)),
        Recipe("window-10s", "10 s windows instead of 5 s", overrides=({"windows": {"window_seconds": 10.0},
                                                                        "predict": {"hop_seconds": 5.0}},)),
    ]
    return {
        "reference": Recipe("reference", "the reference recipe (config/reference.yaml)", files=("config/reference.yaml",)),
        "default": Recipe("default", "the project default (config.yaml)"),
        "probe": Recipe("probe", "the embedding family alone: BirdNET V2.4 embeddings + per-species probe "
                        "(families: [probe]; needs requirements-embedding.txt)", overrides=({"families": ["probe"]},)),
        "blend": Recipe("blend", "the CNN and the probe blended, weights chosen out of fold (families: [cnn, probe]); "
                        "its rows blend:cnn and blend:probe are each family alone in the same run",
                        overrides=({"families": ["cnn", "probe"]},)),
        **{recipe.name: Recipe(recipe.name, recipe.description, overrides=recipe.overrides, ablation=True)
           for recipe in ablations},
    }


def layered(base: dict[str, Any], *layers: dict[str, Any]) -> dict[str, Any]:
    """`base` with each layer merged over it section by section (what `snakemake --configfile a b` does)."""
    config = copy.deepcopy(base)
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **copy.deepcopy(value)}
            else:
                config[key] = copy.deepcopy(value)
    return config


@dataclass(frozen=True)
class Budget:
    """What every recipe shares: dataset scale and seed, folds, training budget, and any further settings."""

    scale: str = "hard"
    seed: int = 0
    #: a dataset folder of your own (Kaggle layout) instead of the synthetic one of `scale`
    data_dir: str | None = None
    folds: int | None = None
    epochs: int | None = None
    steps_per_epoch: int | None = None
    batch_size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def layer(self, synth_root: Path) -> dict[str, Any]:
        train = {key: value for key, value in (("epochs", self.epochs), ("steps_per_epoch", self.steps_per_epoch),
                                               ("batch_size", self.batch_size)) if value is not None}
        layer: dict[str, Any] = {"data_dir": "synthetic", "results_dir": "results", "seed": self.seed,
                                 "synth": {"scale": self.scale, "seed": self.seed, "root": str(synth_root)},
                                 "train": train, "detect": {"input_dir": ""}}
        if self.data_dir:
            layer["data_dir"] = str(Path(self.data_dir).resolve())
        if self.folds is not None:
            layer["folds"] = {"n_folds": self.folds}
        return layered(layer, self.extra)


def recipe_config(recipe: Recipe, budget: Budget, synth_root: Path) -> dict[str, Any]:
    """The full, validated config of one recipe under the shared budget (laid last, section by section, so it
    changes only the budget's own keys of each section)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for name in recipe.files:
        config = layered(config, yaml.safe_load((REPO / name).read_text()))
    config = layered(config, *recipe.overrides)
    return apply_schema(layered(config, budget.layer(synth_root)))


@dataclass
class Outcome:
    """What one recipe's run produced."""

    recipe: Recipe
    workdir: Path
    wall_seconds: float | None
    oof: dict[str, Any] | None = None
    test: dict[str, Any] | None = None
    train_seconds: float | None = None
    error: str | None = None
    #: the default's test-time choices (rfcx.bench.test_time), one dict per variant; or why they could not be scored
    test_time: list[dict[str, Any]] | None = None
    test_time_error: str | None = None
    #: a blended run's families, each alone (rows "<recipe>:<family>")
    families: list[Outcome] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        recordings = (self.oof or {}).get("recordings")  # held-out train recordings scored whole (oof_recordings)
        return {"recipe": self.recipe.name, "oof_lwlrap": self.oof.get("lwlrap") if self.oof else None,
                "recording_oof_lwlrap": recordings["lwlrap"] if recordings else None,
                "test_lwlrap": self.test["lwlrap"] if self.test else None, "train_seconds": self.train_seconds,
                "wall_seconds": self.wall_seconds, "description": self.recipe.description, "error": self.error}


def run_recipe(recipe: Recipe, config: dict[str, Any], workdir: Path, *, cores: int, quiet: bool = True) -> Outcome:
    """Run the workflow for `config` in `workdir` (its own .snakemake, logs and results) and collect the scores."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", str(cores),
               "--configfile", "config.yaml", "--rerun-incomplete", *(["--quiet"] if quiet else [])]  # rule all
    started = time.perf_counter()
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    wall = time.perf_counter() - started
    (workdir / "snakemake.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        return Outcome(recipe, workdir, wall, error=f"snakemake exited {result.returncode}; see {workdir / 'snakemake.log'}")
    return collect(recipe, workdir / config["results_dir"], wall)


#: Each model family's out-of-fold scores in a results folder, and the jobs whose time is its training.
FAMILY_OOF = {"cnn": "oof.json", "probe": "oof_probe.json"}
FAMILY_TIMINGS = {"cnn": "train/fold*.tsv", "probe": "embed.tsv"}


def seconds_of(results: Path, family: str) -> float | None:
    """Snakemake's `benchmark:` seconds of a family's training jobs (the CNN's folds; the probe's embedding, which
    is nearly all of its time), summed."""
    timings = sorted((results / "benchmarks").glob(FAMILY_TIMINGS[family]))
    return float(sum(pd.read_csv(path, sep="\t")["s"].iloc[0] for path in timings)) if timings else None


def collect(recipe: Recipe, results: Path, wall_seconds: float) -> Outcome:
    """The scores and train time of a finished workflow run, from its results folder. A run of several families
    (scores/blend.json) is collected as the blend: whole-recording OOF and test scores of the blended submission,
    with each family alone in `families`."""
    outcome = Outcome(recipe, results.parent, wall_seconds)
    test = json.loads((results / "scores" / "test.json").read_text())
    outcome.test = test["test"]
    blend = results / "scores" / "blend.json"
    chosen = json.loads(blend.read_text()) if blend.exists() else {"weights": {"cnn": 1.0}}
    if len(chosen["weights"]) == 1:  # one family: its own scores
        family = next(iter(chosen["weights"]))
        outcome.oof = json.loads((results / "scores" / FAMILY_OOF[family]).read_text())
        outcome.train_seconds = seconds_of(results, family)
        return outcome
    weights = ", ".join(f"{name} {weight:.2f}" for name, weight in chosen["weights"].items())
    outcome.oof = {"recordings": {"lwlrap": chosen["oof_recordings_lwlrap"]}, "per_species": {}}
    outcome.recipe = Recipe(recipe.name, f"{recipe.description}; weights {weights}", recipe.files, recipe.overrides)
    for family in chosen["weights"]:
        alone = Outcome(Recipe(f"{recipe.name}:{family}", f"the {family} alone, in the blend's run"), results.parent,
                        None, oof=json.loads((results / "scores" / FAMILY_OOF[family]).read_text()),
                        test=test["families"][family], train_seconds=seconds_of(results, family))
        outcome.families.append(alone)
    outcome.train_seconds = sum(member.train_seconds or 0.0 for member in outcome.families)
    return outcome


def add_test_time_variants(outcome: Outcome, config: dict[str, Any]) -> None:
    """Score the finished run's test-time choices (pooling, fold ensembling) on its own per-window test scores; a
    failure is recorded on the outcome, never raised, so it cannot cost the scores of the training before it."""
    from rfcx.bench.test_time import score_test_time_variants
    from rfcx.pipeline.config import data_dir

    try:
        table = score_test_time_variants(outcome.workdir / config["results_dir"], outcome.workdir / data_dir(config),
                                         config["predict"]["pooling"], config["ensemble"]["method"])
        outcome.test_time = table.to_dict("records")
    except Exception as error:  # noqa: BLE001 - reported in the table instead
        outcome.test_time_error = f"{type(error).__name__}: {error}"


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    try:
        import keras

        backend = f"keras {keras.__version__}, {keras.backend.backend()} backend"
    except Exception as error:  # pragma: no cover - keras is a dependency
        backend = f"keras unavailable ({error})"
    return {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version(),
            "platform": platform.platform(), "backend": backend,
            "accelerator": os.environ.get("RFCX_ACCELERATOR", "none (CPU only)")}


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.0f} s"


def tables(outcomes: list[Outcome]) -> dict[str, pd.DataFrame]:
    """Side by side (reference and default), the ablations (one line per switch, with the change against the
    default) and per-species test and OOF LWLRAP."""
    by_name = {outcome.recipe.name: outcome for outcome in outcomes}
    main = pd.DataFrame([o.row() for o in outcomes if not o.recipe.ablation])
    default = by_name.get("default")
    ablation_rows = []
    for outcome in (o for o in outcomes if o.recipe.ablation):
        row = outcome.row()
        for metric in ("oof_lwlrap", "recording_oof_lwlrap", "test_lwlrap"):
            base = default.row()[metric] if default else None
            row[f"{metric}_change"] = None if row[metric] is None or base is None else row[metric] - base
        ablation_rows.append(row)
    per_species = {}
    for kind in ("test", "oof"):
        columns = {o.recipe.name: [getattr(o, kind)["per_species"].get(s) if getattr(o, kind) else None
                                   for s in SPECIES] for o in outcomes}
        per_species[kind] = pd.DataFrame(columns, index=SPECIES)
    return {"main": main, "ablations": pd.DataFrame(ablation_rows), **{f"per_species_{k}": v
                                                                       for k, v in per_species.items()}}


def render_text(outcomes: list[Outcome]) -> str:
    """The side-by-side table for the terminal."""
    lines = [f"{'recipe':<22} {'OOF LWLRAP':>10} {'OOF, whole rec.':>15} {'test LWLRAP':>11} {'train':>8} {'wall':>8}"
             "  description"]
    for outcome in outcomes:
        row = outcome.row()
        lines.append(f"{row['recipe']:<22} {_fmt(row['oof_lwlrap']):>10} {_fmt(row['recording_oof_lwlrap']):>15} "
                     f"{_fmt(row['test_lwlrap']):>11} "
                     f"{_seconds(row['train_seconds']):>8} {_seconds(row['wall_seconds']):>8}  "
                     f"{row['error'] or row['description']}")
    species = tables(outcomes)["per_species_test"]
    lines += ["", "test LWLRAP per species:", species.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-")]
    return "\n".join(lines)


def _markdown(frame: pd.DataFrame, index: bool = False) -> str:
    """A small Markdown table without the optional `tabulate` dependency."""
    frame = frame.reset_index() if index else frame
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join("-" if value is None or (isinstance(value, float) and value != value) else
                               (f"{value:.4f}" if isinstance(value, float) else str(value)) for value in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def render_markdown(outcomes: list[Outcome], budget: Budget, note: str = "") -> str:
    """benchmarks/QUALITY.md: the machine, the budget, the tables."""
    info = machine()
    parts = tables(outcomes)
    text = [
        "# Quality benchmark: reference recipe vs project default",
        "",
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by `rfcx quality` (rfcx/bench/quality.py).",
        "",
        f"- machine: {info['cpu']}, {info['cores']} cores, accelerator: {info['accelerator']}",
        f"- software: Python {info['python']}, {info['backend']}, {info['platform']}",
        (f"- dataset: `{budget.data_dir}`" if budget.data_dir else
         f"- dataset: synthetic scale `{budget.scale}`, seed {budget.seed}")
        + "; the same folds and test set for every recipe",
        f"- budget: folds {budget.folds or 'config.yaml'}, epochs {budget.epochs or 'config.yaml'}, steps per epoch "
        f"{budget.steps_per_epoch or 'config.yaml'}, batch size {budget.batch_size or 'config.yaml'}"
        + (f", other settings {json.dumps(budget.extra)}" if budget.extra else ""),
        "- train time: Snakemake's `benchmark:` of the train jobs, summed over folds; wall: the whole workflow run",
    ]
    if note:
        text += ["", note]
    if len(parts["main"]):  # an ablation-only run (e.g. `--recipes minmax-scaling`) has no side-by-side rows
        main = parts["main"].assign(train_seconds=lambda f: f.train_seconds.map(_seconds),
                                    wall_seconds=lambda f: f.wall_seconds.map(_seconds))
        text += ["", "## Side by side", "", _markdown(main)]
    if len(parts["ablations"]):
        ablations = parts["ablations"][["recipe", "oof_lwlrap", "oof_lwlrap_change", "recording_oof_lwlrap",
                                        "recording_oof_lwlrap_change", "test_lwlrap", "test_lwlrap_change",
                                        "train_seconds", "description"]]
        ablations = ablations.assign(train_seconds=ablations.train_seconds.map(_seconds))
        text += ["", "## Ablations (one switch each, against the default)", "", _markdown(ablations)]
    default = next((o for o in outcomes if o.recipe.name == "default" and (o.test_time or o.test_time_error)), None)
    if default:
        text += ["", "## Test-time choices (the default's own fold models, no retraining)", "",
                 "Pooling over each recording's sliding windows, then the folds combined; `change` is against the "
                 "run's own setting (marked), whose score is the workflow's test LWLRAP above.", ""]
        if default.test_time:
            frame = pd.DataFrame(default.test_time)
            frame["variant"] = [f"**{v}** (run)" if own else v for v, own in zip(frame.variant, frame.run_setting)]
            text.append(_markdown(frame[["variant", "test_lwlrap", "change"]]))
        else:
            text.append(f"Not scored: {default.test_time_error}")
    text += ["", "## Test LWLRAP per species", "", _markdown(parts["per_species_test"], index=True),
             "", "## OOF LWLRAP per species", "", _markdown(parts["per_species_oof"], index=True), ""]
    return "\n".join(text)


def run(names: list[str], budget: Budget, work_dir: Path, *, cores: int, markdown: Path | None = None,
        json_path: Path | None = None, note: str = "", progress: bool = True) -> list[Outcome]:
    """Run the named recipes one after another (each uses every core), print the table, write the reports."""
    known = recipes()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown recipe(s) {unknown}; known: {', '.join(known)}")
    work_dir = work_dir.resolve()
    synth_root = work_dir / "data"
    outcomes = []
    for name in names:
        config = recipe_config(known[name], budget, synth_root)
        if progress:
            print(f"[quality] {name}: {known[name].description}", file=sys.stderr, flush=True)
        outcome = run_recipe(known[name], config, work_dir / name, cores=cores)
        if name == "default" and not outcome.error:
            add_test_time_variants(outcome, config)
        if progress:
            print(f"[quality] {name}: {outcome.error or 'done'} in {outcome.wall_seconds:.0f} s", file=sys.stderr,
                  flush=True)
        outcomes += [*outcome.families, outcome]
    print(render_text(outcomes))
    if json_path:  # first: the raw scores of hours of training must survive a failure to render the Markdown
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"machine": machine(), "budget": budget.__dict__,
                                         "outcomes": [{**o.row(), "oof": o.oof, "test": o.test,
                                                       **({"test_time": o.test_time} if o.test_time else {})}
                                                      for o in outcomes]},
                                        indent=2, default=str))
    if markdown:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(render_markdown(outcomes, budget, note))
    return outcomes
