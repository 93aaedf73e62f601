# Config validation, paths and input functions shared by every stage.
from pathlib import Path

from snakemake.utils import validate

from rfcx.runlog import model_job_threads, training_threads


validate(config, "../schemas/config.schema.yaml")

REPO = Path(workflow.basedir)

SYNTHETIC = config["data_dir"] == "synthetic"
DATA = (
    f"{config['synth']['root']}/{config['synth']['scale']}-seed{config['synth']['seed']}"
    if SYNTHETIC
    else config["data_dir"]
)
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


def code(*modules):
    """Source files of the rfcx modules (or package folders) that a step uses. Listed as inputs so that editing one
    re-runs the step, since Snakemake does not track what a script imports."""
    files = []
    for module in modules:
        package = REPO / "rfcx" / module
        files += sorted(package.glob("*.py")) if package.is_dir() else [package.with_name(f"{module}.py")]
    return [workdir_path(path) for path in files]


def workdir_path(path):
    """`path` relative to the working directory when it lies inside it, else absolute. Snakemake re-runs a step whose
    set of input paths changed, so absolute paths would retrain everything after the project folder (the usual
    working directory) is moved or renamed; a working directory outside the code (--directory) keeps absolute
    paths, so that it can move on its own."""
    path = Path(path).resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


MODEL_CODE = ["model", "features", "augment", "losses", "metrics", "loader", "cache", "mel_cache", "train", "backend",
              "confuser_mix"]


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
    """Inputs that calibration adds to a step (`model`: the fitted maps and their code; `scores`: the cross-fitted
    estimate), as a dict for `**`; empty when calibration is off, so the step is then exactly as without it."""
    if not CALIBRATE:
        return {}
    available = {"model": {"calibration": CALIBRATION, "calibration_code": code("calibration")},
                 "scores": {"calibration_scores": CALIBRATION_SCORES}}
    return {key: value for name in names for key, value in available[name].items()}


def final_outputs():
    outputs = [
        f"{RESULTS}/submission.csv",
        f"{RESULTS}/scores/oof.json",
        f"{RESULTS}/scores/test.json",
        f"{RESULTS}/report/training_curves.png",
        f"{RESULTS}/report/augmentations.png",
        f"{RESULTS}/report/submission_preview.csv",
        f"{RESULTS}/summary.txt",
    ]
    if config["detect"]["input_dir"]:
        outputs.append(rules.detect.output.summary)
    return outputs
