"""rfcx.pipeline.codedeps: a script's code inputs follow its imports, lazy ones included, and the stages hub only by the
functions a script calls (so editing the probe does not retrain the CNN)."""

from __future__ import annotations

from pathlib import Path

from rfcx.pipeline.codedeps import module_file, reached_modules, script_code

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"


def test_training_reaches_the_model_code_through_stages_and_lazy_imports_but_not_the_probe() -> None:
    train = reached_modules(SCRIPTS / "train.py")
    # stages.train imports rfcx.training.train inside the function; train builds the model, which builds the backbone
    assert {"rfcx.pipeline.stages", "rfcx.training.train", "rfcx.model.detector", "rfcx.model.backbones",
            "rfcx.model.augment.build", "rfcx.data.windows"} <= train
    assert not train & {"rfcx.model.probe", "rfcx.model.embedding", "rfcx.prediction.blend", "rfcx.pipeline.plots",
                        "rfcx.data.synth"}


def test_the_probe_reaches_the_embedding_code_but_not_the_cnn() -> None:
    probe = reached_modules(SCRIPTS / "train_probe.py")
    assert {"rfcx.model.probe", "rfcx.model.embedding", "rfcx.data.windows", "rfcx.pipeline.stages"} <= probe
    assert not probe & {"rfcx.model.detector", "rfcx.training.train", "rfcx.model.backbones", "rfcx.model.augment"}


def test_every_script_resolves_to_existing_files_and_a_package_brings_its_init(tmp_path) -> None:
    for script in SCRIPTS.glob("*.py"):
        files = script_code(script)
        assert files == sorted(set(files)) and all(path.is_file() for path in files), script
    script = tmp_path / "uses_augment.py"
    script.write_text("def f():\n    from rfcx.model.augment import build\n")
    assert {"rfcx", "rfcx.model.augment", "rfcx.model.augment.build"} <= reached_modules(script)
    assert module_file("rfcx.model.augment").name == "__init__.py" and module_file("numpy") is None


def test_prediction_and_detection_load_models_without_the_training_code() -> None:
    for script in ("predict_test.py", "predict_oof.py", "predict_oof_recordings.py", "detect_shard.py"):
        reached = reached_modules(SCRIPTS / script)
        assert "rfcx.model.detector" in reached, script
        assert not {module for module in reached if module.startswith("rfcx.training")}, script
