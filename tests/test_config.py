"""The configuration: one schema with a default for every option; shipped configs validate; pins agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from rfcx.pipeline.config import SCHEMA_PATH, load_config

REPO = Path(__file__).resolve().parents[1]


def all_properties(schema: dict, path: str = ""):
    for name, sub in schema.get("properties", {}).items():
        yield f"{path}{name}", sub
        yield from all_properties(sub, f"{path}{name}.")


def all_items_properties(schema: dict):
    """`all_properties`, and those of the items of list options (the augmentation entries' common keys)."""
    for name, sub in all_properties(schema):
        yield name, sub
        yield from all_properties(sub.get("items", {}), f"{name}[].")


def test_every_option_has_a_default_and_a_description() -> None:
    """The schema is where every option is documented (config.yaml shows only a few): each one, sections and the
    augmentation entries' keys included, says what it does; each option has a default."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    undocumented = [name for name, sub in all_items_properties(schema) if not str(sub.get("description", "")).strip()]
    assert not undocumented, f"options without a description in the schema: {undocumented}"
    no_default = [name for name, sub in all_properties(schema) if "default" not in sub]
    assert not no_default, f"options without a default: {no_default}"


#: What config.yaml sets to a demo-sized value on purpose (each marked `# demo budget:` there): everything else it
#: sets must be the schema's default, so that the schema holds the one set of defaults.
DEMO_BUDGET = {"folds.n_folds", "train.epochs", "train.steps_per_epoch", "train.batch_size"}


def leaves(config: dict, path: str = "") -> dict:
    """Every value a config sets, by dotted name (lists are values)."""
    found = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            found.update(leaves(value, f"{path}{key}."))
        else:
            found[f"{path}{key}"] = value
    return found


def test_config_yaml_sets_the_schema_defaults_except_the_demo_budget() -> None:
    shown = leaves(yaml.safe_load((REPO / "config.yaml").read_text()))
    defaults = leaves(load_config(None))
    assert not set(shown) - set(defaults), "config.yaml sets options the schema does not know"
    differ = {name for name, value in shown.items() if value != defaults[name]}
    assert differ == DEMO_BUDGET, (f"not the schema's default nor a listed demo budget: {differ - DEMO_BUDGET}; "
                                   f"listed but equal to the default: {DEMO_BUDGET - differ}")
    text = (REPO / "config.yaml").read_text()
    for name in DEMO_BUDGET:
        key = name.rsplit(".", 1)[-1]
        assert re.search(rf"^\s+{key}: [^#\n]+# demo budget: ", text, flags=re.M), f"{name}: no '# demo budget:' note"


def test_the_reference_recipe_names_only_what_differs_from_the_defaults() -> None:
    """config/reference.yaml is a list of overrides: a value equal to the schema's default would be a second copy."""
    reference = leaves(yaml.safe_load((REPO / "config" / "reference.yaml").read_text()))
    defaults = leaves(load_config(None))
    assert [name for name, value in reference.items() if value == defaults[name]] == []


@pytest.mark.parametrize("path", ["config.yaml", *sorted(str(p.relative_to(REPO)) for p in (REPO / "config").glob("*.yaml"))])
def test_the_shipped_configs_validate(path: str) -> None:
    config = load_config(REPO / path)
    assert config["folds"]["n_folds"] >= 2


def test_the_kaggle_config_sets_its_own_folds_and_training_budget() -> None:
    """`snakemake --configfile config/kaggle.yaml` merges it over config.yaml (the Snakefile's `configfile:`), so
    whatever it leaves out comes from the demo's settings: the fold count and the training budget, sized for 2 CPU
    cores, must not be among those."""
    kaggle = yaml.safe_load((REPO / "config" / "kaggle.yaml").read_text())
    for section, option in [("folds", "n_folds"), ("train", "epochs"), ("train", "steps_per_epoch"),
                            ("train", "batch_size"), ("train", "learning_rate")]:
        assert option in kaggle.get(section, {}), f"{section}.{option} would come from the demo's config.yaml"
    config = load_config(REPO / "config.yaml", kaggle)
    assert config["folds"]["n_folds"] == 5
    assert config["resources"]["gpu"] is True and config["train"]["epochs"] == 40
    assert config["train"]["steps_per_epoch"] == 0  # one pass over the real data's windows per epoch


def test_an_unknown_or_wrong_option_is_named() -> None:
    with pytest.raises(ValueError, match="train: Additional properties.*epoch"):
        load_config(None, {"train": {"epoch": 3}})
    with pytest.raises(ValueError, match="folds.n_folds"):
        load_config(None, {"folds": {"n_folds": 1}})


def test_a_noise_gate_without_a_band_floor_is_refused_when_the_config_loads() -> None:
    """The gate works above each band's floor; without one it would silently do nothing (or fail only at training)."""
    for features in ({"noise_gate_db": 3.0, "band_floor_quantile": 0}, {"band_floor_quantile": 0}):  # the default gate
        with pytest.raises(ValueError, match="noise_gate_db"):
            load_config(None, {"features": features})
    assert load_config(None, {"features": {"noise_gate_db": 3.0, "band_floor_quantile": 0.5}})["features"]["noise_gate_db"] == 3.0
    assert load_config(None, {"features": {"noise_gate_db": 5.0}})["features"]["band_floor_quantile"] == 0.5
    assert load_config(None, {"features": {"noise_gate_db": 0, "band_floor_quantile": 0}})["features"]["noise_gate_db"] == 0


def test_defaults_fill_every_section() -> None:
    config = load_config(None)
    assert config["features"]["n_fft"] == 2048 and config["features"]["hop_length"] == 512
    assert config["features"]["fmin"] == 84.0 and config["features"]["fmax"] == 15056.0
    assert config["augment"] == load_config(REPO / "config.yaml")["augment"]


#: Pinned for `make test` only, so absent from the environment the workflow's rules run in.
TEST_ONLY_PACKAGES = frozenset({"pytest", "pytest-xdist"})


def pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"^\s*(?:-\s+)?([A-Za-z0-9_.\-\[\]]+)==([^\s#]+)", text, flags=re.M))


def test_environment_yml_and_requirements_pin_the_same_versions() -> None:
    required = pins((REPO / "requirements.txt").read_text())
    assert pins((REPO / "environment.yml").read_text()) == required
    rule_env = pins((REPO / "workflow/envs/rfcx.yaml").read_text())
    # the rules' conda env runs the workflow, not the tests
    assert rule_env == {name: version for name, version in required.items() if name not in TEST_ONLY_PACKAGES}
    # the embedding family's rules: the same plus its opt-in packages
    embedding = pins((REPO / "requirements-embedding.txt").read_text())
    assert pins((REPO / "workflow/envs/embedding.yaml").read_text()) == {**rule_env, **embedding}


def test_the_reference_recipe_layers_over_config_yaml_and_validates() -> None:
    reference = yaml.safe_load((REPO / "config" / "reference.yaml").read_text())
    layered = load_config(REPO / "config.yaml", reference)  # section by section, as snakemake --configfile does
    alone = load_config(REPO / "config" / "reference.yaml")
    for config in (layered, alone):
        assert config["model"]["output"] == "softmax" and config["model"]["head"] == "reference"
        assert not config["model"]["frequency_channel"] and config["model"]["bn_momentum"] == 0.99
        assert config["train"]["labels"] == "anchor" and config["train"]["schedule"] == "constant"
        assert config["windows"]["window_seconds"] == 10.0
        assert config["windows"]["fp_window_fraction"] == 0
        assert not any(entry["type"] == "ConfuserMix" for entry in config["augment"])
        # the notebook's 64 x 128 image, whatever config.yaml's default image is
        assert (config["features"]["n_mels"], config["features"]["frames"]) == (64, 128)
        assert config["predict"]["oof_crop_shifts_seconds"] == [0.0]  # one centred crop per window, as validated
        assert [entry["type"] for entry in config["augment"]] == [
            "GaussianNoiseSNR", "PinkNoiseSNR", "PitchShift", "TimeShift", "VolumeControl"]
    assert layered["train"]["epochs"] == load_config(REPO / "config.yaml")["train"]["epochs"]  # same budget
    assert layered["results_dir"] != load_config(REPO / "config.yaml")["results_dir"]


def test_the_real_audio_config_blends_both_families_over_config_yaml() -> None:
    layered = load_config(REPO / "config.yaml", yaml.safe_load((REPO / "config" / "realaudio.yaml").read_text()))
    assert layered["families"] == ["cnn", "probe"] and layered["results_dir"] == "results-realaudio"
    assert layered["predict"]["oof_recordings"]  # the blend's weights are chosen on them
    assert load_config(REPO / "config.yaml")["families"] == ["cnn"]  # the default stays the CNN alone: opt-in
