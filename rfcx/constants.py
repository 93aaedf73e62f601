"""Facts about the Kaggle "Rainforest Connection Species Audio Detection" layout that every module shares."""

from __future__ import annotations

#: Number of species (labels s0..s23).
N_SPECIES: int = 24
#: Sample rate of every recording in the competition data, in Hz.
SAMPLE_RATE: int = 48_000
#: Length of every recording in the competition data, in seconds.
RECORDING_SECONDS: float = 60.0
#: Columns of train_tp.csv and train_fp.csv, in the competition's order.
BOX_COLUMNS: tuple[str, ...] = ("recording_id", "species_id", "songtype_id", "t_min", "f_min", "t_max", "f_max")
#: Submission columns after recording_id.
SPECIES_COLUMNS: tuple[str, ...] = tuple(f"s{i}" for i in range(N_SPECIES))
#: Target (truth) columns beside the score columns: OOF predictions' labels, pseudo-labels' soft targets.
TARGET_COLUMNS: tuple[str, ...] = tuple(f"t{i}" for i in range(N_SPECIES))
#: Columns of sample_submission.csv (and of submission.csv).
SUBMISSION_COLUMNS: tuple[str, ...] = ("recording_id", *SPECIES_COLUMNS)
