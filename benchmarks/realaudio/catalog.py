"""Regenerate sources.csv (and fill a cache) from local bare-git snapshots of the source repositories.

Maintainer tool, not needed to build the dataset: build.py only reads sources.csv. It exists so that the pinned commits,
sha256 sums and durations in sources.csv can be recomputed rather than typed by hand. Snapshots are expected as
`<mirror>/<owner>+<name>/repo` (bare git directories); every file is read with `git show <commit>:<path>`.

    python benchmarks/realaudio/catalog.py --mirror /work/.mirror --cache /work/realaudio/cache
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import SOURCE_COLUMNS, Source, crop_spans, decode_source  # noqa: E402

HERE = Path(__file__).resolve().parent
GPL2 = "GPL (>= 2)"
#: repo -> (licence, where it is stated)
LICENCES = {
    "scikit-maad/scikit-maad": ("BSD-3-Clause", "LICENSE + README 'License' section (data/ ships in the repo)"),
    "kitzeslab/opensoundscape": ("MIT", "LICENSE (repo-wide; no separate data licence for tests/audio)"),
    "librosa/data": ("CC BY 3.0 (InspectorJ, freesound 456440)", "audio/456440__inspectorj__bird-whistling-robin-single-13.txt"),
    "cran/seewave": (GPL2, "DESCRIPTION License field; man/<name>.Rd source"),
    "cran/NatureSounds": (GPL2, "DESCRIPTION License field; man/<name>.Rd"),
    "cran/monitoR": ("GPL-2", "DESCRIPTION License field; man/<name>.Rd"),
    "cran/soundecology": ("GPL-3", "DESCRIPTION License field; man/tropicalsound.Rd (Villanueva-Rivera, Puerto Rico)"),
    "cran/ohun": (GPL2, "DESCRIPTION License field; man/<name>.Rd"),
    "cran/dynaSpec": (GPL2, "DESCRIPTION License field"),
    "cran/warbleR": (GPL2, "DESCRIPTION License field; R/<name>-data.R (xeno-canto recording)"),
    "panchorivasf/Rthoptera": ("CC BY-NC 4.0 (Cesare Brizio, xeno-canto 753101)",
                               "DESCRIPTION License field; R/gryllus.R"),
    # per file: see phoebe_licence()
    "danielcfurr/phoebe": ("", "audio/data/licenses.md (per file; species in audio/data/app_data.json)"),
}
#: (repo, path) -> commit, for files no longer in the snapshot's HEAD (otherwise HEAD is pinned)
PINNED = {
    ("cran/warbleR", "data/Phae.cuvi.rda"): "04d8fb4bf76d51a26fc0c0f65f769cb06837f049",  # warbleR 1.0.1
    ("panchorivasf/Rthoptera", "data/gryllus.rda"): "a7846550050e878c192416840244d147aefb5b19",  # before data moved out
}
#: danielcfurr/phoebe: 6 s xeno-canto clips (one per recording), ids from audio/data/app_data.json
PHOEBE = {
    "Poecile rufescens": "143244 364467 364425 129809 143245 364396 419796 561445 277124 649147",
    "Sayornis nigricans": "449522 449553 486800 322227 665525 773232 773220 773233 450999 192052",
    "Setophaga townsendi": "150351 187467 150359 193987 647206 616638 187462 150357 296039 512267",
    "Zonotrichia leucophrys": "236243 826168 179235 575062 776583 289834 207793 282088 192244 157773",
}
MAAD_INDICES = [f"data/indices/S4A03895_20190522_{h:02d}{m:02d}00.wav" for h in range(24) for m in (0, 30)]

# name, kind, species, repo, path, member, crops
ENTRIES: list[tuple[str, str, str, str, str, str, str]] = [
    *[(f"phae_long{i}", "call", "Phaethornis longirostris", "cran/NatureSounds", f"data/Phae.long{i}.rda", "", "")
      for i in range(1, 5)],
    ("lbh_est", "call", "Phaethornis longirostris", "cran/NatureSounds", "data/lbh.est.rda", "", ""),
    ("ohun_lbh1", "call", "Phaethornis longirostris", "cran/ohun", "data/lbh1.rda", "", ""),
    ("ohun_lbh2", "call", "Phaethornis longirostris", "cran/ohun", "data/lbh2.rda", "", ""),
    ("monk_parakeet_est", "call", "Myiopsitta monachus", "cran/NatureSounds", "data/monk.parakeet.est.rda", "", ""),
    ("cryp_soui", "distractor", "Crypturellus soui", "cran/NatureSounds", "data/Cryp.soui.rda", "", ""),
    ("tico", "distractor", "Zonotrichia capensis", "cran/seewave", "data/tico.RData", "", ""),
    ("pellucens", "distractor", "Oecanthus pellucens", "cran/seewave", "data/pellucens.RData", "", ""),
    ("orni", "distractor", "Cicada orni", "cran/seewave", "data/orni.RData", "", ""),
    ("btnw", "distractor", "Setophaga virens", "cran/monitoR", "data/btnw.rda", "", ""),
    ("oven", "call", "Seiurus aurocapilla", "cran/monitoR", "data/oven.rda", "", ""),
    # monitoR's survey soundscape holds songs of its two example species; crops from data/survey_anno.rda
    # (name 1 = BTNW, 2 = OVEN; the last OVEN box overlaps a BTNW box and is left out).
    ("survey_btnw", "distractor", "Setophaga virens", "cran/monitoR", "data/survey.rda", "",
     "1.059-2.586;9.850-11.056;20.891-22.289"),
    ("survey_oven", "call", "Seiurus aurocapilla", "cran/monitoR", "data/survey.rda", "",
     "4.209-7.407;7.552-10.702;13.836-15.845"),
    ("canyon_wren", "distractor", "Catherpes mexicanus", "cran/dynaSpec", "data/canyon_wren.rda", "", ""),
    ("barn_swallow_male", "distractor", "Hirundo rustica", "cran/dynaSpec", "inst/maleBarnSwallow.wav", "", ""),
    ("barn_swallow_female", "distractor", "Hirundo rustica", "cran/dynaSpec", "inst/femaleBarnSwallow.wav", "", ""),
    ("great_plains_toad", "call", "Anaxyrus cognatus", "kitzeslab/opensoundscape", "tests/audio/great_plains_toad.wav",
     "", ""),
    ("gryllus", "call", "Gryllus campestris", "panchorivasf/Rthoptera", "data/gryllus.rda", "", ""),
    *[(f"xc{xc}", "call", species, "danielcfurr/phoebe", f"audio/data/processed/{xc}.mp3", "", "")
      for species, ids in PHOEBE.items() for xc in ids.split()],
    ("phae_cuvi", "distractor", "Phaeocroa cuvierii", "cran/warbleR", "data/Phae.cuvi.rda", "", ""),
    ("rugr_drum", "distractor", "Bonasa umbellus", "kitzeslab/opensoundscape", "tests/audio/rugr_drum.wav", "", ""),
    ("spinetail_sp", "call", "spinetail (scikit-maad label SP)", "scikit-maad/scikit-maad", "data/spinetail.wav", "",
     "@SP"),
    ("spinetail_crer", "distractor", "scikit-maad label CRER (not identified there)", "scikit-maad/scikit-maad", "data/spinetail.wav", "", "@CRER"),
    ("robin", "distractor", "Erithacus rubecula", "librosa/data", "audio/456440__inspectorj__bird-whistling-robin-single-13.hq.ogg",
     "", ""),
    ("peewit", "distractor", "Vanellus vanellus", "cran/seewave", "data/peewit.RData", "", ""),
    ("sheep", "distractor", "Ovis aries", "cran/seewave", "data/sheep.RData", "", ""),
    ("tropicalsound", "soundscape", "", "cran/soundecology", "data/tropicalsound.RData", "", ""),
    ("osc_1min", "soundscape", "", "kitzeslab/opensoundscape", "tests/audio/1min.wav", "", ""),
    ("osc_birds_10s", "soundscape", "", "kitzeslab/opensoundscape", "opensoundscape/sample_data/birds_10s.wav", "", ""),
    ("osc_metadata", "soundscape", "", "kitzeslab/opensoundscape", "tests/audio/metadata.wav", "", ""),
    *[(f"osc_aru_{i}", "soundscape", "", "kitzeslab/opensoundscape", f"tests/audio/aru_{i}.wav", "", "")
      for i in range(1, 6)],
    *[(f"maad_{Path(p).stem}", "soundscape", "", "scikit-maad/scikit-maad", p, "", "") for p in MAAD_INDICES],
]


def git_dir(mirror: Path, repo: str) -> Path:
    return mirror / repo.replace("/", "+") / "repo"


def git(gdir: Path, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(gdir), *args], check=True, capture_output=True).stdout


def raven_crops(text: str, label: str) -> str:
    """'t0-t1;...' of one label in an Audacity/Raven label file (time line followed by a '\\ f0 f1' line)."""
    spans = [line.split("\t") for line in text.splitlines() if line and not line.startswith("\\")]
    return ";".join(f"{float(t0):.3f}-{float(t1):.3f}" for t0, t1, name in spans if name.strip() == label)


def phoebe_licence(gdir: Path, commit: str, path: str) -> str:
    """'CC BY-NC-SA 4.0 (author, xeno-canto id)' from the licenses.md row of one clip."""
    for line in git(gdir, "show", f"{commit}:audio/data/licenses.md").decode().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] == Path(path).name:
            _, author, url, lic = cells
            kind, version = lic.strip("/").split("/")[2:4]
            return f"CC {kind.upper()} {version} ({author}, xeno-canto {url.rstrip('/').rsplit('/', 1)[-1]})"
    raise SystemExit(f"no licence row for {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, kind, species, repo, path, member, crops in ENTRIES:
        gdir = git_dir(args.mirror, repo)
        commit = PINNED.get((repo, path)) or git(gdir, "rev-parse", "HEAD").decode().strip()
        data = git(gdir, "show", f"{commit}:{path}")
        if crops.startswith("@"):
            labels = git(gdir, "show", f"{commit}:{str(Path(path).with_suffix('.txt'))}").decode()
            crops = raven_crops(labels, crops[1:])
        sha = hashlib.sha256(data).hexdigest()
        (args.cache / sha).write_bytes(data)
        licence, licence_source = LICENCES[repo]
        if repo == "danielcfurr/phoebe":
            licence = phoebe_licence(gdir, commit, path)
        row = {"name": name, "kind": kind, "species": species, "repo": repo, "commit": commit, "path": path,
               "member": member, "crops": crops,
               "url": f"https://raw.githubusercontent.com/{repo}/{commit}/{quote(path)}",
               "licence": licence, "licence_source": licence_source, "sha256": sha, "seconds": ""}
        clips = decode_source(Source(**row), data)
        row["seconds"] = f"{sum(b - a for c in clips for a, b in crop_spans(c, row['crops'])) / 48_000:.2f}"
        rows.append(row)
        print(name, row["seconds"], file=sys.stderr)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SOURCE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (HERE / "sources.csv").write_text(buffer.getvalue(), encoding="utf-8")


if __name__ == "__main__":
    main()
