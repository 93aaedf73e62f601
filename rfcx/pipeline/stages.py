"""One function per workflow stage: read the stage's input files, call the library, write its outputs atomically.

The Snakemake scripts and the `rfcx` command line both call these, so a stage behaves the same however it is run.
Every function takes plain paths and config sections (what a Snakemake rule passes as input/params/output).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rfcx.constants import N_SPECIES, SPECIES_COLUMNS, TARGET_COLUMNS
from rfcx.data.dataset import load_dataset
from rfcx.io import write_csv, write_json, write_parquet


def validate(data_dir: str | Path, summary_path: str | Path, *, decode_audio: bool = True) -> dict[str, Any]:
    """Validate the dataset (raises DatasetError listing every problem) and write a summary of what it holds."""
    dataset = load_dataset(data_dir, check_audio=True, decode_audio=decode_audio)
    summary = {
        "data_dir": str(Path(data_dir).resolve()),
        "train_recordings": len(dataset.train_ids),
        "test_recordings": len(dataset.test_ids),
        "tp_boxes": len(dataset.tp),
        "fp_boxes": len(dataset.fp),
        "tp_boxes_per_species": {f"s{s}": int((dataset.tp.species_id == s).sum()) for s in range(N_SPECIES)},
        "has_test_truth": dataset.test_truth is not None,
    }
    write_json(summary, summary_path)
    return summary


def split_folds(data_dir: str | Path, folds_path: str | Path, *, n_folds: int, seed: int) -> pd.DataFrame:
    """Assign train recordings to folds and write folds.parquet (recording_id, fold)."""
    from rfcx.data.folds import split_folds as assign

    dataset = load_dataset(data_dir, check_audio=False)
    folds = assign(dataset.tp, dataset.fp, n_folds, seed)
    write_parquet(folds, folds_path)
    return folds


def crop_windows(data_dir: str | Path, folds_path: str | Path, windows_path: str | Path, *,
                 windows: dict[str, Any], seed: int) -> pd.DataFrame:
    """Cut training windows around the boxes and write windows.parquet (schema in rfcx.data.windows)."""
    from rfcx.data.windows import crop_windows as crop

    dataset = load_dataset(data_dir, check_audio=False)
    table = crop(dataset.tp, dataset.fp, pd.read_parquet(folds_path), window_seconds=windows["window_seconds"],
                 min_box_overlap=windows["min_box_overlap"], fp_window_fraction=windows["fp_window_fraction"],
                 seed=seed)
    write_parquet(table, windows_path)
    return table


def build_cache(data_dir: str | Path, windows_path: str | Path, cache_path: str | Path, index_path: str | Path, *,
                margin_seconds: float, sample_rate: int) -> None:
    """Decode every window once into the waveform cache (.npy) and write its index (.parquet)."""
    from rfcx.data.cache import build_cache as build
    from rfcx.data.dataset import recording_path

    index = build(pd.read_parquet(windows_path), lambda rid: recording_path(Path(data_dir), "train", rid),
                  cache_path, margin_seconds=margin_seconds, sample_rate=sample_rate)
    write_parquet(index, index_path)


def open_cache(cache_path: str | Path, index_path: str | Path, features: dict[str, Any], window_seconds: float):
    """The waveform cache for reading windows of `window_seconds`."""
    from rfcx.data.audio import samples
    from rfcx.data.cache import WaveformCache

    return WaveformCache(Path(cache_path), pd.read_parquet(index_path), samples(window_seconds, features["sample_rate"]))


def train(windows_path: str | Path, cache_path: str | Path, index_path: str | Path, out_dir: str | Path, *,
          config: dict[str, Any], fold: int, pseudo: tuple[str | Path, str | Path, str | Path] | None = None
          ) -> pd.DataFrame:
    """Train one fold; writes model.keras and history.csv into out_dir. `pseudo` (stage 2): the paths of the
    fold's pseudo-labelled windows, their cache and its index, trained on beside the labelled windows."""
    from rfcx.training.train import train_fold

    cache = open_cache(cache_path, index_path, config["features"], config["windows"]["window_seconds"])
    extra = None
    if pseudo is not None:
        from rfcx.training.pseudo import with_pseudo_windows

        pseudo_path, pseudo_cache_path, pseudo_index_path = pseudo
        pseudo_cache = open_cache(pseudo_cache_path, pseudo_index_path, config["features"],
                                  config["windows"]["window_seconds"])
        cache, extra = with_pseudo_windows(cache, pd.read_parquet(pseudo_path), pseudo_cache)
        print(f"stage 2: {len(extra)} pseudo-labelled windows beside the labelled ones", file=sys.stderr)
    return train_fold(pd.read_parquet(windows_path), cache, config, fold, out_dir, pseudo=extra)


def predict_oof(model_path: str | Path, windows_path: str | Path, cache_path: str | Path, index_path: str | Path,
                oof_path: str | Path, *, fold: int, features: dict[str, Any], window_seconds: float,
                batch_size: int, crop_shifts_seconds: list[float] | tuple[float, ...] = (0.0,)) -> pd.DataFrame:
    """Score fold `fold`'s validation windows (those centred on a tp call) with that fold's model; write window, fold,
    truth t* and scores s*.
    Each window's score is the mean over crops shifted by `crop_shifts_seconds` (see predict_cached_windows)."""
    from rfcx.data.audio import samples
    from rfcx.data.windows import label_matrix
    from rfcx.model.detector import load_detector
    from rfcx.prediction.predict import predict_cached_windows

    windows = pd.read_parquet(windows_path)
    held_out = windows[(windows.fold == fold) & (windows.source != "fp")]  # the calls, as training validates on
    cache = open_cache(cache_path, index_path, features, window_seconds)
    shifts = [samples(shift, features["sample_rate"]) for shift in crop_shifts_seconds]
    scores = predict_cached_windows(load_detector(model_path), cache, held_out.window_id.to_numpy(), batch_size,
                                    shifts)
    oof = held_out[["window_id", "recording_id", "fold", "start", "end", "species_id"]].reset_index(drop=True)
    truth = pd.DataFrame(label_matrix(held_out), columns=list(TARGET_COLUMNS))
    oof = pd.concat([oof, truth, pd.DataFrame(scores, columns=list(SPECIES_COLUMNS))], axis=1)
    write_parquet(oof, oof_path)
    return oof


def predict_oof_recordings(model_path: str | Path, data_dir: str | Path, folds_path: str | Path,
                           out_path: str | Path, *, fold: int, features: dict[str, Any], window_seconds: float,
                           predict: dict[str, Any]) -> pd.DataFrame:
    """Fold `fold`'s held-out train recordings scored whole, as the test recordings are (sliding windows, pooled per
    recording), by the fold's model that never saw them: one row per recording with fold, truth t0..t23 (species
    with a tp box there, rfcx.prediction.scoring.recording_truth) and scores s0..s23. The call-centred OOF windows
    never show a model the background between calls, where its false alarms arise; this is the cross-validated
    estimate of the competition's task, on training data only."""
    from rfcx.prediction.scoring import recording_truth

    dataset = load_dataset(data_dir, check_audio=False)
    folds = pd.read_parquet(folds_path)
    paths = {rid: dataset.train_path(rid) for rid in folds.recording_id[folds.fold == fold]}
    _, pooled = whole_recording_scores(model_path, paths, features=features, window_seconds=window_seconds,
                                       predict=predict, what=f"fold {fold}'s train recordings")
    truth = pd.DataFrame(recording_truth(dataset.tp, pooled.recording_id.to_numpy()), columns=list(TARGET_COLUMNS))
    scored = pd.concat([pooled[["recording_id"]].assign(fold=fold), truth, pooled[list(SPECIES_COLUMNS)]], axis=1)
    write_parquet(scored, out_path)
    return scored


def score_oof(oof_paths: list[str | Path], scores_path: str | Path, table_path: str | Path,
              per_species_plot: str | Path, recording_paths: list[str | Path] | None = None) -> dict[str, Any]:
    """OOF LWLRAP overall, per fold and per species: scores.json, a per-fold table (CSV) and a bar chart. With
    `recording_paths` (predict_oof_recordings' outputs), the same scores of whole held-out recordings too, under
    "recordings" in scores.json and as a second column of the table."""
    from rfcx.pipeline.plots import plot_per_species
    from rfcx.prediction.scoring import score_oof as score

    def scored(paths: list[str | Path]) -> dict[str, Any]:
        return score(pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True))

    scores = scored(oof_paths)
    table = pd.DataFrame({"fold": list(scores["per_fold"]) + ["all"],
                          "lwlrap": list(scores["per_fold"].values()) + [scores["lwlrap"]]})
    if recording_paths:
        whole = scores["recordings"] = scored(recording_paths)
        table["recording_lwlrap"] = [whole["per_fold"].get(fold) for fold in scores["per_fold"]] + [whole["lwlrap"]]
    write_json(scores, scores_path)
    write_csv(table, table_path)
    plot_per_species(scores, per_species_plot, title="Out-of-fold LWLRAP per species")
    return scores


def sliding_scores(model_path: str | Path, paths: dict[str, Path], *, features: dict[str, Any],
                   window_seconds: float, hop_seconds: float, batch_size: int, what: str) -> pd.DataFrame:
    """Sliding-window scores of whole recordings with one saved model, with a progress bar in the log."""
    from tqdm import tqdm

    from rfcx.model.detector import load_detector
    from rfcx.prediction.predict import predict_recordings

    with tqdm(total=len(paths), desc=what, unit="rec", file=sys.stderr) as bar:
        return predict_recordings(load_detector(model_path), paths, sample_rate=features["sample_rate"],
                                  window_seconds=window_seconds, hop_seconds=hop_seconds, batch_size=batch_size,
                                  progress=bar.update)


def whole_recording_scores(model_path: str | Path, paths: dict[str, Path], *, features: dict[str, Any],
                           window_seconds: float, predict: dict[str, Any], what: str
                           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Whole recordings scored as the submission scores them: sliding windows at ``predict.hop_seconds``, then
    pooled per recording by ``predict.pooling``. One function for the test recordings and the held-out train
    recordings, so the cross-validated recording-level score measures exactly what the submission does.
    Returns (per-window scores, per-recording scores)."""
    from rfcx.prediction.submission import pool_recordings

    per_window = sliding_scores(model_path, paths, features=features, window_seconds=window_seconds,
                                hop_seconds=predict["hop_seconds"], batch_size=predict["batch_size"], what=what)
    return per_window, pool_recordings(per_window, predict["pooling"])


def predict_test(model_path: str | Path, data_dir: str | Path, windows_out: str | Path, recordings_out: str | Path,
                 *, features: dict[str, Any], window_seconds: float, predict: dict[str, Any]) -> pd.DataFrame:
    """Sliding-window scores of every test recording with one fold's model: per window and pooled per recording."""
    dataset = load_dataset(data_dir, check_audio=False)
    paths = {rid: dataset.test_path(rid) for rid in dataset.test_ids}
    per_window, pooled = whole_recording_scores(model_path, paths, features=features, window_seconds=window_seconds,
                                                predict=predict, what="test recordings")
    write_parquet(per_window, windows_out)
    write_parquet(pooled, recordings_out)
    return pooled


def predict_unlabelled(model_path: str | Path, data_dir: str | Path, folds_path: str | Path, scores_out: str | Path,
                       *, fold: int, features: dict[str, Any], window_seconds: float, batch_size: int) -> pd.DataFrame:
    """Scores of back-to-back windows over the train recordings of every fold but `fold`, with the stage-1 model of
    fold `fold` (the one that never saw fold `fold`): the raw material of stage-2 fold `fold`'s pseudo-labels."""
    dataset = load_dataset(data_dir, check_audio=False)
    folds = pd.read_parquet(folds_path)
    paths = {rid: dataset.train_path(rid) for rid in folds.recording_id[folds.fold != fold]}
    per_window = sliding_scores(model_path, paths, features=features, window_seconds=window_seconds,
                                hop_seconds=window_seconds, batch_size=batch_size, what="train recordings")
    write_parquet(per_window, scores_out)
    return per_window


def pseudo_label(scores_path: str | Path, data_dir: str | Path, folds_path: str | Path, pseudo_path: str | Path, *,
                 fold: int, settings: dict[str, Any], min_box_overlap: float) -> pd.DataFrame:
    """Stage-2 fold `fold`'s pseudo-labelled windows (rfcx.training.pseudo) from predict_unlabelled's scores."""
    from rfcx.training.pseudo import pseudo_label as select

    dataset = load_dataset(data_dir, check_audio=False)
    pseudo = select(pd.read_parquet(scores_path), dataset.tp, dataset.fp, pd.read_parquet(folds_path), fold=fold,
                    threshold=settings["threshold"], low_threshold=settings["low_threshold"],
                    max_windows=settings["max_windows"], min_box_overlap=min_box_overlap)
    calling = int((pseudo.species_id >= 0).sum())
    print(f"fold {fold}: {len(pseudo)} pseudo-labelled windows ({calling} with a confident call)", file=sys.stderr)
    write_parquet(pseudo, pseudo_path)
    return pseudo


def calibrate(oof_paths: list[str | Path], calibration_path: str | Path, scores_path: str | Path, *,
              method: str, min_positives: int) -> dict[str, Any]:
    """Fit the per-species calibration on every fold's OOF predictions (calibration.json), and score OOF LWLRAP
    before and after it with a cross-fitted estimate (each fold calibrated by maps fitted on the other folds)."""
    from rfcx.model.metrics import lwlrap
    from rfcx.prediction.calibration import cross_fitted, fit_calibration

    oof = pd.concat([pd.read_parquet(path) for path in oof_paths], ignore_index=True)
    truth = oof[list(TARGET_COLUMNS)].to_numpy(dtype=np.float64)
    raw = oof[list(SPECIES_COLUMNS)].to_numpy(dtype=np.float64)
    folds = oof.fold.to_numpy()
    calibration = fit_calibration(truth, raw, method, min_positives)
    write_json(calibration.to_dict(), calibration_path)
    calibrated = cross_fitted(truth, raw, folds, method, min_positives)
    per_fold = {int(fold): {"raw": lwlrap(truth[folds == fold], raw[folds == fold]),
                            "calibrated": lwlrap(truth[folds == fold], calibrated[folds == fold])}
                for fold in np.unique(folds)}
    scores = {"method": method, "estimate": "cross-fitted: each fold calibrated by maps fitted on the other folds",
              "oof_lwlrap_raw": lwlrap(truth, raw), "oof_lwlrap_calibrated": lwlrap(truth, calibrated),
              "per_fold": per_fold, "fitted_species": sum(fit.fitted for fit in calibration.species)}
    write_json(scores, scores_path)
    return scores


def ensemble(fold_paths: list[str | Path], data_dir: str | Path, submission_path: str | Path,
             test_scores_path: str | Path, *, method: str, calibration_path: str | Path | None = None) -> pd.DataFrame:
    """Ensemble the folds into submission.csv (checked against sample_submission), and score it when the dataset
    has test_truth.csv (test_scores.json holds null otherwise). With `calibration_path`, the fold-mean
    probabilities are calibrated before they are written, and the uncalibrated test score is kept beside the
    submission's for comparison (test truth only scores, it never fits anything)."""
    from rfcx.prediction.scoring import score_submission
    from rfcx.prediction.submission import ensemble as combine, make_submission

    dataset = load_dataset(data_dir, check_audio=False)
    combined = combine([pd.read_parquet(path) for path in fold_paths], method)
    scores: dict[str, Any] = {}
    if calibration_path is not None:
        import json

        from rfcx.prediction.calibration import Calibration

        if method != "mean":
            raise ValueError(f"calibration maps probabilities, but ensemble.method {method!r} gives ranks: "
                             "use ensemble.method: mean with calibration.enabled")
        if dataset.test_truth is not None:
            scores["test_uncalibrated"] = score_submission(make_submission(combined, dataset.sample_submission),
                                                           dataset.test_truth)
        calibration = Calibration.from_dict(json.loads(Path(calibration_path).read_text()))
        combined[list(SPECIES_COLUMNS)] = calibration.apply(combined[list(SPECIES_COLUMNS)].to_numpy())
    submission = make_submission(combined, dataset.sample_submission)
    write_csv(submission, submission_path)
    scores["test"] = score_submission(submission, dataset.test_truth) if dataset.test_truth is not None else None
    write_json(scores, test_scores_path)
    return submission



def plot_training(history_paths: list[str | Path], figure_path: str | Path, low_res_epochs: int = 0) -> None:
    """Training curves (loss and LWLRAP, training and validation) of every fold in one figure."""
    from rfcx.pipeline.plots import plot_histories

    histories = {int(Path(path).parent.name.removeprefix("fold")): pd.read_csv(path) for path in history_paths}
    plot_histories(histories, figure_path, low_res_epochs)


def plot_augmentations(windows_path: str | Path, cache_path: str | Path, index_path: str | Path,
                       figure_path: str | Path, *, features: dict[str, Any], augment: list[dict[str, Any]],
                       window_seconds: float, seed: int) -> None:
    """The log-mel of one training window as the model sees it, and again after each configured augmentation."""
    from rfcx.model.detector import band_floor, build_front_end, noise_gate
    from rfcx.model.recipe import each_augmentation_alone
    from rfcx.pipeline.plots import plot_mel_grid

    cache = open_cache(cache_path, index_path, features, window_seconds)
    waveform = cache.read(np.array([0]))
    front_end = build_front_end(features)
    original = front_end(waveform)
    images = {"original": np.asarray(original)[0, :, :, 0]}
    floor = band_floor(features)
    if floor is not None:  # not augmentations: what every window looks like before the scaling
        floored = floor(original)
        images[f"band floor subtracted\n(quantile {floor.quantile})"] = np.asarray(floored)[0, :, :, 0]
        gate = noise_gate(features)
        if gate is not None:
            images[f"noise gate\n({gate.gate_db:g} dB above the floor)"] = np.asarray(gate(floored))[0, :, :, 0]
    for leaf, stages in each_augmentation_alone(augment, features, seed):
        audio = waveform
        if stages.host is not None:
            audio = stages.host(audio[0], np.random.default_rng(seed))[None].astype(np.float32)
        if stages.waveform is not None:
            audio = stages.waveform(audio, training=True)
        image = build_front_end(features, stages.power)(audio, training=True)
        if stages.spectrogram is not None:
            image = stages.spectrogram(image, training=True)
        label = leaf["type"] + "".join(f"\n{key}={value}" for key, value in leaf.items()
                                       if key not in ("type", "p", "always_apply"))
        images[label] = np.asarray(image)[0, :, :, 0]
    plot_mel_grid(images, figure_path, title="One training window, log-mel (dB), with each augmentation alone")


def summarise(submission_path: str | Path, oof_paths: dict[str, str | Path], test_path: str | Path,
              preview_path: str | Path, summary_path: str | Path, preview_rows: int = 20,
              calibration_scores_path: str | Path | None = None, blend_path: str | Path | None = None,
              oof_crops: int = 1) -> str:
    """The first rows of the submission for the report, and a short text summary of the scores and outputs.
    `oof_paths`: each model family's out-of-fold scores (scores/oof.json for the CNN); with one family, the CNN,
    the summary gives its folds, the calibration's cross-fitted estimate when the run calibrates, and `oof_crops`
    (how many shifted crops each OOF window's score averages); with `blend_path` (several families, or the probe),
    a table of each family and the blend side by side."""
    import json

    from rfcx.io import atomic_path

    write_csv(pd.read_csv(submission_path).head(preview_rows).round(4), preview_path)
    oof_scores = {family: json.loads(Path(path).read_text()) for family, path in oof_paths.items()}
    test_scores = json.loads(Path(test_path).read_text())
    if blend_path is not None:
        lines = _families_table(oof_scores, test_scores, json.loads(Path(blend_path).read_text()))
        lines.append(f"submission:  {Path(submission_path).resolve()}")
    else:
        lines = _cnn_summary(oof_scores["cnn"], test_scores, submission_path, calibration_scores_path, oof_crops)
    text = "\n".join(lines) + "\n"
    with atomic_path(summary_path) as partial:
        partial.write_text(text)
    return text


def _cnn_summary(oof: dict[str, Any], test_scores: dict[str, Any], submission_path: str | Path,
                 calibration_scores_path: str | Path | None, oof_crops: int) -> list[str]:
    """Summary lines of a run of the CNN alone: OOF windows and whole recordings with their folds, test, and the
    calibration's estimate when the run calibrates."""
    import json

    test = test_scores["test"]

    def per_fold(scores: dict[str, Any]) -> str:
        return ", ".join(f"fold {fold}: {score:.4f}" for fold, score in scores["per_fold"].items())

    lines = [
        f"OOF LWLRAP:  {oof['lwlrap']:.4f}  ({per_fold(oof)}; {oof['n']} windows"
        + (f", each the mean of {oof_crops} shifted crops)" if oof_crops > 1 else ")"),
        f"test LWLRAP: {test['lwlrap']:.4f}  ({test['n']} recordings)" if test else
        "test LWLRAP: unknown (the dataset has no test_truth.csv)",
        f"submission:  {Path(submission_path).resolve()}",
    ]
    if calibration_scores_path is not None:
        calibration = json.loads(Path(calibration_scores_path).read_text())
        lines.insert(1, f"OOF LWLRAP calibrated: {calibration['oof_lwlrap_calibrated']:.4f}  (raw "
                        f"{calibration['oof_lwlrap_raw']:.4f}; cross-fitted over the folds)")
        if test_scores.get("test_uncalibrated"):
            lines.insert(3, f"test LWLRAP before calibration: {test_scores['test_uncalibrated']['lwlrap']:.4f}")
    if "recordings" in oof:
        whole = oof["recordings"]
        lines.insert(1, f"OOF LWLRAP, whole recordings: {whole['lwlrap']:.4f}  ({per_fold(whole)}; {whole['n']} "
                        "held-out train recordings scored as the test ones, against their tp boxes' species)")
    return lines


def embed(data_dir: str | Path, folds_path: str | Path, outputs: dict[str, str | Path], *,
          settings: dict[str, Any], threads: int) -> None:
    """The embedding family's vectors: every train recording with a fold and every test recording, on the grid of
    `settings["hop_seconds"]`, each computed once (train and test .npy with their Parquet indexes), and the model
    card (model, file sha256, grid, licence). The model and its licence are printed first."""
    from tqdm import tqdm

    from rfcx.model.embedding import announce, embed_recordings, model_card, resolve_model, write_embeddings, \
        write_model_card

    model = resolve_model(settings)
    announce(model)
    dataset = load_dataset(data_dir, check_audio=False)
    folds = pd.read_parquet(folds_path)
    splits = {"train": {rid: dataset.train_path(rid) for rid in folds.recording_id},
              "test": {rid: dataset.test_path(rid) for rid in dataset.test_ids}}
    for split, paths in splits.items():
        with tqdm(total=len(paths), desc=f"embedding {split} recordings", unit="rec", file=sys.stderr) as bar:
            index, vectors = embed_recordings(paths, model, hop_seconds=settings["hop_seconds"], workers=threads,
                                              progress=bar.update)
        write_embeddings(index, vectors, outputs[f"{split}_vectors"], outputs[f"{split}_index"])
    write_model_card(model_card(model, settings["hop_seconds"]), outputs["card"])


def train_probe(vectors_path: str | Path, index_path: str | Path, data_dir: str | Path, folds_path: str | Path,
                probe_path: str | Path, *, fold: int, settings: dict[str, Any]) -> None:
    """Fit fold `fold`'s probe (rfcx.model.probe) on the embeddings of every other fold's recordings."""
    from rfcx.model.embedding import read_embeddings
    from rfcx.model.probe import fit_probe, grid_targets

    dataset = load_dataset(data_dir, check_audio=False)
    folds = pd.read_parquet(folds_path)
    train = read_embeddings(vectors_path, index_path).of(folds.recording_id[folds.fold != fold])
    targets = grid_targets(train.index, dataset.tp, settings["min_box_overlap"])
    probe = fit_probe(train, targets, c=settings["c"], context=settings["context"])
    print(f"fold {fold}: probe fitted on {len(targets)} windows of {train.index.recording_id.nunique()} recordings, "
          f"{int(probe.fitted.sum())} species", file=sys.stderr)
    probe.save(probe_path)


def predict_probe(probe_path: str | Path, train_paths: tuple[str | Path, str | Path],
                  test_paths: tuple[str | Path, str | Path], data_dir: str | Path, folds_path: str | Path,
                  outputs: dict[str, str | Path], *, fold: int, pooling: str, min_box_overlap: float) -> None:
    """Fold `fold`'s probe on what it never saw, written as the CNN's predictions are: the held-out grid windows
    that hold a call (OOF windows: fold, t*, s*), the held-out train recordings whole (pooled over their windows,
    against their tp boxes' species) and every test recording (pooled)."""
    from rfcx.model.embedding import read_embeddings
    from rfcx.model.probe import Probe, grid_targets, score_recordings, window_scores
    from rfcx.prediction.scoring import recording_truth
    from rfcx.prediction.submission import pool_recordings

    dataset = load_dataset(data_dir, check_audio=False)
    folds = pd.read_parquet(folds_path)
    probe = Probe.load(probe_path)
    held_out = read_embeddings(*train_paths).of(folds.recording_id[folds.fold == fold])
    per_window = window_scores(probe, held_out)
    targets = grid_targets(held_out.index, dataset.tp, min_box_overlap)
    calls = np.nan_to_num(targets, nan=0.0).any(axis=1)
    truth = pd.DataFrame(np.nan_to_num(targets[calls], nan=0.0), columns=list(TARGET_COLUMNS))
    oof = pd.concat([held_out.index[calls].reset_index(drop=True).assign(fold=fold), truth,
                     per_window.loc[calls, list(SPECIES_COLUMNS)].reset_index(drop=True)], axis=1)
    write_parquet(oof, outputs["oof"])
    pooled = pool_recordings(per_window, pooling)
    whole_truth = pd.DataFrame(recording_truth(dataset.tp, pooled.recording_id.to_numpy()),
                               columns=list(TARGET_COLUMNS))
    write_parquet(pd.concat([pooled[["recording_id"]].assign(fold=fold), whole_truth,
                             pooled[list(SPECIES_COLUMNS)]], axis=1), outputs["recordings"])
    write_parquet(score_recordings(probe, read_embeddings(*test_paths), pooling), outputs["test"])


def blend(oof_paths: dict[str, list[str | Path]], test_paths: dict[str, list[str | Path]], data_dir: str | Path,
          submission_path: str | Path, test_scores_path: str | Path, blend_path: str | Path, *,
          step: float) -> dict[str, Any]:
    """The submission of several model families: each family's fold mean, weighted by the weights with the best
    out-of-fold whole-recording LWLRAP (rfcx.prediction.blend; test truth is only read to score what was chosen).
    Writes the submission, its test score with each family's beside it (test.json), and the weights with every
    weighting tried and each family's out-of-fold score (blend.json)."""
    from rfcx.prediction.blend import choose_weights, mix
    from rfcx.prediction.scoring import score_submission
    from rfcx.prediction.submission import ensemble as fold_mean, make_submission

    oof = {family: pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)
           for family, paths in oof_paths.items()}
    weights, curve = choose_weights(oof, step)
    own = {family: next(point["oof_recordings_lwlrap"] for point in curve if point["weights"][family] == 1.0)
           for family in oof}
    chosen = next(point["oof_recordings_lwlrap"] for point in curve if point["weights"] == weights)
    dataset = load_dataset(data_dir, check_audio=False)
    test = {family: fold_mean([pd.read_parquet(path) for path in paths], "mean")
            for family, paths in test_paths.items()}
    submission = make_submission(mix(test, weights), dataset.sample_submission)
    write_csv(submission, submission_path)
    truth = dataset.test_truth
    scores = {"test": score_submission(submission, truth) if truth is not None else None,
              "families": {family: (score_submission(make_submission(frame, dataset.sample_submission), truth)
                                    if truth is not None else None) for family, frame in test.items()},
              "weights": weights}
    write_json(scores, test_scores_path)
    write_json({"weights": weights, "oof_recordings_lwlrap": chosen, "families_oof_recordings_lwlrap": own,
                "grid": curve, "chosen_on": "out-of-fold whole train recordings; test truth never read"},
               blend_path)
    print(f"blend weights {weights}: out-of-fold whole recordings {chosen:.4f} "
          f"({', '.join(f'{family} alone {score:.4f}' for family, score in own.items())})", file=sys.stderr)
    return scores


def _families_table(oof: dict[str, dict[str, Any]], test: dict[str, Any], blend: dict[str, Any]) -> list[str]:
    """Summary lines of a run with model families: each family's OOF windows, OOF whole recordings and test
    LWLRAP, and the blend's, with the weights chosen out of fold."""
    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    def test_of(scores: dict[str, Any] | None) -> float | None:
        return None if scores is None else scores["lwlrap"]

    weights = ", ".join(f"{family} {weight:.2f}" for family, weight in blend["weights"].items())
    rows = [(family, scores["lwlrap"], scores.get("recordings", {}).get("lwlrap"),
             test_of(test["families"].get(family))) for family, scores in oof.items()]
    rows.append((f"blend ({weights})", None, blend["oof_recordings_lwlrap"], test_of(test["test"])))
    width = max(len(row[0]) for row in rows)
    lines = [f"{'LWLRAP':<{width}}  OOF windows  OOF recordings  test"]
    lines += [f"{name:<{width}}  {cell(windows):>11}  {cell(recordings):>14}  {cell(tested):>6}"
              for name, windows, recordings, tested in rows]
    lines.append("(OOF recordings: held-out train recordings scored whole as the test ones; the blend's weights are "
                 "chosen on them)")
    if test["test"] is None:
        lines.append("test LWLRAP: unknown (the dataset has no test_truth.csv)")
    return lines
