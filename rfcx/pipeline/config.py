"""The workflow configuration: one JSON schema (workflow/schemas/config.schema.yaml) with a default for every option.

Snakemake validates `config.yaml` against it with `snakemake.utils.validate`; the `rfcx` command line uses
`load_config`, which applies the same schema and defaults, so both entry points see identical settings.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def _validator_with_defaults() -> type:
    """A Draft 2020-12 validator that fills in each property's default before validating it (as snakemake does)."""
    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        for name, subschema in properties.items():
            if isinstance(instance, dict) and "default" in subschema:
                instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})


def apply_schema(config: dict[str, Any]) -> dict[str, Any]:
    """Validate a config dict and return a copy with every default filled in; raises ValueError naming the option."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    filled = copy.deepcopy(config or {})
    errors = sorted(_validator_with_defaults()(schema).iter_errors(filled), key=lambda error: list(error.path))
    if errors:
        lines = [f"  - {'.'.join(map(str, error.path)) or '(top level)'}: {error.message}" for error in errors]
        raise ValueError("invalid configuration:\n" + "\n".join(lines))
    return filled


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config (or none, for all defaults), merge `overrides` section by section, validate, fill defaults."""
    config = yaml.safe_load(Path(path).read_text()) if path else {}
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return apply_schema(config or {})


def data_dir(config: dict[str, Any]) -> Path:
    """The dataset folder a config selects: `data_dir` itself, or for "synthetic" the embedded dataset's folder under
    synth.root, one per scale and seed. The one place this is worked out: the workflow's DATA (common.smk), the
    benchmarks and the rule scripts (through their dataset inputs, rfcx.pipeline.job.data_dir) all get it from
    here."""
    if config["data_dir"] != "synthetic":
        return Path(config["data_dir"])
    synth = config["synth"]
    return Path(synth["root"]) / f"{synth['scale']}-seed{synth['seed']}"
