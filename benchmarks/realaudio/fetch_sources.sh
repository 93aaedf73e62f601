#!/usr/bin/env bash
# Fill a cache folder (files named by sha256) for build.py, either from local bare-git snapshots of the source
# repositories (offline: MIRROR=<dir holding owner+name/repo>) or, without MIRROR, from each row's pinned URL.
# build.py verifies every sha256 again, so a wrong file can never slip through.
#   usage: [MIRROR=/work/.mirror] benchmarks/realaudio/fetch_sources.sh CACHE_DIR
set -euo pipefail
cache=${1:?usage: fetch_sources.sh CACHE_DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$cache"
python3 - "$here/sources.csv" <<'PY' | while IFS=$'\t' read -r repo commit path url sha; do
import csv, sys
for r in csv.DictReader(open(sys.argv[1], newline="")):
    print("\t".join((r["repo"], r["commit"], r["path"], r["url"], r["sha256"])))
PY
  [[ -s "$cache/$sha" ]] && continue
  if [[ -n "${MIRROR:-}" ]]; then
    git --git-dir="$MIRROR/${repo/\//+}/repo" show "$commit:$path" > "$cache/$sha.part"
  else
    curl -fsSL "$url" -o "$cache/$sha.part"
  fi
  echo "$sha  $cache/$sha.part" | sha256sum -c --quiet - || { echo "sha256 mismatch: $repo $path" >&2; exit 1; }
  mv "$cache/$sha.part" "$cache/$sha"
done
echo "cache ready: $cache"
