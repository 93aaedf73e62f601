"""Snakemake script: the archive's detections, summary, failures and activity overview from its shards."""
import json
from pathlib import Path

import pandas as pd

from rfcx.pipeline.runlog import logged
from rfcx.prediction.detections_export import ShardResult, gather

with logged(snakemake.log[0]):
    stamps = [json.loads(open(path).read()) for path in snakemake.input.stamps]
    if any(stamp != stamps[0] for stamp in stamps):
        raise RuntimeError("the shards were scored by different detectors or settings: "
                           + ", ".join(snakemake.input.stamps))
    shards = [ShardResult.read(*paths) for paths in zip(snakemake.input.detections, snakemake.input.summaries,
                                                         snakemake.input.failures)]
    result = gather(pd.read_csv(snakemake.input.manifest_failures), shards, Path(snakemake.output.summary).parent,
                    stamps[0] if stamps else {})
    print(f"detect: {len(result.summary)} recordings in {len(shards)} shard(s), {len(result.detections)} "
          f"detections, {len(result.failures)} failed")
    for file, error in result.failures.itertuples(index=False, name=None):
        print(f"detect: FAILED {error}")
