"""Deterministic synthetic rainforest recordings in the Kaggle "Rainforest Connection Species Audio Detection" layout.

`generate_dataset(out_dir, scale, seed)` writes train/ and test/ FLACs, train_tp.csv, train_fp.csv and
sample_submission.csv exactly like the competition, plus test_truth.csv and test_boxes.csv (the answers), so the
whole pipeline can be built and tested without the real data. See docs/synth.md.
"""

from rfcx.data.synth.scales import SCALES, SynthScale
from rfcx.data.synth.species import SPECIES, Species
from rfcx.data.synth.writer import SynthSummary, generate_dataset, plan_dataset

__all__ = ["SCALES", "SPECIES", "Species", "SynthScale", "SynthSummary", "generate_dataset", "plan_dataset"]
