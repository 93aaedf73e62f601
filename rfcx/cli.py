"""The `rfcx` command line: the workflow's stages by hand, the synthetic data generator and the benchmarks.

Most users run the whole pipeline with `snakemake`; these subcommands are for a single step (`rfcx synth`,
`rfcx validate`, `rfcx train --fold K`), for detection on new recordings (`rfcx detect`) and for measurements
(`rfcx bench`, `rfcx bench-cache`, `rfcx quality`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from rfcx.pipeline.allocator import keep_freed_memory
from rfcx.pipeline.threads import usable_cpu_count

Command = Callable[[argparse.Namespace], int]


def _synth(args: argparse.Namespace) -> int:
    from rfcx.data.synth import generate_dataset

    summary = generate_dataset(args.out, scale=args.scale, seed=args.seed, workers=args.workers,
                               progress=not args.quiet)
    print(summary)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from rfcx.data.dataset import DatasetError, load_dataset

    try:
        dataset = load_dataset(args.data_dir, decode_audio=args.decode)
    except DatasetError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{args.data_dir}: valid: {len(dataset.train_ids)} train and {len(dataset.test_ids)} test recordings, "
          f"{len(dataset.tp)} tp and {len(dataset.fp)} fp boxes")
    return 0


def _train(args: argparse.Namespace) -> int:
    from rfcx.pipeline import stages
    from rfcx.pipeline.config import load_config

    config = load_config(args.config)
    data = Path(config["results_dir"]) / "data"
    needed = [data / "windows.parquet", data / "waveforms.npy", data / "waveform_index.parquet"]
    missing = [str(path) for path in needed if not path.exists()]
    if missing:
        print(f"missing {missing}: build them first with `snakemake {data}/waveforms.npy`", file=sys.stderr)
        return 1
    out_dir = args.out or Path(config["results_dir"]) / "models" / f"fold{args.fold}"
    history = stages.train(*needed, out_dir, config=config, fold=args.fold)
    print(history.tail(1).to_string(index=False))
    return 0


def _bench_cache(args: argparse.Namespace) -> int:
    from rfcx.bench.cache_read import run

    run(args.data_dir, batch_size=args.batch_size, repeats=args.repeats, work_dir=args.work_dir)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from rfcx.bench.throughput import run

    run(args.config, size=args.size, data=args.data_dir, workflow_dir=args.workflow_dir, json_out=args.json,
        markdown_out=args.markdown, overrides=yaml_settings(args.set))
    return 0


def yaml_settings(path: Path | None) -> dict:
    """The settings of a `--set` YAML file (config sections to merge over another config), or none."""
    import yaml

    return (yaml.safe_load(path.read_text()) if path else None) or {}


def _quality(args: argparse.Namespace) -> int:
    from rfcx.bench.quality import Budget, recipes, run

    names = list(recipes()) if args.recipes == "all" else args.recipes.split(",")
    budget = Budget(scale=args.scale, seed=args.seed, data_dir=args.data_dir, folds=args.folds, epochs=args.epochs,
                    steps_per_epoch=args.steps, batch_size=args.batch_size, extra=yaml_settings(args.set))
    outcomes = run(names, budget, args.work_dir, cores=args.cores, markdown=args.markdown, json_path=args.json,
                   note=args.note)
    return 1 if any(outcome.error for outcome in outcomes) else 0


def _detect(args: argparse.Namespace) -> int:
    from rfcx.prediction.detect import DetectOptions, build_detector, detect_folder, run_detector

    options = DetectOptions(window_seconds=args.window_seconds, hop_seconds=args.hop_seconds, min_score=args.min_score,
                            merge_gap=args.merge_gap, batch_size=args.batch_size, chunk_seconds=args.chunk_seconds,
                            force=args.force, progress=not args.quiet)
    if (args.models is None) == (args.results is None):
        raise SystemExit("rfcx detect: give --results (a finished run's results folder) or --models, not both")
    detector = run_detector(args.results) if args.results else build_detector(args.models)
    report = detect_folder(detector, args.input, args.output, options, bands_csv=args.bands, train_tp=args.train_tp,
                           include=args.include, exclude=args.exclude)
    print(report.throughput())
    if report.failed:
        print(f"{report.failed} file(s) could not be read; see {args.output / 'failures.csv'}", file=sys.stderr)
    return 1 if report.failed else 0


def _bench_probe(args: argparse.Namespace) -> int:
    from rfcx.bench.probe_settings import sweep

    def numbers(text: str, kind: type) -> list:
        return [kind(value) for value in text.split(",")]

    table = sweep(args.results, args.data_dir, cs=numbers(args.c, float), overlaps=numbers(args.min_box_overlap, float),
                  every=numbers(args.every, int), contexts=numbers(args.context, int))
    print(table.sort_values("oof_recordings_lwlrap", ascending=False).to_string(index=False, float_format="%.4f"))
    return 0


def _bench_embedding(args: argparse.Namespace) -> int:
    import pandas as pd

    from rfcx.bench.embedding_speed import measure

    rows = measure(args.data_dir, recordings=args.recordings, hop_seconds=args.hop_seconds, workers=args.workers)
    table = pd.DataFrame(rows)
    base = table.windows_per_s.iloc[0]
    table["vs_rfcx"] = table.windows_per_s / base
    print(table.to_string(index=False, float_format="%.2f"))
    return 0


def _bench_detect(args: argparse.Namespace) -> int:
    from rfcx.bench.detect_archive import run

    return run(args.results, markdown_path=args.markdown, files_per_site=args.files_per_site, minutes=args.minutes,
               work_dir=args.work_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rfcx", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="write the synthetic dataset in the Kaggle layout")
    synth.add_argument("--scale", default="demo", help="tiny | demo | hard | full")
    synth.add_argument("--out", type=Path, required=True, help="folder to create")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(run=_synth)

    validate = commands.add_parser("validate", help="check a dataset folder and list every problem")
    validate.add_argument("data_dir", type=Path)
    validate.add_argument("--decode", action=argparse.BooleanOptionalAction, default=True,
                          help="decode every recording fully, as the workflow does (--no-decode: headers only, "
                          "faster, but a truncated file passes)")
    validate.set_defaults(run=_validate)

    train = commands.add_parser("train", help="train one fold on the workflow's windows and cache")
    train.add_argument("--fold", type=int, required=True)
    train.add_argument("--config", type=Path, default=Path("config.yaml"))
    train.add_argument("--out", type=Path, default=None, help="default: <results_dir>/models/fold<K>")
    train.set_defaults(run=_train)

    bench = commands.add_parser("bench-cache", help="time a batch read from the waveform cache vs whole-FLAC decode")
    bench.add_argument("data_dir", type=Path)
    bench.add_argument("--batch-size", type=int, default=32)
    bench.add_argument("--repeats", type=int, default=5)
    bench.add_argument("--work-dir", type=Path, default=None, help="where the cache is built (default: a temp dir)")
    bench.set_defaults(run=_bench_cache)

    bench = commands.add_parser("bench", help="input pipeline, training and inference throughput vs the reference")
    bench.add_argument("--config", type=Path, default=Path("config.yaml"), help="settings to measure with")
    bench.add_argument("--size", choices=("tiny", "full", "gpu"), default="full",
                       help="tiny: a smoke test in seconds; gpu: larger batches and 1,992 test recordings")
    bench.add_argument("--set", type=Path, default=None,
                       help="YAML of settings merged over --config, section by section (benchmarks/gpu.yaml)")
    bench.add_argument("--data-dir", type=Path, default=None, help="default: the config's dataset")
    bench.add_argument("--workflow-dir", type=Path, default=None,
                       help="a finished workflow run, to time `snakemake -n` there")
    bench.add_argument("--json", type=Path, default=None, help="write the results here as JSON")
    bench.add_argument("--markdown", type=Path, default=None, help="write the table here (benchmarks/RESULTS.md)")
    bench.set_defaults(run=_bench)

    probe = commands.add_parser("bench-probe", help="the probe's settings side by side, out of fold, on a finished "
                                "run's embeddings")
    probe.add_argument("--results", type=Path, required=True, help="a run's results folder with embeddings/")
    probe.add_argument("--data-dir", type=Path, required=True, help="its dataset (for the tp boxes)")
    probe.add_argument("--c", default="0.01,0.03,0.1,0.3,1", help="inverse regularisation strengths to try")
    probe.add_argument("--min-box-overlap", default="0.5", help="box fill shares to try")
    probe.add_argument("--every", default="1,2", help="grid thinning: 2 scores a grid of twice the run's hop")
    probe.add_argument("--context", default="0,1,2", help="neighbouring windows on each side to try (probe.context)")
    probe.set_defaults(run=_bench_probe)

    speed = commands.add_parser("bench-embedding", help="embedding throughput: rfcx's way and the usual ones, side "
                                "by side (needs requirements-embedding.txt)")
    speed.add_argument("data_dir", type=Path, help="a dataset whose train/*.flac are timed")
    speed.add_argument("--recordings", type=int, default=12)
    speed.add_argument("--hop-seconds", type=float, default=1.5)
    speed.add_argument("--workers", type=int, default=2)
    speed.set_defaults(run=_bench_embedding)

    archive = commands.add_parser("bench-detect", help="detection over an archive: throughput per core, 1 vs 2 shards "
                                  "side by side, peak memory on a 2-hour file and a 500-file tree")
    archive.add_argument("--results", type=Path, required=True, help="a finished run's results folder")
    archive.add_argument("--files-per-site", type=int, default=6, help="recordings per site (2 sites)")
    archive.add_argument("--minutes", type=float, default=10.0, help="length of each recording")
    archive.add_argument("--work-dir", type=Path, default=None, help="where the archive is made (default: a temp dir)")
    archive.add_argument("--markdown", type=Path, default=None, help="write the table here (benchmarks/DETECT.md)")
    archive.set_defaults(run=_bench_detect)

    quality = commands.add_parser("quality", help="reference recipe vs default (and ablations): LWLRAP side by side")
    quality.add_argument("--recipes", default="reference,default",
                         help="comma-separated recipe names, or 'all' (reference, default and every ablation)")
    quality.add_argument("--scale", default="hard", help="synthetic dataset scale: tiny | demo | hard | full")
    quality.add_argument("--data-dir", default=None, help="a dataset of your own (Kaggle layout, with test_truth.csv "
                         "to score test) instead of the synthetic one")
    quality.add_argument("--seed", type=int, default=0, help="dataset, folds and training seed")
    quality.add_argument("--folds", type=int, default=None, help="default: config.yaml's")
    quality.add_argument("--epochs", type=int, default=None, help="default: config.yaml's")
    quality.add_argument("--steps", type=int, default=None, help="steps per epoch; default: config.yaml's")
    quality.add_argument("--batch-size", type=int, default=None, help="default: config.yaml's")
    quality.add_argument("--set", type=Path, default=None, help="YAML of further settings shared by every recipe")
    quality.add_argument("--cores", type=int, default=usable_cpu_count())
    quality.add_argument("--work-dir", type=Path, default=Path("benchmarks/quality-runs"),
                         help="one workflow folder per recipe, and the shared dataset")
    quality.add_argument("--markdown", type=Path, default=Path("benchmarks/QUALITY.md"))
    quality.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    quality.add_argument("--note", default="", help="a line written at the top of the Markdown report")
    quality.set_defaults(run=_quality)

    detect = commands.add_parser("detect", help="score new recordings with the fold models and list detections")
    detect.add_argument("--results", type=Path, default=None,
                        help="a finished run's results folder: its model families, blended as the run chose")
    detect.add_argument("--models", type=Path, default=None, help="the CNN alone: a .keras file, or a folder of "
                        "*/model.keras")
    detect.add_argument("--input", type=Path, required=True,
                        help="an audio file, or a folder of them at any depth (outputs mirror the subfolders)")
    detect.add_argument("--include", action="append", default=[], metavar="GLOB",
                        help="take only files whose relative path or name matches (repeatable; * crosses folders)")
    detect.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="leave out files whose relative path or name matches (repeatable)")
    detect.add_argument("--output", type=Path, required=True, help="folder for the results")
    detect.add_argument("--window-seconds", type=float, default=None, help="default: the models' input length")
    detect.add_argument("--hop-seconds", type=float, default=None, help="default: half the window")
    detect.add_argument("--min-score", type=float, default=0.5, help="window score that counts as a detection")
    detect.add_argument("--merge-gap", type=float, default=0.0, help="merge same-species detections this close (s)")
    detect.add_argument("--batch-size", type=int, default=64)
    detect.add_argument("--chunk-seconds", type=float, default=60.0, help="audio decoded at a time")
    detect.add_argument("--bands", type=Path, default=None, help="CSV species_id,f_min,f_max for Raven boxes")
    detect.add_argument("--train-tp", type=Path, default=None, help="train_tp.csv: median band per species")
    detect.add_argument("--force", action="store_true", help="redo recordings whose outputs exist")
    detect.add_argument("--quiet", action="store_true", help="no progress bars")
    detect.set_defaults(run=_detect)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # before any command's TensorFlow work (rfcx.pipeline.allocator)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
