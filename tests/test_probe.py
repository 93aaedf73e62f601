"""The embedding family's parts that need no embedding model: grid targets from boxes, the per-species probe, the
blend of families with weights chosen out of fold, and the summary of a blended run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rfcx.constants import BOX_COLUMNS, SPECIES_COLUMNS, TARGET_COLUMNS
from rfcx.data.windows import call_fraction
from rfcx.model.embedding import Embeddings, grid_starts
from rfcx.model.metrics import lwlrap
from rfcx.model.probe import Probe, fit_probe, grid_targets, recording_scores, with_context
from rfcx.pipeline import stages
from rfcx.prediction.blend import choose_weights, mix, weight_grid


def boxes(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(BOX_COLUMNS))


def test_the_grid_covers_a_recording_with_hops_and_one_window_at_its_end() -> None:
    assert np.allclose(grid_starts(60.0, 3.0, 1.5), np.arange(0, 57.01, 1.5))
    assert np.allclose(grid_starts(10.0, 3.0, 3.0), [0, 3, 6, 7])  # the tail 9-10 s gets a window ending at 10
    assert np.allclose(grid_starts(2.0, 3.0, 1.5), [0])  # shorter than a window: one, zero-padded


def test_a_call_longer_than_the_window_counts_where_it_fills_it() -> None:
    assert call_fraction(np.array([0.0]), np.array([10.0]), 3.0, 6.0)[0] == pytest.approx(1.0)  # trill
    assert call_fraction(np.array([4.0]), np.array([5.0]), 3.0, 6.0)[0] == pytest.approx(1.0)  # short call inside
    assert call_fraction(np.array([5.5]), np.array([6.5]), 3.0, 6.0)[0] == pytest.approx(0.5)


def test_grid_targets_are_positive_where_a_call_fills_the_window_and_left_out_where_it_grazes() -> None:
    index = pd.DataFrame({"recording_id": ["a"] * 4 + ["b"], "start": [0.0, 1.5, 3.0, 4.5, 0.0]})
    index["end"] = index.start + 3.0
    tp = boxes([("a", 2, 1, 1.6, 1000.0, 2.6, 2000.0),   # whole in windows 0 and 1, not in window 2
                ("a", 5, 1, 4.0, 1000.0, 5.0, 2000.0)])  # inside window 2 (3-6) and 3 (4.5-7.5) by half
    targets = grid_targets(index, tp, min_box_overlap=0.6)
    assert targets[0, 2] == 1 and targets[1, 2] == 1 and targets[2, 2] == 0
    assert targets[2, 5] == 1 and np.isnan(targets[3, 5])  # half of the call in window 3: left out for species 5
    assert np.all(targets[4] == 0)  # recording b has no box: a negative of every species, never a positive
    assert np.all(targets[:, [0, 1, 3, 4]] == 0)


def test_the_probe_learns_a_planted_species_and_ignores_its_confusers_and_the_background() -> None:
    rng = np.random.default_rng(0)
    dim, n = 32, 600
    call, confuser = rng.normal(size=dim), rng.normal(size=dim)
    kind = rng.choice(["call", "confuser", "background"], size=n, p=[0.15, 0.15, 0.7])
    vectors = rng.normal(size=(n, dim)) + 2.0 * np.outer(kind == "call", call) + 2.0 * np.outer(kind == "confuser",
                                                                                                  confuser)
    targets = np.zeros((n, 24), dtype=np.float32)
    targets[kind == "call", 7] = 1.0
    targets[:5, 3] = np.nan
    probe = fit_probe(grid(vectors), targets, c=0.1)
    assert probe.fitted[7] and not probe.fitted[3] and probe.fitted.sum() == 1
    test_kind = np.repeat(["call", "confuser", "background"], 100)
    test = rng.normal(size=(300, dim)) + 2.0 * np.outer(test_kind == "call", call) + 2.0 * np.outer(
        test_kind == "confuser", confuser)
    scores = probe.predict(test, np.arange(300))
    assert scores[test_kind == "call", 7].mean() > 0.9
    assert scores[test_kind == "confuser", 7].mean() < 0.1 and scores[test_kind == "background", 7].mean() < 0.1
    assert np.all(scores[:, np.arange(24) != 7] == 0)  # species with no positive are not fitted and score 0


def test_a_saved_probe_predicts_the_same(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(200, 8))
    targets = np.zeros((200, 24), dtype=np.float32)
    targets[vectors[:, 0] > 0.5, 4] = 1.0
    ids = np.repeat(["a", "b"], 100)
    probe = fit_probe(grid(vectors, ids), targets, c=1.0, context=2)
    probe.save(tmp_path / "probe.npz")
    loaded = Probe.load(tmp_path / "probe.npz")
    assert loaded.context == 2 and loaded.weights.shape == (24, 16)
    assert np.array_equal(loaded.predict(vectors, ids), probe.predict(vectors, ids))


def grid(vectors: np.ndarray, recording_ids: np.ndarray | None = None) -> Embeddings:
    """Embeddings of grid windows: each row its own recording unless `recording_ids` says."""
    ids = np.arange(len(vectors)).astype(str) if recording_ids is None else recording_ids
    index = pd.DataFrame({"recording_id": ids, "start": 0.0, "end": 3.0})
    return Embeddings(index, np.asarray(vectors, np.float32))


def test_context_appends_the_mean_of_the_neighbours_within_each_recording_only() -> None:
    vectors = np.arange(1.0, 7.0)[:, None] * np.array([[1.0, 10.0]])  # rows 1..6, a recording of 4 then one of 2
    ids = np.array(["a", "a", "a", "a", "b", "b"])
    one = with_context(vectors, ids, 1)
    assert one.shape == (6, 4) and np.array_equal(one[:, :2], vectors)
    # neighbours 1 and 3 for row 2; at a recording's ends the missing neighbour counts as the window itself
    assert np.allclose(one[:, 2], [(1 + 2) / 2, (1 + 3) / 2, (2 + 4) / 2, (3 + 4) / 2, (5 + 6) / 2, (5 + 6) / 2])
    two = with_context(vectors, ids, 2)
    assert np.allclose(two[0, 2], (2 + 1 + 3 + 1) / 4) and np.allclose(two[4, 2], (6 + 5 + 5 + 5) / 4)
    assert np.allclose(with_context(vectors[:4], ids[:4], 1), one[:4])  # a recording alone: the same features
    assert with_context(vectors, ids, 0) is not None and np.array_equal(with_context(vectors, ids, 0), vectors)


def test_a_probe_with_context_tells_a_call_in_a_long_chorus_from_the_same_call_alone() -> None:
    """The call's own window looks the same in both cases: only the neighbours say whether a chorus surrounds
    it, so only the probe with context can learn that species 2 is the call alone."""
    rng = np.random.default_rng(3)
    dim, length = 16, 9
    call, chorus = rng.normal(size=dim), rng.normal(size=dim)
    vectors, ids, targets = [], [], []
    for recording in range(120):
        kind = recording % 2  # 0: the call alone, 1: the call in a chorus
        rows = rng.normal(scale=0.3, size=(length, dim))
        rows[4] += 2.0 * call
        if kind:
            rows[[3, 5]] += 2.0 * chorus
        vectors.append(rows)
        ids += [f"r{recording}"] * length
        target = np.zeros((length, 24), np.float32)
        target[4, 2] = 1.0 - kind
        targets.append(target)
    embeddings = grid(np.concatenate(vectors), np.array(ids))
    targets = np.concatenate(targets)
    train = np.array([int(name[1:]) < 80 for name in ids])
    held = Embeddings(embeddings.index[~train].reset_index(drop=True), embeddings.vectors[~train])
    kinds = np.array([int(name[1:]) % 2 for name in held.index.recording_id])
    centre = (np.arange(len(held.vectors)) % length) == 4
    for context, separates in ((0, False), (1, True)):
        probe = fit_probe(Embeddings(embeddings.index[train].reset_index(drop=True), embeddings.vectors[train]),
                          targets[train], c=1.0, context=context)
        scores = probe.predict(held.vectors, held.index.recording_id.to_numpy())[centre, 2]
        alone, in_chorus = scores[kinds[centre] == 0], scores[kinds[centre] == 1]
        assert (alone.min() > in_chorus.max()) == separates, context


def scored(ids: list[str], truth: np.ndarray, scores: np.ndarray, fold: int | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"recording_id": ids})
    if fold is not None:
        frame["fold"] = fold
    if truth is not None:
        frame = pd.concat([frame, pd.DataFrame(truth, columns=list(TARGET_COLUMNS))], axis=1)
    return pd.concat([frame, pd.DataFrame(scores, columns=list(SPECIES_COLUMNS))], axis=1)


def test_the_weight_grid_spans_the_simplex() -> None:
    grid = weight_grid(["cnn", "probe"], 0.25)
    assert [point["cnn"] for point in grid] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert all(sum(point.values()) == pytest.approx(1.0) for point in grid)
    assert len(weight_grid(["a", "b", "c"], 0.5)) == 6
    with pytest.raises(ValueError, match="divide 1"):
        weight_grid(["a", "b"], 0.3)


def test_the_blend_takes_the_weights_with_the_best_out_of_fold_score() -> None:
    rng = np.random.default_rng(0)
    ids = [f"r{i}" for i in range(60)]
    truth = (rng.random((60, 24)) < 0.1).astype(np.float32)
    truth[np.arange(60), rng.integers(0, 24, 60)] = 1
    good = truth + 0.8 * rng.random((60, 24))
    noisy = truth + 3.0 * rng.random((60, 24))
    oof = {"cnn": scored(ids, truth, noisy, 0), "probe": scored(ids[::-1], truth[::-1], good[::-1], 0)}
    weights, curve = choose_weights(oof, 0.1)
    best = max(point["oof_recordings_lwlrap"] for point in curve)
    assert weights["probe"] > weights["cnn"]
    chosen = mix({name: frame[["recording_id", *SPECIES_COLUMNS]] for name, frame in oof.items()}, weights)
    assert lwlrap(truth, chosen[list(SPECIES_COLUMNS)].to_numpy()) == pytest.approx(best)
    assert best >= lwlrap(truth, good) - 1e-12


def make_family_files(root: Path, dataset: Path, truth_seed: int) -> tuple[dict, dict]:
    """Two families' OOF recordings and test folds for the mini dataset's test ids."""
    rng = np.random.default_rng(3)
    ids = [f"aa{i:07d}" for i in range(40)]
    truth = np.zeros((40, 24), dtype=np.float32)
    truth[np.arange(40), rng.integers(0, 24, 40)] = 1
    test_ids = pd.read_csv(dataset / "sample_submission.csv").recording_id.tolist()
    oof, test = {}, {}
    for family, noise in (("cnn", 2.0), ("probe", 0.7)):
        oof[family] = [root / f"{family}_oof.parquet"]
        scored(ids, truth, truth + noise * rng.random((40, 24)), 0).to_parquet(oof[family][0])
        test[family] = []
        for fold in range(2):
            path = root / f"{family}_test{fold}.parquet"
            scored(test_ids, None, rng.random((len(test_ids), 24))).to_parquet(path)
            test[family].append(path)
    truth_table = pd.DataFrame({"recording_id": test_ids})
    truth_table[list(SPECIES_COLUMNS)] = (np.random.default_rng(truth_seed).random((len(test_ids), 24)) < 0.2
                                          ).astype(int)
    truth_table.to_csv(dataset / "test_truth.csv", index=False)
    return oof, test


def test_blend_weights_never_read_test_truth(mini_dataset: Path, tmp_path: Path) -> None:
    results = []
    for truth_seed in (0, 1, None):
        oof, test = make_family_files(tmp_path, mini_dataset, truth_seed or 0)
        if truth_seed is None:
            (mini_dataset / "test_truth.csv").unlink()
        out = tmp_path / f"out{truth_seed}"
        scores = stages.blend(oof, test, mini_dataset, out / "submission.csv", out / "test.json", out / "blend.json",
                              step=0.05)
        results.append((json.loads((out / "blend.json").read_text()), (out / "submission.csv").read_bytes(), scores))
    (first, submission, scores), (second, _, other), (third, _, unknown) = results
    assert first == second == third  # other truth, or none: the same weights, grid and scores out of fold
    assert first["weights"]["probe"] > first["weights"]["cnn"]
    assert scores["test"]["lwlrap"] != other["test"]["lwlrap"]  # the truth did change what the test score says
    assert unknown["test"] is None and unknown["families"] == {"cnn": None, "probe": None}
    assert set(scores["families"]) == {"cnn", "probe"}
    written = pd.read_csv(tmp_path / "out0" / "submission.csv")
    assert list(written.recording_id) == list(pd.read_csv(mini_dataset / "sample_submission.csv").recording_id)


def test_the_summary_puts_each_family_beside_the_blend(tmp_path: Path) -> None:
    submission = tmp_path / "submission.csv"
    scored(["x"], None, np.zeros((1, 24))).to_csv(submission, index=False)
    oof = {"cnn": {"lwlrap": 0.81, "recordings": {"lwlrap": 0.77}}, "probe": {"lwlrap": 0.93,
                                                                              "recordings": {"lwlrap": 0.91}}}
    paths = {}
    for family, scores in oof.items():
        paths[family] = tmp_path / f"{family}.json"
        paths[family].write_text(json.dumps(scores))
    (tmp_path / "test.json").write_text(json.dumps({"test": {"lwlrap": 0.95}, "families": {
        "cnn": {"lwlrap": 0.74}, "probe": {"lwlrap": 0.94}}}))
    (tmp_path / "blend.json").write_text(json.dumps({"weights": {"cnn": 0.2, "probe": 0.8},
                                                     "oof_recordings_lwlrap": 0.92}))
    text = stages.summarise(submission, paths, tmp_path / "test.json", tmp_path / "preview.csv",
                            tmp_path / "summary.txt", blend_path=tmp_path / "blend.json")
    lines = text.splitlines()
    assert lines[1].split() == ["cnn", "0.8100", "0.7700", "0.7400"]
    assert lines[2].split() == ["probe", "0.9300", "0.9100", "0.9400"]
    assert lines[3].split() == ["blend", "(cnn", "0.20,", "probe", "0.80)", "-", "0.9200", "0.9500"]


def test_a_long_recording_is_scored_in_blocks_with_the_numbers_of_scoring_it_whole() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(1000, 16)).astype(np.float32)
    probes = [Probe(rng.normal(size=32), rng.uniform(0.5, 2, 32), rng.normal(size=(24, 32)), rng.normal(size=24),
                    np.ones(24, dtype=bool), context=context) for context in (1, 2)]
    whole = np.mean([probe.predict(vectors, np.zeros(len(vectors))) for probe in probes], axis=0)
    for block in (1, 7, 100, 999, 4096):
        np.testing.assert_array_equal(recording_scores(probes, vectors, block=block), whole)
    assert recording_scores(probes, vectors[:0]).shape == (0, 24)
