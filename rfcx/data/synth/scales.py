"""Scale presets of the synthetic dataset: how many recordings and boxes, and how hard the audio is.

Counts decide what the pipeline can be tested on (tiny: unit tests, demo: an end-to-end run in minutes, full: the
competition's size). `difficulty` is one knob for how hard the audio is: it lowers the foreground SNR range and
raises the rates of time overlap, test-set confusers, rain and distant calls, so that a quality benchmark can ask
for a harder dataset without changing any count.
"""

from __future__ import annotations

from dataclasses import dataclass

from rfcx.constants import N_SPECIES


@dataclass(frozen=True)
class SynthScale:
    """Parameters of one dataset scale. Derived audio knobs are properties of `difficulty` (1.0 = standard)."""

    name: str
    n_train: int
    n_test: int
    n_tp: int
    n_fp: int
    #: Fraction of train recordings that carry tp calls; the others hold only fp boxes, as in the real data.
    tp_recording_fraction: float
    #: Every species gets at least this many tp rows, in at least `min_recordings_per_species` recordings.
    min_recordings_per_species: int
    difficulty: float = 1.0
    max_tp_per_recording: int = 3
    #: Fraction of test recordings with no planted species at all.
    empty_test_fraction: float = 0.05
    description: str = ""

    @property
    def n_tp_recordings(self) -> int:
        """How many train recordings carry at least one tp call."""
        return max(1, min(self.n_train, round(self.tp_recording_fraction * self.n_train)))

    @property
    def min_tp_per_species(self) -> int:
        """tp rows are dealt evenly, so every species gets at least this many."""
        return self.n_tp // N_SPECIES

    @property
    def snr_db_range(self) -> tuple[float, float]:
        """Foreground SNR range (dB, call power over background power in the call's box): -5..+20 at difficulty 1."""
        d = self.difficulty - 1.0
        return (-5.0 - 7.5 * d, 20.0 - 5.0 * d)

    @property
    def overlap_probability(self) -> float:
        """Chance that a further foreground call is placed overlapping an earlier one in time (different band)."""
        return min(0.9, 0.25 * self.difficulty)

    @property
    def test_confusers_mean(self) -> float:
        """Mean number of unlisted confusers per test recording."""
        return 1.5 * self.difficulty

    @property
    def rain_bursts_mean(self) -> float:
        """Mean number of rain bursts per recording."""
        return 0.4 * self.difficulty

    @property
    def distant_calls_mean(self) -> float:
        """Mean number of faint distant calls per recording."""
        return 1.5 * self.difficulty

    @property
    def distant_snr_db_range(self) -> tuple[float, float]:
        """SNR range of distant calls before their low-pass (test recordings are further capped, see writer)."""
        return (-30.0, -12.0 + 2.0 * (self.difficulty - 1.0))


#: Named scales. `hard` has demo counts and difficulty 2 for the quality benchmark.
SCALES: dict[str, SynthScale] = {
    "tiny": SynthScale("tiny", n_train=36, n_test=8, n_tp=72, n_fp=40, tp_recording_fraction=0.9,
                       min_recordings_per_species=3, description="unit tests: seconds to generate"),
    "demo": SynthScale("demo", n_train=200, n_test=60, n_tp=288, n_fp=600, tp_recording_fraction=0.85,
                       min_recordings_per_species=8, description="end-to-end demo: about a minute on 2 cores"),
    "hard": SynthScale("hard", n_train=200, n_test=60, n_tp=288, n_fp=600, tp_recording_fraction=0.85,
                       min_recordings_per_species=8, difficulty=2.0,
                       description="demo counts, fainter calls and more overlap/confusers: quality benchmark"),
    "full": SynthScale("full", n_train=4727, n_test=1992, n_tp=1216, n_fp=7781, tp_recording_fraction=1132 / 4727,
                       min_recordings_per_species=40, description="the competition's counts"),
}


def get_scale(name: str) -> SynthScale:
    """Look up a scale by name, with an error that lists the valid names."""
    try:
        return SCALES[name]
    except KeyError:
        raise ValueError(f"unknown synth scale {name!r}; choose one of {', '.join(SCALES)}") from None
