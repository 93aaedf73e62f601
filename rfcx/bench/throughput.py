"""`rfcx bench`: where the time goes, measured side by side in one run on the same windows and augmentation settings.

1. the reference recipe's generator (`benchmarks/reference_generator.py`: whole-FLAC decode, per-clip numpy/librosa
   augmentations, librosa mel, skimage resize), augmented (training) and plain (validation);
2. the project's input pipeline: cache read + the model's batched augmentation and log-mel layers (a negligible head
   on top so that Keras runs them in training mode, compiled, as in training);
3. training throughput of the configured model fed real augmented batches versus the same model, without the
   augmentation layers, fed one constant batch: the gap is what the input pipeline costs;
4. test inference: whole 60 s recordings decoded, windowed and predicted (and decode and predict alone, to show
   which of them bounds it);
5. Snakemake's no-op overhead: `snakemake -n` on a finished run.

Each figure is samples (or recordings) per wall-clock second and per CPU-second of its process, and the ratios
between them. The input figures (1 and 2) are measured twice: with every core, as training runs them, and on one core
(a child process pinned to one CPU, each thread pool capped at one thread), which is what "per core" means: per
CPU-second on every core is not that, because idle pool threads spin and their CPU time counts (the reference
generator burned 1.7-1.8x the CPU per sample with two threads as on one, for about the same wall time; measured
2026-12-03). Because both sides run a few seconds apart in one process (or one child), the ratios hold on a busy,
shared machine where absolute numbers do not.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np

from rfcx.data.audio import samples
from rfcx.data.cache import WaveformCache, build_cache
from rfcx.data.dataset import load_dataset, recording_path
from rfcx.data.folds import split_folds
from rfcx.data.mel_cache import MelPowerCache, mel_power_cache
from rfcx.data.windows import crop_windows
from rfcx.model.augment import augmentation_leaves
from rfcx.model.detector import build_front_end, build_model, frame_count, recipe_detector, scale_image, training_model
from rfcx.model.recipe import LoaderAugmentations, Recipe
from rfcx.pipeline.backend import (accelerator_name, backend_summary, backend_version, choose_precision, dtype_policy,
                          make_deterministic)
from rfcx.pipeline.config import data_dir as configured_data_dir
from rfcx.pipeline.config import load_config
from rfcx.pipeline.threads import thread_environment, usable_cpu_count
from rfcx.prediction.predict import decoded, predict_batch, predict_recordings, sliding_windows
from rfcx.training.loader import WindowBatches
from rfcx.training.fold_data import fold_datasets
from rfcx.training.phases import compile_model

REPO = Path(__file__).resolve().parents[2]
REFERENCE_GENERATOR = REPO / "benchmarks" / "reference_generator.py"


#: Suffix of the input figures measured on one core (``one_core_input_figures``).
ONE_CORE = ", one core"

#: The training input pipeline with train.mel_power_cache (``rfcx.data.mel_cache``).
MEL_PIPELINE = "pipeline train, mel-power cache (aug + dB)"

#: Untimed training steps of each model before measuring (the first call traces and creates the optimizer's state).
WARM_UP_STEPS = 2


@dataclass(frozen=True)
class BenchSize:
    """How much each measurement does: small enough for a CI smoke test, or enough for stable figures.

    `recordings` beyond the dataset's test files cycle through them again (each decoded anew), so that a GPU run
    can time the competition's 1,992 test recordings on the demo's 60. `one_core`: also measure the input figures
    in a child pinned to one CPU (the CPU target's "per core"); off for the GPU size, where the pipeline's layers
    run on the GPU and one host core says nothing about them."""

    reference_samples: int
    pipeline_batches: int
    pipeline_batch_size: int
    train_steps: int
    recordings: int
    one_core: bool = True


SIZES = {
    "tiny": BenchSize(reference_samples=4, pipeline_batches=2, pipeline_batch_size=4, train_steps=2, recordings=2),
    "full": BenchSize(reference_samples=48, pipeline_batches=8, pipeline_batch_size=32, train_steps=8, recordings=24),
    "gpu": BenchSize(reference_samples=16, pipeline_batches=16, pipeline_batch_size=128, train_steps=40,
                     recordings=1992, one_core=False),
}


@dataclass(frozen=True)
class Timing:
    """One measured figure: how many items in how much wall-clock and CPU time."""

    items: int
    wall_seconds: float
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.items / self.wall_seconds

    @property
    def per_cpu_second(self) -> float:
        return self.items / max(self.cpu_seconds, 1e-9)


def timed(items: int, work: Callable[[], Any]) -> Timing:
    """Run `work` once, timing wall clock and this process's CPU (all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return Timing(items, time.perf_counter() - wall, time.process_time() - cpu)


def load_reference_generator() -> type:
    """The baseline generator class, from benchmarks/ (kept outside the package on purpose)."""
    spec = importlib.util.spec_from_file_location("reference_generator", REFERENCE_GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ReferenceGenerator


def input_pipeline_model(config: dict[str, Any], stages) -> keras.Model:
    """Augmentations + log-mel + scaling as in the detector, under a negligible head (pooling, one Dense), not
    compiled: training it (or its ``training_model`` from mel power) runs exactly the detector's input layers in
    training mode, compiled, and almost nothing else."""
    features, window_seconds = config["features"], config["windows"]["window_seconds"]
    waveform = keras.Input((samples(window_seconds, features["sample_rate"]),), name="waveform")
    x = stages.waveform(waveform) if stages.waveform is not None else waveform
    x = build_front_end(features, stages.power)(x)
    x = stages.spectrogram(x) if stages.spectrogram is not None else x
    x = scale_image(x, features)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(waveform, keras.layers.Dense(24, activation="sigmoid")(x))


class Bench:
    """The shared set-up (config, dataset, windows, cache) and one method per measurement."""

    def __init__(self, config: dict[str, Any], data: Path, scratch: Path, size: BenchSize):
        self.config, self.data, self.size = config, data, size
        self.features = config["features"]
        self.window_seconds = config["windows"]["window_seconds"]
        dataset = load_dataset(data, check_audio=False)
        folds = split_folds(dataset.tp, dataset.fp, config["folds"]["n_folds"], config["seed"])
        windows_cfg = config["windows"]
        self.windows = crop_windows(dataset.tp, dataset.fp, folds, window_seconds=self.window_seconds,
                                    min_box_overlap=windows_cfg["min_box_overlap"],
                                    fp_window_fraction=windows_cfg["fp_window_fraction"], seed=config["seed"])
        index = build_cache(self.windows, lambda rid: recording_path(data, "train", rid), scratch / "cache.npy",
                            margin_seconds=windows_cfg["margin_seconds"], sample_rate=self.features["sample_rate"])
        self.cache = WaveformCache(scratch / "cache.npy", index, samples(self.window_seconds, self.features["sample_rate"]))
        self.rows = np.random.default_rng(config["seed"]).permutation(len(self.windows))
        self.test_paths = inference_recordings(data / "test", size.recordings)

    def recipe(self, config: dict[str, Any] | None = None) -> Recipe:
        """The training recipe of the config, seeded like a training run's."""
        return Recipe.from_config(config or self.config, self.config["seed"])

    def augmentations(self):
        """The configured augmentation stages, seeded like a training run's."""
        return self.recipe().augmentations

    def reference(self, augment: bool) -> Timing:
        """The reference generator on the first `reference_samples` windows, after a warm-up sample through every
        augmentation forced on (librosa compiles some of them, numba, on first use, which a warm-up sample whose
        coins skipped them would leave inside the timed samples: it once halved the reference's figure), then an
        untimed pass over the same windows, as for the pipeline: both sides are measured in the steady state of an
        epoch after the first."""
        def generator(spec: list[dict[str, Any]] | None) -> Any:
            return load_reference_generator()(self.data / "train", self.windows, window_seconds=self.window_seconds,
                                              features=self.features, augment=spec, seed=self.config["seed"])

        rows = [int(row) % len(self.windows) for row in self.rows[:self.size.reference_samples]]
        generator(augmentation_leaves(self.config["augment"]) if augment else None).batch(rows[:1])
        timed_generator = generator(self.config["augment"] if augment else None)
        timed_generator.batch(rows)
        return timed(len(rows), lambda: timed_generator.batch(rows))

    def pipeline(self, augment: bool, from_mel_power: bool = False) -> Timing:
        """Cache read + batched augmentation + log-mel, compiled, in training mode (or plain, for validation), fed by
        the training loader itself (random crops and host transforms included when augmenting). Timed on a second
        pass over the same batches: the first pays what a training run pays once, not every epoch (tracing and
        compiling, the allocators growing to the batch size, the first read of each cached window).
        `from_mel_power`: as training with train.mel_power_cache, crops of each span's mel power computed once
        (``mel_power_build`` times that once-per-fold cost) instead of the STFT of every crop."""
        batch_size = self.size.pipeline_batch_size
        stages = self.augmentations()
        pipeline = input_pipeline_model(self.config, stages if augment else type(stages)())
        model = training_model(pipeline, from_mel_power=from_mel_power)
        model.compile(optimizer="sgd", loss="binary_crossentropy")
        cache = mel_power_cache(self.cache, pipeline) if from_mel_power else self.cache
        jitter = samples(self.config["windows"]["margin_seconds"], self.features["sample_rate"])
        batches = WindowBatches(cache, self.rows, np.zeros((len(self.rows), 24), dtype=np.float32), batch_size,
                                shuffle=augment, seed=self.config["seed"], jitter_samples=jitter if augment else 0,
                                augment=LoaderAugmentations(host=stages.host) if augment else None,
                                max_batches=self.size.pipeline_batches, pad_to_batch=True)

        def run() -> None:
            for index in range(len(batches)):
                clips, targets = batches[index]
                if augment:
                    model.train_on_batch(clips, targets)
                else:
                    model.predict_on_batch(clips)

        run()
        return timed(len(batches) * batch_size, run)

    def mel_power_build(self) -> Timing:
        """Building the mel-power cache of every cached span (what train.mel_power_cache costs once per fold)."""
        log_mel = build_front_end(self.features)
        return timed(len(self.rows), lambda: MelPowerCache(self.cache, log_mel))

    def training(self) -> dict[str, Timing]:
        """The configured detector trained as a fold trains it (``training_model``: from the mel-power cache when
        train.mel_power_cache allows; the dtype policy of train.mixed_precision: bfloat16 on a GPU) on real augmented
        batches from the loader, and the same model without augmentation layers on one constant batch. Steps of the
        two alternate (after WARM_UP_STEPS warm-up steps each), so a change in the machine's load hits both sides
        alike."""
        with dtype_policy(choose_precision(self.config["train"]["mixed_precision"])):
            return self._training()

    def _training(self) -> dict[str, Timing]:
        config = {**self.config, "train": {**self.config["train"], "workers": 0}}
        fold = int(self.windows.fold.iloc[0])
        recipe = self.recipe(config)
        from_mel_power = recipe.mel_power_cache
        steps, batch_size = self.size.train_steps, config["train"]["batch_size"]
        models, detectors = {}, {}
        for name in ("real", "constant"):
            make_deterministic(self.config["seed"])
            detectors[name] = (recipe_detector(recipe, config["model"]) if name == "real"
                               else build_model(self.features, config["model"], self.window_seconds))
            models[name] = training_model(detectors[name], config["model"]["frame_loss_weight"], from_mel_power)
            compile_model(models[name], config, steps)
        cache = mel_power_cache(self.cache, detectors["real"]) if from_mel_power else self.cache
        train, _ = fold_datasets(self.windows, cache, config, fold, recipe, n_frames=frame_count(detectors["real"]))
        # Warm up only after both are built: resetting the global seed (make_deterministic) makes TensorFlow trace a
        # compiled train step again, which once put a ~3.5 s retrace into the real-input figure and halved it.
        for name in models:
            for _ in range(WARM_UP_STEPS):
                models[name].train_on_batch(*train[0])
        constant = train[0]
        # One loader thread reads the next real batch while a step runs, as train.workers does in training (on a GPU
        # the host's batch work would otherwise add to every step); a real step's wait for its batch is counted.
        loader = ThreadPoolExecutor(max_workers=1)
        upcoming = [loader.submit(train.__getitem__, 1 % len(train))]

        def real_step(step: int) -> None:
            batch = upcoming.pop().result()
            upcoming.append(loader.submit(train.__getitem__, (step + 1) % len(train)))
            models["real"].train_on_batch(*batch)

        def constant_step(step: int) -> None:
            models["constant"].train_on_batch(*constant)

        spent = {name: [0.0, 0.0] for name in models}  # wall, cpu
        with loader:
            for step in range(1, steps + 1):
                for name, work in (("real", real_step), ("constant", constant_step)):
                    timing = timed(batch_size, lambda: work(step))
                    spent[name][0] += timing.wall_seconds
                    spent[name][1] += timing.cpu_seconds
        return {name: Timing(steps * batch_size, wall, cpu) for name, (wall, cpu) in spent.items()}

    def inference(self) -> dict[str, Timing]:
        """Whole test recordings: decode + windows + batched predict, and decode alone and predict alone (over the
        distinct files' windows, so that 1,992 cycled recordings need not be held in memory at once: ~45 GB)."""
        if not self.test_paths:
            return {}
        predict = self.config["predict"]
        with dtype_policy(choose_precision(self.config["train"]["mixed_precision"])):  # as a trained detector's
            model = build_model(self.features, self.config["model"], self.window_seconds)
        rate, n = self.features["sample_rate"], len(self.test_paths)
        kwargs = {"sample_rate": rate, "window_seconds": self.window_seconds, "hop_seconds": predict["hop_seconds"],
                  "batch_size": predict["batch_size"]}
        predict_recordings(model, dict(list(self.test_paths.items())[:1]), **kwargs)  # compile
        whole = timed(n, lambda: predict_recordings(model, self.test_paths, **kwargs))
        audio: dict[Path, np.ndarray] = {}  # each distinct file once: the gpu size cycles 60 files to 1,992

        def decode_all() -> None:
            for path, clip in decoded(self.test_paths.values(), rate):
                audio.setdefault(path, clip)

        decode = timed(n, decode_all)
        hop = samples(predict["hop_seconds"], rate)
        windows = np.concatenate([sliding_windows(clip, samples(self.window_seconds, rate), hop)[1]
                                  for clip in audio.values()])
        batch = predict["batch_size"]
        model_only = timed(len(audio), lambda: [predict_batch(model, windows[i:i + batch], batch)
                                                for i in range(0, len(windows), batch)])
        return {"whole": whole, "decode": decode, "predict": model_only}


def inference_recordings(folder: Path, count: int) -> dict[str, Path]:
    """`count` test recordings by id: the folder's FLAC files in name order, cycled again (ids ``name~1``,
    ``name~2``, ...) when `count` is larger than what the folder holds."""
    paths = sorted(folder.glob("*.flac"))
    if not paths:
        return {}
    return {path.stem + (f"~{index // len(paths)}" if index >= len(paths) else ""): path
            for index, path in ((index, paths[index % len(paths)]) for index in range(count))}


def input_figures(bench: Bench, log: Callable[[str], None] = print) -> dict[str, Timing]:
    """The reference generator and the project's input pipeline, augmented (training) and plain (validation)."""
    steps = {
        "reference train (aug)": lambda: bench.reference(augment=True),
        "reference validation": lambda: bench.reference(augment=False),
        "pipeline train (aug + log-mel)": lambda: bench.pipeline(augment=True),
        "pipeline validation (log-mel)": lambda: bench.pipeline(augment=False),
        MEL_PIPELINE: lambda: bench.pipeline(augment=True, from_mel_power=True),
        "mel-power cache build (per span, once per fold)": bench.mel_power_build,
    }
    timings = {}
    for name, measure in steps.items():
        log(f"measuring {name} ...")
        timings[name] = measure()
        log_timing(name, timings[name], log)
    return timings


def log_timing(name: str, timing: Timing, log: Callable[[str], None]) -> None:
    """One figure as soon as it is measured: a run stopped by a time limit (a lent GPU's) still shows what it got."""
    log(f"  {name}: {timing.items} in {timing.wall_seconds:.2f} s = {timing.per_second:.1f}/s")


def one_core_input_figures(config: dict[str, Any], data: Path, size: str) -> dict[str, Timing]:
    """``input_figures`` in a fresh Python pinned to one CPU with one thread per pool: the affinity is set before
    NumPy or TensorFlow load and the pools' sizes through the environment, so neither side can use a second core or
    count a spinning thread's time."""
    cpu = min(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="rfcx-bench-core-") as scratch:
        request, answer = Path(scratch) / "request.json", Path(scratch) / "timings.json"
        request.write_text(json.dumps({"config": config, "data": str(data), "size": size, "out": str(answer)}))
        bootstrap = (f"import os, sys; os.sched_setaffinity(0, {{{cpu}}}); "
                     "from rfcx.bench.throughput import one_core_child; one_core_child(sys.argv[1])")
        result = subprocess.run([sys.executable, "-c", bootstrap, str(request)], cwd=REPO, capture_output=True,
                                text=True, env={**os.environ, **thread_environment(1)})
        if result.returncode != 0:
            raise RuntimeError(f"the one-core measurement failed:\n{result.stderr[-4000:]}")
        return {name: Timing(**fields) for name, fields in json.loads(answer.read_text()).items()}


def one_core_child(request_path: str) -> None:
    """The child side of ``one_core_input_figures``: measure and write the timings as JSON."""
    request = json.loads(Path(request_path).read_text())
    with tempfile.TemporaryDirectory(prefix="rfcx-bench-") as scratch:
        bench = Bench(request["config"], Path(request["data"]), Path(scratch), SIZES[request["size"]])
        timings = input_figures(bench, log=lambda _: None)
    Path(request["out"]).write_text(json.dumps({name: asdict(timing) for name, timing in timings.items()}))


def snakemake_noop(workflow_dir: Path | None) -> Timing | None:
    """Wall time of `snakemake -n` in a folder holding a finished run (None when there is none to time)."""
    if workflow_dir is None or not (workflow_dir / "Snakefile").exists():
        return None
    command = [sys.executable, "-m", "snakemake", "-n", "--cores", "1"]
    before, wall = os.times(), time.perf_counter()
    result = subprocess.run(command, cwd=workflow_dir, capture_output=True, text=True)
    after = os.times()
    child_cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    timing = Timing(1, time.perf_counter() - wall, child_cpu)
    if result.returncode != 0:
        raise RuntimeError(f"snakemake -n failed in {workflow_dir}:\n{result.stderr[-2000:]}")
    if "Nothing to be done" not in result.stdout + result.stderr:
        raise RuntimeError(f"{workflow_dir} is not a finished run: snakemake -n plans jobs:\n{result.stdout[-2000:]}")
    return timing


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    import librosa

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"cpu": cpu, "cores": str(usable_cpu_count()), "accelerator": accelerator_name(),
            "python": platform.python_version(), "backend": backend_summary(), "backend library": backend_version(),
            "numpy": np.__version__, "librosa": librosa.__version__, "platform": platform.platform()}


def table(results: dict[str, Any]) -> str:
    """The measurements as a Markdown table, then the ratios."""
    rows = [("figure", "items", "wall s", "per second", "per CPU-second")]
    for name, timing in results["timings"].items():
        rows.append((name, str(timing["items"]), f"{timing['wall_seconds']:.2f}",
                     f"{timing['per_second']:.2f}", f"{timing['per_cpu_second']:.2f}"))
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(rows[0]))
    lines += ["", "| ratio | value |", "|---|---|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in results["ratios"].items()]
    return "\n".join(lines)


def ratios(timings: dict[str, Timing]) -> dict[str, float]:
    """Side-by-side ratios of the figures measured in this run."""
    out: dict[str, float] = {}

    def put(name: str, over: str, under: str, attribute: str = "per_cpu_second") -> None:
        if over in timings and under in timings:
            out[name] = getattr(timings[over], attribute) / getattr(timings[under], attribute)

    train, validation = "pipeline train (aug + log-mel)", "pipeline validation (log-mel)"
    put("train input, pipeline / reference, per core", train + ONE_CORE, "reference train (aug)" + ONE_CORE)
    put("validation input, pipeline / reference, per core", validation + ONE_CORE, "reference validation" + ONE_CORE)
    put("train input with train.mel_power_cache, pipeline / reference, per core", MEL_PIPELINE + ONE_CORE,
        "reference train (aug)" + ONE_CORE)
    put("train input, pipeline / reference, total", train, "reference train (aug)", "per_second")
    put("train input, pipeline / reference, per CPU-second on every core", train, "reference train (aug)")
    put("training, real input / constant input", "train step, real augmented input", "train step, constant input",
        "per_second")
    put("inference, whole / decode only", "inference: decode + windows + predict", "inference: decode only",
        "per_second")
    put("inference, whole / predict only", "inference: decode + windows + predict", "inference: predict only",
        "per_second")
    return out


def run(config_path: Path | None, *, size: str = "full", data: Path | None = None, workflow_dir: Path | None = None,
        json_out: Path | None = None, markdown_out: Path | None = None, overrides: dict[str, Any] | None = None,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure everything, print the table and write it as JSON (and Markdown); returns the results."""
    config = load_config(config_path, overrides)
    data = Path(data) if data else configured_data_dir(config)
    if not (data / "train_tp.csv").exists():
        raise FileNotFoundError(f"{data}: no dataset there (run `make demo` or `rfcx synth --out {data}` first)")
    timings = {}
    if SIZES[size].one_core:
        log("measuring the input figures on one core (a child process pinned to one CPU) ...")
        timings = {name + ONE_CORE: timing for name, timing in one_core_input_figures(config, data, size).items()}
    with tempfile.TemporaryDirectory(prefix="rfcx-bench-") as scratch:
        bench = Bench(config, data, Path(scratch), SIZES[size])
        timings.update(input_figures(bench, log))
        log("measuring training throughput ...")
        training = bench.training()
        for key, name in (("real", "train step, real augmented input"), ("constant", "train step, constant input")):
            timings[name] = training[key]
            log_timing(name, timings[name], log)
        log("measuring test inference ...")
        for key, timing in bench.inference().items():
            label = {"whole": "decode + windows + predict", "decode": "decode only", "predict": "predict only"}[key]
            timings[f"inference: {label}"] = timing
            log_timing(f"inference: {label}", timing, log)
    noop = snakemake_noop(workflow_dir)
    if noop is not None:
        timings["snakemake -n on a finished run"] = noop
    results = {
        "machine": machine(), "size": size, "config": str(config_path), "data": str(data),
        "window_seconds": config["windows"]["window_seconds"], "train_batch_size": config["train"]["batch_size"],
        "timings": {name: {**asdict(timing), "per_second": timing.per_second, "per_cpu_second": timing.per_cpu_second}
                    for name, timing in timings.items()},
        "ratios": ratios(timings),
    }
    text = table(results)
    log(text)
    if json_out:
        Path(json_out).write_text(json.dumps(results, indent=2) + "\n")
    if markdown_out:
        Path(markdown_out).write_text(markdown_report(results, text))
    return results


def markdown_report(results: dict[str, Any], text: str) -> str:
    """benchmarks/RESULTS.md: the table with the machine it was measured on."""
    machine_lines = "\n".join(f"- {key}: {value}" for key, value in results["machine"].items())
    return (f"# rfcx bench: latest measured results\n\nProduced by `rfcx bench --size {results['size']}` "
            f"(config {results['config']}, data {results['data']}, {results['window_seconds']} s windows, "
            f"training batch {results['train_batch_size']}).\n\nMachine:\n{machine_lines}\n\n{text}\n")
