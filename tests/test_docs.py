"""The user-facing documents stay documents for users: README.md short and free of commit ids, config.yaml's and the
schema's comments free of probe histories (those live in benchmarks/PROBES.md)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: A commit id, abbreviated (7+) or whole (40): a run of 7-40 lowercase hex digits standing alone, with at least one
#: digit (so not a word such as "defaced"; an id may be all digits, so long numbers are written with commas). A
#: sha256 (64 hex digits) is longer than any run this accepts, so a checksum shown as such does not count; nor does a
#: name in a path, a quoted value or a file name (a recording id such as test/bb0000002.flac).
COMMIT_ID = re.compile(r"(?<![0-9A-Za-z/'\"=_,.-])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}"
                       r"(?![0-9A-Za-z'\"_-])(?!\.[A-Za-z])")

#: What a probe history looks like: a pointer to the probes, a numbered round, a fold-0 probe, or a score quoted to
#: 3-4 decimals (0.400-0.9999; settings such as a learning rate of 0.002 are not scores).
HISTORY = re.compile(r"PROBES|\b(?:first|second|third|[a-z]+th|\d+(?:st|nd|rd|th)) round\b|\bround\)|"
                     r"fold-0 probe|\b0\.[4-9]\d{2,3}\b", re.I)


def test_the_patterns_tell_history_from_documentation() -> None:
    assert COMMIT_ID.search("from a fresh clone of 20fb1e1 (2026-12-05)")
    assert COMMIT_ID.search("commit 8db4b92c5e7f0a1b2c3d4e5f60718293a4b5c6d7 fixed it")
    assert not COMMIT_ID.search("sha256 " + "0123456789abcdef" * 4)  # a sha256 shown as such
    assert not COMMIT_ID.search("a defaced facade, 1,234,567 windows, 6,719 files, 0.8251234, CC BY-NC-SA 4.0")
    assert not COMMIT_ID.search("line 3 (recording_id='bb0000002'): recording test/bb0000002.flac not found")
    assert COMMIT_ID.search("as of c481622.") and COMMIT_ID.search("(`3272114`, Eigen's kernels)")
    assert HISTORY.search("scored lower in that time (benchmarks/PROBES.md, fifteenth round)")
    assert HISTORY.search("fold-0 probe 0.769 -> 0.894")
    assert HISTORY.search("OOF 0.9170 / test 0.9029 with it")
    assert not HISTORY.search("# demo budget: 5 (the default) for real data; each band's median (0.5) over time")
    assert not HISTORY.search("Adam's peak learning rate, default 0.002; the best out-of-fold LWLRAP is kept")


def test_the_readme_is_short_and_names_no_commit() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) < 220, f"README.md has {len(lines)} lines: move details to the schema or benchmarks/"
    found = [(number, match.group()) for number, line in enumerate(lines, 1) for match in COMMIT_ID.finditer(line)]
    assert not found, f"commit ids in README.md (history belongs in benchmarks/PROBES.md): {found}"


def test_config_yaml_and_the_schema_say_what_and_why_not_history() -> None:
    for name in ("config.yaml", "workflow/schemas/config.schema.yaml"):
        text = (REPO / name).read_text()
        found = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1) if HISTORY.search(line)]
        assert not found, f"{name}: probe history (belongs in benchmarks/PROBES.md): {found}"
