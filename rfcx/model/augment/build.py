"""Turn the ``augment:`` list of config.yaml into the three places augmentations run.

* ``overlay``: another window's audio added to a training window by the data loader, first of all (ConfuserMix, see
  ``rfcx.model.augment.confuser``: it reads the fold's fp-centred windows, which only the loader has).
* ``host``: per-clip numpy callables run by the data loader (transforms with no device equivalent,
  e.g. the librosa pitch shift); they see the raw clip first.
* ``waveform``: a Keras layer on (batch, samples), in the model before the log-mel front end.
* ``power``: a Keras layer on the mel power (batch, frames, n_mels) inside the front end, before the dB conversion:
  where the noises, TimeShift and VolumeControl run by default (``domain: spectrogram``, see
  ``rfcx.model.augment.power``).
* ``spectrogram``: a Keras layer on the dB mel image, after the front end and before MinMaxScale.
* ``batch``: a numpy callable on a whole training batch and its targets, run by the data loader after the host
  stage (Mixup: it mixes targets too, which never enter the model; see ``rfcx.model.augment.mixup``).

The list is a top-level Compose. Each entry goes to the stage its type (and, for PitchShift, its ``method``, for
the noises, TimeShift and VolumeControl, their ``domain``) belongs to; the order within a stage is kept, stages run
overlay -> host -> batch -> waveform -> power -> spectrogram.
A transform type is one entry in ``TRANSFORMS`` (its parameters with defaults and descriptions, and
a builder), from which both the parser and ``AUGMENT_SCHEMA`` are derived: adding Mixup or another
spectrogram layer is one entry there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import keras
import numpy as np

from rfcx.model.augment import compose, reference
from rfcx.model.augment.confuser import ConfuserOverlay
from rfcx.model.augment.mixup import Mixup
from rfcx.model.augment.power import SpectralNoiseSNR, SpectralTimeShift, SpectralVolumeControl
from rfcx.model.augment.reference import NOISE_LEVELS, PADDING_MODES, VOLUME_MODES, HostTransform
from rfcx.model.augment.spectrogram import MelPitchShift, SpecAugment
from rfcx.model.augment.waveform import GaussianNoiseSNR, PinkNoiseSNR, TimeShift, VolumeControl
from rfcx.model.features import mel_center_frequencies

Stage = Literal["overlay", "host", "batch", "waveform", "power", "spectrogram"]
#: The order in which stages run on a clip.
STAGES: tuple[Stage, ...] = ("overlay", "host", "batch", "waveform", "power", "spectrogram")
#: Stages that combine a window with other windows: one top-level entry each, never inside OneOf or a gated Compose.
WHOLE_BATCH_STAGES: dict[Stage, str] = {"overlay": "ConfuserMix", "batch": "Mixup"}
PITCH_METHODS: tuple[str, ...] = ("mel", "librosa")
DOMAINS: tuple[str, ...] = ("spectrogram", "waveform")
#: The front-end settings (``features`` keys) that building the augmentations depends on.
FRONT_END_KEYS: tuple[str, ...] = ("sample_rate", "n_fft", "hop_length", "fmin", "fmax", "n_mels")


@dataclass(frozen=True)
class AugmentationStages:
    """Where the configured augmentations run; a stage with nothing to do is None."""

    waveform: keras.layers.Layer | None = None
    power: keras.layers.Layer | None = None
    spectrogram: keras.layers.Layer | None = None
    host: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None
    batch: Mixup | None = None
    overlay: ConfuserOverlay | None = None


@dataclass(frozen=True)
class Param:
    """One configurable parameter: its default, what it means, and its JSON-schema type."""

    default: Any
    description: str
    schema: Mapping[str, Any]


@dataclass
class BuildContext:
    """What builders need beyond an entry's own keys; hands out a distinct seed to every layer."""

    front_end: dict[str, Any]
    seed: int
    _issued: int = field(default=0, repr=False)

    @property
    def sample_rate(self) -> int:
        return int(self.front_end["sample_rate"])

    @property
    def mel_frequencies(self) -> np.ndarray:
        """Centre frequency of each mel band, for spectrogram transforms that work in Hz."""
        f = self.front_end
        return mel_center_frequencies(f["n_mels"], f["fmin"], f["fmax"])

    def next_seed(self) -> int:
        """Seeds are ``seed, seed + 1, ...`` in build order: the same spec and seed give the same layers."""
        self._issued += 1
        return self.seed + self._issued - 1


@dataclass(frozen=True)
class Built:
    """A transform built from one entry, with the stage it must run in."""

    stage: Stage
    transform: keras.layers.Layer | HostTransform


@dataclass(frozen=True)
class TransformType:
    """A registry entry: parameters (for validation and the schema) and how to build the transform."""

    description: str
    params: Mapping[str, Param]
    build: Callable[[dict[str, Any], BuildContext], Built]


# ---------------------------------------------------------------------------------------------
# Parameters.
# ---------------------------------------------------------------------------------------------

_NUMBER = {"type": "number"}
_PROBABILITY = {"type": "number", "minimum": 0, "maximum": 1}


def _gating(p: float) -> dict[str, Param]:
    return {
        "p": Param(p, "Probability that the transform applies to a clip (drawn per clip).", _PROBABILITY),
        "always_apply": Param(False, "Apply to every clip, ignoring p.", {"type": "boolean"}),
    }


_DOMAIN = {
    "domain": Param(
        "spectrogram",
        "spectrogram: on the mel power inside the front end (fast on a CPU; matches the waveform version on the mel "
        "image within the tolerances tested, see rfcx/model/augment/power.py). waveform: on the audio samples (exact).",
        {"type": "string", "enum": list(DOMAINS)},
    ),
}

_SNR_PARAMS = {
    **_gating(0.5),
    **_DOMAIN,
    "min_snr": Param(5.0, "Lowest signal-to-noise ratio in dB (drawn uniformly per clip).", _NUMBER),
    "max_snr": Param(20.0, "Highest signal-to-noise ratio in dB.", _NUMBER),
    "level": Param(
        "rms",
        "How signal and noise levels are measured: rms (true power SNR) or peak (the original notebook).",
        {"type": "string", "enum": list(NOISE_LEVELS)},
    ),
}


# ---------------------------------------------------------------------------------------------
# Builders.
# ---------------------------------------------------------------------------------------------


def _layer(stage: Stage, cls: type[keras.layers.Layer]) -> Callable[[dict[str, Any], BuildContext], Built]:
    """Builder for a device layer whose constructor takes the entry's keys (plus a seed)."""

    def build(params: dict[str, Any], ctx: BuildContext) -> Built:
        return Built(stage, cls(**params, seed=ctx.next_seed()))

    return build


def _by_domain(
    waveform_cls: type[keras.layers.Layer],
    spectral_cls: type[keras.layers.Layer],
    waveform_args: Callable[[BuildContext], dict[str, Any]],
    spectral_args: Callable[[BuildContext], dict[str, Any]],
) -> Callable[[dict[str, Any], BuildContext], Built]:
    """Builder for a transform with a ``domain``: the waveform layer, or its mel-power twin in the power stage."""

    def build(params: dict[str, Any], ctx: BuildContext) -> Built:
        params = dict(params)
        domain = params.pop("domain")
        if domain == "waveform":
            return Built("waveform", waveform_cls(**params, **waveform_args(ctx), seed=ctx.next_seed()))
        if domain == "spectrogram":
            return Built("power", spectral_cls(**params, **spectral_args(ctx), seed=ctx.next_seed()))
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")

    return build


def _noise(colour: str, waveform_cls: type[keras.layers.Layer]) -> Callable[[dict[str, Any], BuildContext], Built]:
    return _by_domain(waveform_cls, SpectralNoiseSNR, lambda ctx: {}, lambda ctx: {"colour": colour, **ctx.front_end})


def _pitch_shift(params: dict[str, Any], ctx: BuildContext) -> Built:
    """``method: mel`` -> MelPitchShift on the dB image; ``method: librosa`` -> host-side per clip."""
    method = params.pop("method")
    if method == "mel":
        return Built("spectrogram", MelPitchShift(ctx.mel_frequencies, **params, seed=ctx.next_seed()))
    if method == "librosa":
        return Built("host", reference.PitchShift(sr=ctx.sample_rate, **params))
    raise ValueError(f"method must be one of {PITCH_METHODS}, got {method!r}")


TRANSFORMS: dict[str, TransformType] = {
    "GaussianNoiseSNR": TransformType("Add white Gaussian noise at a random SNR.", _SNR_PARAMS, _noise("white", GaussianNoiseSNR)),
    "PinkNoiseSNR": TransformType("Add pink (1/f) noise at a random SNR.", _SNR_PARAMS, _noise("pink", PinkNoiseSNR)),
    "PitchShift": TransformType(
        "Shift pitch by a random whole number of semitones.",
        {
            **_gating(0.5),
            "max_steps": Param(5, "Largest shift in semitones, up or down (drawn uniformly, both ends included).", {"type": "integer", "minimum": 0}),
            "method": Param(
                "mel",
                "mel: exact frequency scaling of the dB mel image, on device (fast). "
                "librosa: librosa.effects.pitch_shift per clip on the host (slow, the reference).",
                {"type": "string", "enum": list(PITCH_METHODS)},
            ),
        },
        _pitch_shift,
    ),
    "TimeShift": TransformType(
        "Shift the clip in time by a random number of samples.",
        {
            **_gating(0.5),
            **_DOMAIN,
            "max_shift_seconds": Param(2.0, "Largest shift in seconds, either way.", {"type": "number", "minimum": 0}),
            "padding": Param(
                "replace",
                "replace: roll (what leaves one end re-enters at the other); zero: silence the wrapped part.",
                {"type": "string", "enum": list(PADDING_MODES)},
            ),
        },
        _by_domain(TimeShift, SpectralTimeShift, lambda ctx: {"sample_rate": ctx.sample_rate},
                   lambda ctx: {"sample_rate": ctx.sample_rate, "hop_length": ctx.front_end["hop_length"]}),
    ),
    "VolumeControl": TransformType(
        "Change the gain by a random number of dB, constant or shaped over the clip.",
        {
            **_gating(0.5),
            **_DOMAIN,
            "db_limit": Param(10.0, "Largest gain change in dB, up or down.", {"type": "number", "minimum": 0}),
            "mode": Param(
                "uniform",
                "Gain shape over the clip: uniform, fade (to 0 dB at the end), cosine or sine (one period).",
                {"type": "string", "enum": list(VOLUME_MODES)},
            ),
        },
        _by_domain(VolumeControl, SpectralVolumeControl, lambda ctx: {},
                   lambda ctx: {"hop_length": ctx.front_end["hop_length"]}),
    ),
    "SpecAugment": TransformType(
        "Mask random time and mel-frequency bands of the dB image to its minimum.",
        {
            **_gating(0.5),
            "time_masks": Param(2, "Number of time masks per clip.", {"type": "integer", "minimum": 0}),
            "time_mask_frames": Param(16, "Largest time mask width in frames.", {"type": "integer", "minimum": 0}),
            "freq_masks": Param(2, "Number of frequency masks per clip.", {"type": "integer", "minimum": 0}),
            "freq_mask_bins": Param(8, "Largest frequency mask height in mel bands.", {"type": "integer", "minimum": 0}),
        },
        _layer("spectrogram", SpecAugment),
    ),
    "Mixup": TransformType(
        "Mix each training example with another of its batch (waveforms, and targets by union), in the data loader.",
        {
            "p": Param(0.5, "Probability that an example is mixed with a partner (drawn per example).", _PROBABILITY),
            "alpha": Param(0.4, "Beta(alpha, alpha) parameter of the mixing weight (folded so the example dominates).",
                           {"type": "number", "exclusiveMinimum": 0}),
        },
        lambda params, ctx: Built("batch", Mixup(**params)),
    ),
    "ConfuserMix": TransformType(
        "Add the audio of a random fp-centred window of the training folds (a confuser, windows.fp_window_fraction "
        "makes them) to a training window, targets united, in the data loader before the other augmentations. The "
        "fp-centred windows are then only mixed in, never trained on alone, so they take no batch slots from the "
        "calls. Not with model.head: sed (its frame targets would not follow the mix). A dataset without fp windows "
        "trains without it, with a message.",
        {
            "p": Param(0.5, "Probability that a training window gets a confuser (drawn per window).", _PROBABILITY),
            "gain_db": Param([-6.0, 0.0], "Range of the confuser's gain in dB, [low, high], drawn uniformly per "
                             "window (0 dB: as recorded).",
                             {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}),
        },
        lambda params, ctx: Built("overlay", ConfuserOverlay(params["p"], tuple(params["gain_db"]))),
    ),
}

#: Combinators take child entries; they are parsed recursively rather than built from keys alone.
COMBINATORS: dict[str, str] = {
    "Compose": "Apply the transforms in order; the whole sequence applies with probability p.",
    "OneOf": "Apply one of the transforms, picked uniformly per clip; applies with probability p.",
}
_COMBINATOR_PARAMS: dict[str, Param] = {
    **_gating(1.0),
    "transforms": Param([], "The child transforms (entries of the same form as this list).", {"type": "array"}),
}


# ---------------------------------------------------------------------------------------------
# Parsing.
# ---------------------------------------------------------------------------------------------


def _params(entry: Mapping[str, Any], allowed: Mapping[str, Param], where: str) -> dict[str, Any]:
    """The entry's keys with defaults filled in; unknown keys are an error naming the entry."""
    unknown = sorted(set(entry) - {"type"} - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    params = {name: entry.get(name, param.default) for name, param in allowed.items()}
    if "p" in params and not (isinstance(params["p"], (int, float)) and 0.0 <= params["p"] <= 1.0):
        raise ValueError(f"{where}: p must be a number in [0, 1], got {params['p']!r}")
    return params


def _combine(kind: str, stage: Stage, transforms: list[Any], params: Mapping[str, Any], ctx: BuildContext) -> Built:
    """A Compose/OneOf of the given transforms, as a Keras layer or, for the host stage, in numpy."""
    gating = {"p": params["p"], "always_apply": params["always_apply"]}
    if stage in WHOLE_BATCH_STAGES:
        raise ValueError(f"{WHOLE_BATCH_STAGES[stage]} mixes other windows into a batch's: it must be a top-level "
                         "entry of augment, at most once (not inside OneOf or a gated Compose)")
    if stage == "host":
        host_cls = reference.Compose if kind == "Compose" else reference.OneOf
        p = 1.0 if gating["always_apply"] else gating["p"]
        return Built(stage, host_cls(transforms, p=p))
    layer_cls = compose.Compose if kind == "Compose" else compose.OneOf
    return Built(stage, layer_cls(transforms, **gating, seed=ctx.next_seed()))


def _common_stage(builts: list[Built], where: str, kind: str) -> Stage:
    """The one stage all ``builts`` run in; transforms sharing one per-clip decision cannot span stages."""
    stages = sorted({built.stage for built in builts}, key=STAGES.index)
    if not stages:
        raise ValueError(f"{where}: {kind} has no transforms")
    if len(stages) > 1:
        raise ValueError(
            f"{where}: {kind} mixes {' and '.join(stages)} transforms, which run in different places "
            "(overlay -> host -> batch -> waveform -> power -> spectrogram) and cannot share one per-clip decision; "
            "keep them in one stage (the noises, TimeShift and VolumeControl run on the mel power with domain: "
            "spectrogram, the default, and on the audio with domain: waveform; PitchShift with method: mel and "
            "SpecAugment run on the dB image; PitchShift with method: librosa is a host transform)"
        )
    return stages[0]


def _single(sequence: list[Built], where: str, kind: str, params: Mapping[str, Any], ctx: BuildContext) -> Built:
    """Collapse a sequence into one transform gated by ``params`` (a Compose unless it is one ungated transform)."""
    stage = _common_stage(sequence, where, kind)
    if len(sequence) == 1 and params["p"] >= 1.0:
        return sequence[0]
    return _combine(kind, stage, [built.transform for built in sequence], params, ctx)


def _parse_list(entries: Any, where: str, ctx: BuildContext) -> list[list[Built]]:
    """Parse a list of entries named ``where[i]``; each gives the sequence it stands for."""
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        raise ValueError(f"{where}: expected a list of transforms, got {entries!r}")
    return [_parse(entry, f"{where}[{i}]", ctx) for i, entry in enumerate(entries)]


def _parse_combinator(kind: str, entry: Mapping[str, Any], where: str, ctx: BuildContext) -> list[Built]:
    params = _params(entry, _COMBINATOR_PARAMS, where)
    parsed = _parse_list(params["transforms"], f"{where}.transforms", ctx)
    if kind == "Compose":
        sequence = [built for child in parsed for built in child]
        if params["always_apply"] or params["p"] >= 1.0 or not sequence:
            return sequence  # an ungated Compose is just its children in order: they may span stages
        return [_single(sequence, where, kind, params, ctx)]
    ungated = {"p": 1.0, "always_apply": False}
    options = [_single(child, f"{where}.transforms[{i}]", "Compose", ungated, ctx) for i, child in enumerate(parsed)]
    stage = _common_stage(options, where, kind)
    return [_combine(kind, stage, [option.transform for option in options], params, ctx)]


def _parse(entry: Any, where: str, ctx: BuildContext) -> list[Built]:
    """Parse one entry into the sequence of stage-tagged transforms it stands for."""
    if not isinstance(entry, Mapping) or "type" not in entry:
        raise ValueError(f"{where}: expected a mapping with a 'type' key, got {entry!r}")
    kind = entry["type"]
    where = f"{where} ({kind})"
    if kind in COMBINATORS:
        return _parse_combinator(kind, entry, where, ctx)
    if kind not in TRANSFORMS:
        raise ValueError(f"{where}: unknown augmentation type; known: {sorted([*TRANSFORMS, *COMBINATORS])}")
    params = _params(entry, TRANSFORMS[kind].params, where)
    try:
        return [TRANSFORMS[kind].build(params, ctx)]
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from error


def _stage(sequence: list[Built], stage: Stage, ctx: BuildContext) -> Any:
    """The one transform a stage runs: None, the only one, or an ungated Compose of them in order."""
    transforms = [built.transform for built in sequence if built.stage == stage]
    if len(transforms) <= 1:
        return transforms[0] if transforms else None
    return _combine("Compose", stage, transforms, {"p": 1.0, "always_apply": False}, ctx).transform


def build_augmentations(spec: Sequence[Mapping[str, Any]] | None, *, features: Mapping[str, Any], seed: int) -> AugmentationStages:
    """Build the configured augmentations (the ``augment:`` list, a top-level Compose) per stage.

    ``features`` is the front end's config (``FRONT_END_KEYS`` are read): power-domain transforms are built for
    its STFT and filterbank, spectrogram transforms that work in Hz for its band centres. Raises ValueError naming
    the offending entry (e.g. ``augment[1].transforms[0] (PitchShift)``) for unknown types or keys, bad values,
    or a OneOf / gated Compose whose transforms would have to run in different stages.
    """
    missing = [key for key in FRONT_END_KEYS if key not in features]
    if missing:
        raise ValueError(f"build_augmentations: features lacks {missing}")
    ctx = BuildContext(front_end={key: features[key] for key in FRONT_END_KEYS}, seed=int(seed))
    sequence = [built for entry in _parse_list(spec or [], "augment", ctx) for built in entry]
    return AugmentationStages(**{stage: _stage(sequence, stage, ctx) for stage in STAGES})


# ---------------------------------------------------------------------------------------------
# JSON schema.
# ---------------------------------------------------------------------------------------------


def _object_schema(kind: str, description: str, params: Mapping[str, Param], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {"type": {"const": kind, "description": "Transform type.", "default": kind}}
    for name, param in params.items():
        properties[name] = {**param.schema, "description": param.description, "default": param.default}
    for name, extra in (overrides or {}).items():
        properties[name] = {**properties[name], **extra}
    return {"type": "object", "description": description, "required": ["type"], "additionalProperties": False, "properties": properties}


def _item_schema(depth: int) -> dict[str, Any]:
    """Schema of one entry; combinators nest ``depth`` levels deep (deeper children are checked by the builder)."""
    children = _item_schema(depth - 1) if depth > 0 else {"type": "object", "required": ["type"]}
    leaves = [_object_schema(kind, t.description, t.params) for kind, t in TRANSFORMS.items()]
    combinators = [
        _object_schema(kind, description, _COMBINATOR_PARAMS, {"transforms": {"items": children}})
        for kind, description in COMBINATORS.items()
    ]
    return {"oneOf": leaves + combinators}


#: JSON-schema fragment for the ``augment:`` list of config.yaml (a top-level Compose).
AUGMENT_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": (
        "Training-time augmentations, applied in order as a Compose. The noises, TimeShift and VolumeControl run "
        "on the mel power inside the front end (domain: spectrogram, the default) or on the audio before it "
        "(domain: waveform), spectrogram transforms (PitchShift method mel, SpecAugment) on the dB "
        "mel image after it, host transforms (PitchShift method librosa) per clip in the data loader first, "
        "Mixup on whole batches in the data loader after them; ConfuserMix adds another window's audio in the data "
        "loader before all of them. "
        "Validation and prediction are never augmented."
    ),
    "default": [],
    "items": _item_schema(2),
}


def augmentation_leaves(spec: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every single transform in an augmentation spec (inside OneOf/Compose too), forced on, to show or warm
    up each alone. Mixup and ConfuserMix are left out: they mix in other windows, there is no one-window picture."""
    leaves = []
    for entry in spec:
        if entry["type"] in WHOLE_BATCH_STAGES.values():
            continue
        if entry["type"] in ("OneOf", "Compose"):
            leaves += augmentation_leaves(entry.get("transforms", []))
        else:
            leaves.append({**entry, "p": 1.0, "always_apply": True})
    return leaves
