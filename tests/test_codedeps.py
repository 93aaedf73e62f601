"""rfcx.codedeps: a script's code inputs follow its imports, lazy ones included, and the stages hub only by the
functions a script calls (so editing the probe does not retrain the CNN)."""

from __future__ import annotations

from pathlib import Path

from rfcx.codedeps import module_file, reached_modules, script_code

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"


def test_training_reaches_the_model_code_through_stages_and_lazy_imports_but_not_the_probe() -> None:
    train = reached_modules(SCRIPTS / "train.py")
    # stages.train imports rfcx.train inside the function; train builds the model, which builds the backbone
    assert {"rfcx.stages", "rfcx.train", "rfcx.model", "rfcx.backbones", "rfcx.augment.build", "rfcx.windows"} <= train
    assert not train & {"rfcx.probe", "rfcx.embedding", "rfcx.blend", "rfcx.plots", "rfcx.synth"}


def test_the_probe_reaches_the_embedding_code_but_not_the_cnn() -> None:
    probe = reached_modules(SCRIPTS / "train_probe.py")
    assert {"rfcx.probe", "rfcx.embedding", "rfcx.windows", "rfcx.stages"} <= probe
    assert not probe & {"rfcx.model", "rfcx.train", "rfcx.backbones", "rfcx.augment"}


def test_every_script_resolves_to_existing_files_and_a_package_brings_its_init(tmp_path) -> None:
    for script in SCRIPTS.glob("*.py"):
        files = script_code(script)
        assert files == sorted(set(files)) and all(path.is_file() for path in files), script
    script = tmp_path / "uses_augment.py"
    script.write_text("def f():\n    from rfcx.augment import build\n")
    assert {"rfcx", "rfcx.augment", "rfcx.augment.build"} <= reached_modules(script)
    assert module_file("rfcx.augment").name == "__init__.py" and module_file("numpy") is None
