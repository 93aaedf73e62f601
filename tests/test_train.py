"""Training a fold for real (a few steps of ResNet50 on the CPU): checkpoints, history, resumption, safe reloading."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from conftest import LIGHT, MARGIN_SECONDS, RATE, WINDOW_SECONDS, small_config
from rfcx.model.detector import load_detector
from rfcx.pipeline.config import load_config
from rfcx.training.checkpoint import run_fingerprint
from rfcx.training.train import train_fold

class OptimizerAtStart(keras.callbacks.Callback):
    """Records whether the optimizer's variables exist when fit starts, before the first step is traced."""

    def __init__(self) -> None:
        super().__init__()
        self.built: bool | None = None
        self.n_variables = 0

    def on_train_begin(self, logs=None) -> None:
        self.built = self.model.optimizer.built
        self.n_variables = len(self.model.optimizer.variables)


@pytest.fixture(scope="module")
def trained(windows_and_cache, tmp_path_factory) -> tuple[Path, pd.DataFrame, OptimizerAtStart]:
    """Fold 0 trained once for 2 epochs of 2 steps (the real ResNet50, small input)."""
    windows, cache = windows_and_cache
    out_dir = tmp_path_factory.mktemp("fold0")
    at_start = OptimizerAtStart()
    return out_dir, train_fold(windows, cache, small_config(), fold=0, out_dir=out_dir,
                               extra_callbacks=[at_start]), at_start


def test_training_writes_the_best_model_and_a_history_and_the_model_reloads_safely(windows_and_cache, trained):
    _, cache = windows_and_cache
    out_dir, history, _ = trained
    assert list(history.epoch) == [0, 1]
    assert {"loss", "lwlrap", "val_loss", "val_lwlrap"} <= set(history.columns)
    assert sorted(p.name for p in out_dir.iterdir()) == ["history.csv", "model.keras"]  # no backup left behind
    model = load_detector(out_dir / "model.keras")
    # saved without the optimizer: the file holds what prediction needs, not Adam's moments
    assert getattr(keras.saving.load_model(out_dir / "model.keras", safe_mode=True), "optimizer", None) is None
    batch = cache.read(np.arange(4))
    scores = np.asarray(model.predict_on_batch(batch))
    assert scores.shape == (4, 24) and np.all((scores >= 0) & (scores <= 1))
    # inference is deterministic: no augmentation outside training
    np.testing.assert_array_equal(scores, np.asarray(model.predict_on_batch(batch)))


def test_adams_moments_exist_before_the_first_step_so_the_step_is_traced_once(trained):
    # created inside the first traced step instead, they make TensorFlow trace the whole training step twice
    # (~20 s of each ResNet50 fold's start-up on 2 cores)
    *_, at_start = trained
    assert at_start.built is True
    # iterations and learning rate, then a momentum and a velocity per trainable weight of ResNet50 and the head
    assert at_start.n_variables > 2 * 200


def test_a_saved_model_with_a_lambda_layer_is_refused(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    model.save(tmp_path / "unsafe.keras")
    with pytest.raises(ValueError, match="(?i)lambda|unsafe|safe_mode"):
        load_detector(tmp_path / "unsafe.keras")


class StopAtEpoch(keras.callbacks.Callback):
    """Simulates a kill at the start of an epoch; records which epochs ran."""

    def __init__(self, stop_at: int | None, ran: list[int]):
        super().__init__()
        self.stop_at, self.ran = stop_at, ran

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.stop_at:
            raise KeyboardInterrupt("killed")
        self.ran.append(epoch)


def test_a_killed_run_resumes_at_the_next_epoch_with_the_same_best_checkpoint_logic(windows_and_cache, tmp_path):
    windows, cache = windows_and_cache
    config = small_config(LIGHT, epochs=3)
    first: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        train_fold(windows, cache, config, fold=1, out_dir=tmp_path, extra_callbacks=[StopAtEpoch(1, first)])
    assert first == [0]
    assert (tmp_path / "backup" / run_fingerprint(config, 1) / "full" / "training_metadata.json").exists()
    assert len(pd.read_csv(tmp_path / "history.csv")) == 1
    best_after_epoch_0 = pd.read_csv(tmp_path / "history.csv").val_lwlrap.max()

    second: list[int] = []
    history = train_fold(windows, cache, config, fold=1, out_dir=tmp_path, extra_callbacks=[StopAtEpoch(None, second)])
    assert second == [1, 2]                       # continued, did not start over
    assert list(history.epoch) == [0, 1, 2]       # one history across both attempts
    assert history.val_lwlrap.max() >= best_after_epoch_0
    assert (tmp_path / "model.keras").exists() and not (tmp_path / "backup").exists()


def test_changed_settings_get_their_own_backup_so_they_never_resume_an_old_run() -> None:
    base = small_config()
    assert run_fingerprint(base, 0) == run_fingerprint(small_config(), 0)
    assert run_fingerprint(base, 0) != run_fingerprint(base, 1)
    assert run_fingerprint(base, 0) != run_fingerprint(small_config(learning_rate=0.0005), 0)
    assert run_fingerprint(base, 0) != run_fingerprint(load_config(None, {**base, "seed": 1}), 0)


def test_the_same_seed_trains_to_the_same_scores_on_the_cpu(windows_and_cache, trained, tmp_path):
    windows, cache = windows_and_cache
    _, first, _ = trained
    second = train_fold(windows, cache, small_config(), fold=0, out_dir=tmp_path)
    pd.testing.assert_frame_equal(first, second)


def test_an_epoch_can_be_longer_than_one_pass_and_each_pass_is_a_fresh_order(windows_and_cache) -> None:
    from rfcx.training.loader import WindowBatches

    windows, cache = windows_and_cache
    targets = np.zeros((16, 24), dtype=np.float32)
    batches = WindowBatches(cache, np.arange(16), targets, 4, shuffle=True, seed=0, max_batches=10)
    assert len(batches) == 10
    first, second = batches.order[:16], batches.order[16:32]
    assert sorted(first) == sorted(second) == list(range(16)) and list(first) != list(second)
    validation = WindowBatches(cache, np.arange(16), targets, 4, max_batches=10)
    assert len(validation) == 4  # validation never repeats windows


def test_a_short_last_batch_can_be_padded_with_windows_that_change_no_loss_and_no_score(windows_and_cache) -> None:
    from rfcx.model.losses import MaskedBinaryCrossentropy
    from rfcx.model.metrics import LWLRAP, lwlrap
    from rfcx.training.loader import WindowBatches

    windows, cache = windows_and_cache
    rows = windows.window_id.to_numpy()[:7]
    targets = np.eye(24, dtype=np.float32)[np.arange(7) % 24]
    plain = WindowBatches(cache, rows, targets, 4)
    padded = WindowBatches(cache, rows, targets, 4, pad_to_batch=True)
    (x_plain, y_plain), (x_pad, y_pad) = plain[1], padded[1]
    assert x_plain.shape[0] == 3 and x_pad.shape[0] == 4 and y_pad.shape == (4, 24)
    np.testing.assert_array_equal(x_pad[:3], x_plain)
    np.testing.assert_array_equal(y_pad[:3], y_plain)
    assert not x_pad[3].any() and (y_pad[3] == -1).all()
    scores = np.random.default_rng(0).uniform(size=(4, 24)).astype(np.float32)
    per_example = keras.ops.convert_to_numpy(MaskedBinaryCrossentropy(reduction=None)(y_pad, scores))
    assert per_example[3] == 0 and per_example[:3] == pytest.approx(
        keras.ops.convert_to_numpy(MaskedBinaryCrossentropy(reduction=None)(y_plain, scores[:3])))
    streamed = []
    for truth, predicted in ((y_pad, scores), (y_plain, scores[:3])):
        metric = LWLRAP()
        metric.update_state(truth, predicted)
        streamed.append(float(keras.ops.convert_to_numpy(metric.result())))
    assert streamed[0] == pytest.approx(streamed[1]) == pytest.approx(lwlrap(y_plain, scores[:3]))


class FinalWeights(keras.callbacks.Callback):
    """Records the raw weights of the output layer and the optimizer's moving average of them after the last step
    (on_train_batch_end runs before SwapEMAWeights swaps at the epoch's end)."""

    def on_train_batch_end(self, batch, logs=None):
        # the output layer's kernel: the last one of the model's (the training model may nest the detector's layers)
        kernel = next(v for v in reversed(self.model.trainable_weights) if v.path.endswith("kernel"))
        optimizer = self.model.optimizer
        self.raw = np.asarray(kernel)
        index = next(i for i, v in enumerate(optimizer._trainable_variables) if v is kernel)
        self.average = np.asarray(optimizer._model_variables_moving_average[index])


def test_with_a_weight_average_the_checkpoint_holds_the_average_not_the_raw_weights(windows_and_cache, tmp_path):
    windows, cache = windows_and_cache
    final = FinalWeights()
    train_fold(windows, cache, small_config(LIGHT, epochs=1, steps_per_epoch=3, ema_momentum=0.5), fold=0,
               out_dir=tmp_path, extra_callbacks=[final])
    saved = np.asarray(load_detector(tmp_path / "model.keras").layers[-1].kernel)
    # equal up to rounding: TensorFlow swaps in place by adding and subtracting
    np.testing.assert_allclose(saved, final.average, rtol=1e-6, atol=1e-7)
    assert not np.allclose(saved, final.raw)  # 3 steps of Adam moved the raw weights away from their average


class ModelPerEpoch(keras.callbacks.Callback):
    """Records which training model ran each epoch and the image height its backbone saw."""

    def __init__(self) -> None:
        super().__init__()
        self.ran: list[tuple[int, str]] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.ran.append((epoch, self.model.name))


def test_low_resolution_epochs_come_first_then_full_size_and_a_kill_between_them_resumes_after_them(
        windows_and_cache, tmp_path):
    windows, cache = windows_and_cache
    config = small_config(LIGHT, epochs=3, low_res_epochs=2)
    whole = ModelPerEpoch()
    uninterrupted = train_fold(windows, cache, config, fold=1, out_dir=tmp_path / "whole", extra_callbacks=[whole])
    assert [epoch for epoch, _ in whole.ran] == [0, 1, 2]
    assert [name.endswith("_low_res") for _, name in whole.ran] == [True, True, False]
    # the saved detector is the full-size one: its backbone sees the 32 x 32 image, not 16 x 16
    detector = load_detector(tmp_path / "whole" / "model.keras")
    backbone = next(layer for layer in detector.layers if isinstance(layer, keras.Model))
    assert detector.get_layer(index=detector.layers.index(backbone) - 1).output.shape[1:3] == (32, 32)

    killed: list[int] = []
    with pytest.raises(KeyboardInterrupt):  # killed as the full-size phase starts
        train_fold(windows, cache, config, fold=1, out_dir=tmp_path / "resumed",
                   extra_callbacks=[StopAtEpoch(2, killed)])
    assert killed == [0, 1]
    resumed = ModelPerEpoch()
    history = train_fold(windows, cache, config, fold=1, out_dir=tmp_path / "resumed", extra_callbacks=[resumed])
    assert resumed.ran == [(2, whole.ran[2][1])]  # the low-resolution epochs are not run again
    pd.testing.assert_frame_equal(history, uninterrupted)  # and the run ends exactly as one that was never killed


def test_the_kept_model_is_the_best_full_size_epoch_whatever_the_low_resolution_epochs_scored(tmp_path) -> None:
    from rfcx.training.checkpoint import best_logged

    history = tmp_path / "history.csv"
    pd.DataFrame({"epoch": [0, 1, 2, 3], "val_lwlrap": [0.9, 0.95, 0.6, 0.7]}).to_csv(history, index=False)
    assert best_logged(history) == 0.95
    assert best_logged(history, from_epoch=2) == 0.7


def test_low_resolution_epochs_must_leave_a_full_size_epoch_and_need_the_reference_head(windows_and_cache, tmp_path):
    windows, cache = windows_and_cache
    with pytest.raises(ValueError, match="low_res_epochs .* must be below train.epochs"):
        train_fold(windows, cache, small_config(LIGHT, epochs=2, low_res_epochs=2), fold=0, out_dir=tmp_path)
    sed = load_config(None, {**small_config(LIGHT, low_res_epochs=1), "model": {"backbone": LIGHT, "head": "sed"}})
    with pytest.raises(ValueError, match="needs model.head: reference"):
        train_fold(windows, cache, sed, fold=0, out_dir=tmp_path)
