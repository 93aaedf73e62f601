"""Make the log-mel figures of docs/synth.md from a synthetic dataset.

Usage: python docs/make_synth_figures.py DATA_DIR [--out docs/img]

DATA_DIR is an `rfcx synth` output (e.g. demo scale, seed 0). Each figure shows 10 s windows centred on tp calls,
as a 64-band log-mel image with the settings the detector uses (n_fft 2048, hop 512, 84-15056 Hz), with the tp box
drawn on top. Figures marked "model view" add a second row with the window pooled to 128 frames (about 78 ms each),
which is the time resolution the detector gets. The call shown for a species is the one whose planned SNR is
closest to +10 dB (re-planned from synth_info.json), so the figures show typical rather than extreme calls.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import librosa
import librosa.display
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from rfcx.constants import RECORDING_SECONDS  # noqa: E402
from rfcx.data.synth.scales import SynthScale  # noqa: E402
from rfcx.data.synth.species import SPECIES  # noqa: E402
from rfcx.data.synth.writer import FP, TP, PlannedCall, plan_dataset  # noqa: E402

MEL = {"n_fft": 2048, "hop_length": 512, "fmin": 84.0, "fmax": 15056.0, "n_mels": 64}
WINDOW_S = 10.0
MODEL_FRAMES = 128


@dataclass(frozen=True)
class Figure:
    """One PNG: a row of panels (species, role), optionally with a second row at the model's time resolution."""

    title: str
    panels: tuple[tuple[int, str], ...]
    model_view: bool = False


FIGURES: dict[str, Figure] = {
    "synth_sweeps_1_2.png": Figure("Same band 3-5 kHz: rising (1) vs falling (2) whistle", ((1, TP), (2, TP))),
    "synth_arches_3_4.png": Figure("Same band 1.2-2 kHz: U (3) vs arch (4) whistle", ((3, TP), (4, TP))),
    "synth_trills_5_6.png": Figure("Same band 5.5-6.8 kHz: slow trill 4/s (5) vs fast trill 16/s (6); "
                                   "bottom: model view (128 frames)", ((5, TP), (6, TP)), model_view=True),
    "synth_7to9k_10_15_22.png": Figure("Same band 7-9 kHz: up-chirps (10), buzz (15), down-chirps (22); "
                                       "bottom: model view (128 frames)", ((10, TP), (15, TP), (22, TP)),
                                       model_view=True),
    "synth_stacks_8_9_20.png": Figure("Harmonic stacks: hoot (8), croak (9), slurred stack (20)",
                                      ((8, TP), (9, TP), (20, TP))),
    "synth_tp_vs_fp_5.png": Figure("Species 5: a true call (tp) and a confuser in its band (fp)", ((5, TP), (5, FP))),
}


def pick_call(plan_calls: list[tuple[str, PlannedCall]], species: int, role: str) -> tuple[str, PlannedCall]:
    """The call of this species and role whose planned SNR is closest to +10 dB (ties: first recording id)."""
    candidates = [(rid, c) for rid, c in plan_calls if c.species_id == species and c.role == role]
    return min(candidates, key=lambda rc: (abs(rc[1].snr_db - 10.0), rc[0]))


def window(call: PlannedCall) -> float:
    """Start of the 10 s window centred on the call, kept inside the recording."""
    centre = 0.5 * (call.t_min + call.t_max)
    return float(np.clip(centre - WINDOW_S / 2, 0.0, RECORDING_SECONDS - WINDOW_S))


def pool_frames(power: np.ndarray, frames: int) -> np.ndarray:
    """Average mel power over groups of frames: the window as the model sees it after resizing."""
    edges = np.linspace(0, power.shape[1], frames + 1).astype(int)  # evenly spread groups: no time drift
    return np.add.reduceat(power, edges[:-1], axis=1) / np.diff(edges)


def draw_panel(ax: plt.Axes, data_dir: Path, rid: str, call: PlannedCall, model_view: bool = False) -> None:
    """One log-mel panel of the window around `call`, with its box."""
    start = window(call)
    y, sr = librosa.load(data_dir / "train" / f"{rid}.flac", sr=None, offset=start, duration=WINDOW_S)
    power = librosa.feature.melspectrogram(y=y, sr=sr, **MEL)
    if model_view:
        power = pool_frames(power, MODEL_FRAMES)
    mel = librosa.power_to_db(power, ref=np.max)
    frame_centres = (np.arange(mel.shape[1]) + 0.5) * WINDOW_S / mel.shape[1]
    librosa.display.specshow(mel, sr=sr, x_coords=frame_centres, x_axis="time", y_axis="mel",
                             fmin=MEL["fmin"], fmax=MEL["fmax"], ax=ax, cmap="magma", vmin=-80)
    ax.add_patch(Rectangle((call.t_min - start, call.f_min), call.t_max - call.t_min, call.f_max - call.f_min,
                           fill=False, edgecolor="cyan", linewidth=1.2))
    ax.set_title(f"s{call.species_id} {SPECIES[call.species_id].name} [{call.role}, songtype {call.songtype_id}, "
                 f"SNR {call.snr_db:+.0f} dB]\npattern {call.family}, {rid} @ {start:.1f}-{start + WINDOW_S:.1f} s",
                 fontsize=8)
    ax.set_xlabel("s in window", fontsize=8)


def make_figures(data_dir: Path, out_dir: Path) -> list[Path]:
    """Write every figure of FIGURES into out_dir."""
    info = json.loads((data_dir / "synth_info.json").read_text())
    plan = plan_dataset(SynthScale(**info["scale"]), info["seed"])
    calls = [(rec.recording_id, c) for rec in plan.train for c in rec.calls]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, figure in FIGURES.items():
        rows = 2 if figure.model_view else 1
        fig, axes = plt.subplots(rows, len(figure.panels), figsize=(4.2 * len(figure.panels), 3.4 * rows + 0.3),
                                 squeeze=False)
        for column, (species, role) in enumerate(figure.panels):
            for row in range(rows):
                draw_panel(axes[row][column], data_dir, *pick_call(calls, species, role), model_view=row == 1)
        fig.suptitle(figure.title, fontsize=10)
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=80)
        plt.close(fig)
        written.append(out_dir / name)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "img")
    args = parser.parse_args()
    for path in make_figures(args.data_dir, args.out):
        print(path)


if __name__ == "__main__":
    main()
