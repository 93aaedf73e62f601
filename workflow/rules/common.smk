# Config validation, paths and input functions shared by every stage.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from rfcx.pipeline.codedeps import script_code
from rfcx.pipeline.config import data_dir
from rfcx.pipeline.threads import model_job_threads, training_threads


validate(config, "../schemas/config.schema.yaml")

REPO = Path(workflow.basedir)

SYNTHETIC = config["data_dir"] == "synthetic"
DATA = str(data_dir(config))  # rfcx.pipeline.config.data_dir: the dataset folder, worked out in one place
RESULTS = config["results_dir"]
FOLDS = list(range(config["folds"]["n_folds"]))
GPU = 1 if config["resources"]["gpu"] else 0
# threads of a prediction job: half the cores on CPUs (two side by side), or 4 with a GPU
PREDICT_THREADS = model_job_threads(workflow.cores, GPU, gpu_threads=4)
CSV_FILES = ["train_tp.csv", "train_fp.csv", "sample_submission.csv"]


def train_threads(wildcards):
    """Threads of a fold's training: folds in pairs on half the cores each, an odd last fold on all (CPUs only);
    8 with a GPU."""
    return training_threads(workflow.cores, GPU, 8, int(wildcards.fold), len(FOLDS))


wildcard_constraints:
    fold=r"\d+",


def dataset_csvs():
    """The dataset's tables, the inputs that define its content."""
    return [f"{DATA}/{name}" for name in CSV_FILES]


def dataset_recordings():
    """Every FLAC of a user's dataset, so that replacing or adding one re-runs validation. The synthetic dataset's
    recordings are the synth rule's business (and do not exist yet when the workflow is planned)."""
    if SYNTHETIC:
        return []
    return sorted(str(path) for path in Path(DATA).glob("t*/*.flac"))


def code(script):
    """Source files of every rfcx module that workflow/scripts/`script`.py can import (rfcx.pipeline.codedeps reads them
    from the imports), listed as a rule's inputs so that editing one re-runs the rule: Snakemake does not track
    what a script imports."""
    return [workdir_path(path) for path in script_code(REPO / "workflow" / "scripts" / f"{script}.py")]


def workdir_path(path):
    """`path` relative to the working directory when it lies inside it, else absolute. Snakemake re-runs a step whose
    set of input paths changed, so absolute paths would retrain everything after the project folder (the usual
    working directory) is moved or renamed; a working directory outside the code (--directory) keeps absolute
    paths, so that it can move on its own."""
    path = Path(path).resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)



PSEUDO = config["pseudo_label"]["enabled"]
#: Where the models that predict live: stage 2's (train_stage2) with pseudo-labels, else stage 1's (train).
FINAL_MODELS = f"{RESULTS}/stage2/models" if PSEUDO else f"{RESULTS}/models"


def run_settings():
    """The config sections that define a training run (what re-runs training when changed)."""
    return {name: config[name] for name in ("seed", "windows", "features", "augment", "model", "train")}


#: The prediction settings of whole-recording scoring (test and held-out train recordings): passed as params, they
#: re-run it when changed, and the other `predict` options (OOF crops, oof_recordings) do not.
SLIDING = {key: config["predict"][key] for key in ("hop_seconds", "pooling", "batch_size")}


CALIBRATE = config["calibration"]["enabled"]
CALIBRATION = f"{RESULTS}/calibration/calibration.json"
CALIBRATION_SCORES = f"{RESULTS}/scores/calibration.json"


def calibration_inputs(*names):
    """Inputs that calibration adds to a step (`model`: the fitted maps; `scores`: the cross-fitted
    estimate), as a dict for `**`; empty when calibration is off, so the step is then exactly as without it."""
    if not CALIBRATE:
        return {}
    available = {"model": {"calibration": CALIBRATION},
                 "scores": {"calibration_scores": CALIBRATION_SCORES}}
    return {key: value for name in names for key, value in available[name].items()}


#: The model families trained (families): cnn, probe. With anything but the CNN alone, the submission is the
#: blend rule's (weights chosen out of fold), and the CNN's own fold ensemble (rule ensemble) is not run.
FAMILIES = config["families"]
BLEND = FAMILIES != ["cnn"]
if "probe" in FAMILIES:
    from rfcx.model.embedding import EmbeddingUnavailable, resolve_model

    try:  # stop before any work, with what to install and the model's licence
        EMBEDDING_MODEL = resolve_model(config["embedding"])
    except EmbeddingUnavailable as error:
        raise WorkflowError(f"rfcx: {error}") from None
    print(f"rfcx: families {FAMILIES}; {EMBEDDING_MODEL.describe()}", file=sys.stderr)
if BLEND and "cnn" in FAMILIES and not config["predict"]["oof_recordings"]:
    raise WorkflowError("rfcx: blending the cnn with other families chooses weights on out-of-fold whole "
                        "recordings: predict.oof_recordings must be true")


def family_oof_recordings(family):
    """A family's held-out train recordings scored whole, one file per fold (what the blend weights are chosen on)."""
    pattern = {"cnn": f"{RESULTS}/oof/fold{{fold}}_recordings.parquet",
               "probe": f"{RESULTS}/probe/oof/fold{{fold}}_recordings.parquet"}[family]
    return expand(pattern, fold=FOLDS)


def family_test_folds(family):
    """A family's test recordings scored by each fold model."""
    pattern = {"cnn": f"{RESULTS}/test/fold{{fold}}.parquet", "probe": f"{RESULTS}/probe/test/fold{{fold}}.parquet"}
    return expand(pattern[family], fold=FOLDS)


def family_oof_scores():
    """Each family's out-of-fold scores file, for the summary."""
    names = {"cnn": f"{RESULTS}/scores/oof.json", "probe": f"{RESULTS}/scores/oof_probe.json"}
    return {family: names[family] for family in FAMILIES}


def detector_inputs():
    """What the detector is made of: each family's fold files (the probe's with its embedding card), and the
    blend's weights when there are several families."""
    inputs = {}
    if "cnn" in FAMILIES:
        inputs["models"] = expand(f"{FINAL_MODELS}/fold{{fold}}/model.keras", fold=FOLDS)
    if "probe" in FAMILIES:
        inputs["probes"] = expand(f"{RESULTS}/probe/fold{{fold}}/probe.npz", fold=FOLDS)
        inputs["embedding_card"] = f"{RESULTS}/embeddings/model.json"
    if BLEND:
        inputs["blend"] = f"{RESULTS}/scores/blend.json"
    return inputs


def final_outputs():
    outputs = [
        f"{RESULTS}/submission.csv",
        f"{RESULTS}/scores/test.json",
        f"{RESULTS}/report/submission_preview.csv",
        f"{RESULTS}/summary.txt",
        *family_oof_scores().values(),
    ]
    if "cnn" in FAMILIES:
        outputs += [f"{RESULTS}/report/training_curves.png", f"{RESULTS}/report/augmentations.png"]
    if BLEND:
        outputs.append(f"{RESULTS}/scores/blend.json")
    if config["detect"]["input_dir"]:
        outputs.append(rules.detect.output.summary)
    return outputs
