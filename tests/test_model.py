"""Model construction choices: zero-initialised residual branches, the per-band background floor."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from rfcx.model.detector import build_model
from rfcx.pipeline.config import load_config


def backbone_of(zero_init_residual: bool, name: str = "resnet50") -> keras.Model:
    config = load_config(None, {"features": {"n_mels": 32, "frames": 32},
                                "model": {"backbone": name, "dense_units": 32,
                                          "zero_init_residual": zero_init_residual}})
    detector = build_model(config["features"], config["model"], window_seconds=1.0)
    return next(layer for layer in detector.layers if isinstance(layer, keras.Model))


#: Per ResNet: the outputs of the first stage's blocks, the suffix of the BatchNorm ending each residual branch, how
#: many blocks there are (ResNet50: bottlenecks [3, 4, 6, 3]; ResNet18: basic blocks [2, 2, 2, 2]) and the first
#: shortcut projection's BatchNorm (ResNet18's first stage keeps its width, so it has none).
RESNETS = {"resnet50": (("conv2_block1_out", "conv2_block2_out", "conv2_block3_out"), "_3_bn", 16, "conv2_block1_0_bn"),
           "resnet18": (("conv2_block1_out", "conv2_block2_out"), "_2_bn", 8, "conv3_block1_0_bn")}


@pytest.mark.parametrize("name", sorted(RESNETS))
@pytest.mark.parametrize("zero_init_residual", [True, False])
def test_zero_initialised_residual_branches_make_every_identity_block_pass_its_input_through(zero_init_residual, name):
    backbone = backbone_of(zero_init_residual, name)
    block_outputs, branch_end, blocks, projection = RESNETS[name]
    probe = keras.Model(backbone.input, [backbone.get_layer(output).output for output in block_outputs])
    # the detector's 32 x 32 image (the backbone itself takes any size)
    image = np.random.default_rng(0).uniform(size=(2, 32, 32, backbone.input.shape[-1])).astype("float32")
    outputs = [keras.ops.convert_to_numpy(x) for x in probe(image, training=False)]
    # each later block's input is the previous block's output (after its ReLU, so non-negative): with a zero branch,
    # relu(x + 0) = x; with the default initialisation the branch adds something
    for before, after in zip(outputs, outputs[1:]):
        assert np.array_equal(before, after) == zero_init_residual
    branch_ends = [layer.gamma for layer in backbone.layers if layer.name.endswith(branch_end)]
    assert len(branch_ends) == blocks  # one per residual block
    assert all(np.all(np.asarray(gamma) == 0) == zero_init_residual for gamma in branch_ends)
    # the shortcut projections and every other BatchNorm keep gamma = 1
    assert np.all(np.asarray(backbone.get_layer(projection).gamma) == 1)


def test_resnet18_has_the_published_shape_and_size() -> None:
    """He et al. 2016, table 1: 512 channels at 1/32 of the input's resolution, and exactly the trainable weights of
    torchvision's resnet18 without its classifier (11,689,512 - 512 x 1000 - 1000) on a 3-channel image."""
    from rfcx.model.backbones import resnet18

    network = resnet18(input_shape=(224, 224, 3))
    assert network.output.shape == (None, 7, 7, 512)
    assert sum(int(np.prod(weight.shape)) for weight in network.trainable_weights) == 11_176_512
    with pytest.raises(ValueError, match="pretrained"):
        resnet18(weights="imagenet", input_shape=(224, 224, 3))


@pytest.mark.parametrize("quantile", [0.2, 0.0])
def test_band_floor_makes_every_band_start_from_the_same_floor_in_the_backbones_image(quantile):
    """With features.band_floor_quantile, the scaled image the backbone sees has the same `quantile` over time in every
    band (each band's floor was subtracted before the min-max scaling); without it, a brown-noise background's
    tilt is still there."""
    config = load_config(None, {"features": {"n_mels": 32, "frames": 32, "band_floor_quantile": quantile,
                                             "noise_gate_db": 0, "scaling": "minmax"},
                                "model": {"dense_units": 32}})
    detector = build_model(config["features"], config["model"], window_seconds=1.0)
    assert any(layer.name == "band_floor" for layer in detector.layers) == bool(quantile)
    image_of = keras.Model(detector.input, detector.get_layer("min_max").output)
    rng = np.random.default_rng(0)
    brown = np.cumsum(rng.standard_normal((2, detector.input.shape[1])), axis=1)
    brown = (brown - brown.mean(axis=1, keepdims=True)) / brown.std(axis=1, keepdims=True)
    image = keras.ops.convert_to_numpy(image_of(brown.astype("float32")))[..., 0]
    floors = np.quantile(image, 0.2, axis=2)
    assert (np.ptp(floors, axis=1).max() < 1e-5) == bool(quantile)


def scaled_images(scaling: str, clips: np.ndarray, **features) -> np.ndarray:
    """The image each clip becomes for the backbone (band floor at the median), under `features.scaling`."""
    config = load_config(None, {"features": {"n_mels": 32, "frames": 32, "band_floor_quantile": 0.5,
                                             "noise_gate_db": 0, "scaling": scaling, **features},
                                "model": {"dense_units": 32}})
    detector = build_model(config["features"], config["model"], window_seconds=1.0)
    scale_layer = "fixed_scale" if scaling == "fixed" else "min_max"
    image_of = keras.Model(detector.input, detector.get_layer(scale_layer).output)
    return keras.ops.convert_to_numpy(image_of(clips.astype("float32")))[..., 0]


def noise_and_short_tone() -> np.ndarray:
    """Two 1 s clips: white noise, and the same noise with a loud 3 kHz tone over less than half of it (so the band
    floor, the median over time, stays the noise's)."""
    rng = np.random.default_rng(0)
    samples = 48_000
    noise = 0.01 * rng.standard_normal(samples)
    time = np.arange(samples) / 48_000
    tone = noise + 0.5 * np.sin(2 * np.pi * 3000 * time) * ((time > 0.4) & (time < 0.7))
    return np.stack([noise, tone])


def test_fixed_scaling_keeps_a_window_of_background_faint_where_min_max_stretches_it_to_full_contrast():
    """A window of white noise alone and the same noise with a short loud tone: min-max gives both the same full [0, 1]
    range, so background alone looks as contrasted as a call; fixed scaling keeps the background's image near 0 and
    lets the tone stand out far above it."""
    clips = noise_and_short_tone()
    stretched = scaled_images("minmax", clips, scale_db=80.0)
    assert np.ptp(stretched[0]) == pytest.approx(1.0, abs=1e-5)
    assert np.ptp(stretched[1]) == pytest.approx(1.0, abs=1e-5)
    fixed = scaled_images("fixed", clips, scale_db=80.0)
    noise_only, with_tone = fixed
    # the background's own fluctuations stay within about a tenth of the range (a few dB of 80)
    assert np.abs(noise_only).max() < 0.15
    # the tone's band rises by its SNR (tens of dB) above that band's floor
    assert with_tone.max() > 0.4
    assert with_tone.max() > 3 * np.abs(noise_only).max()


def test_noise_gate_leaves_a_window_of_background_blank_and_keeps_the_call():
    noise_only, with_tone = scaled_images("fixed", noise_and_short_tone(), noise_gate_db=6.0, scale_db=20.0)
    assert np.mean(noise_only == 0) > 0.97
    assert with_tone.max() > 1.0  # the tone stands > 26 dB above its band's floor



@pytest.mark.parametrize("factor", [(2, 2), (1, 2)])
def test_the_low_resolution_detector_shares_every_weight_and_feeds_the_backbone_the_pooled_image(factor) -> None:
    from rfcx.model.detector import low_resolution_detector

    config = load_config(None, {"features": {"n_mels": 32, "frames": 32},
                                "model": {"backbone": "resnet18", "dense_units": 32}})
    detector = build_model(config["features"], config["model"], window_seconds=1.0)
    low = low_resolution_detector(detector, factor)
    assert [id(weight) for weight in low.weights] == [id(weight) for weight in detector.weights]
    backbone = next(layer for layer in detector.layers if isinstance(layer, keras.Model))
    image = detector.layers[detector.layers.index(backbone) - 1].output
    audio = np.random.default_rng(0).normal(size=(2, 48_000)).astype("float32") * 0.1
    full = np.asarray(keras.Model(detector.input, image).predict_on_batch(audio))
    pooled = np.asarray(keras.Model(low.input, low.get_layer("low_resolution").output).predict_on_batch(audio))
    assert pooled.shape == (2, 32 // factor[0], 32 // factor[1], full.shape[-1])
    expected = full.reshape(2, 32 // factor[0], factor[0], 32 // factor[1], factor[1], -1).mean(axis=(2, 4))
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)
    assert low.predict_on_batch(audio).shape == detector.predict_on_batch(audio).shape == (2, 24)
