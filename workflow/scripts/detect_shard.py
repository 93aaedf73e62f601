"""Snakemake script: detections on one shard of the archive's recordings with the fold ensemble."""
from pathlib import Path

from rfcx.pipeline.gpu_slots import claim_gpus
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0], threads=snakemake.threads), claim_gpus(snakemake.resources.get("gpu", 0)):
    from rfcx.data.archive import manifest_frame  # after `logged` has capped the pools
    from rfcx.io import write_json
    from rfcx.prediction.detect import DetectOptions, build_detector, detect_recordings
    from rfcx.prediction.detections_export import load_bands

    out_dir = Path(snakemake.output.detections).parents[2]  # <detections>/shards/<shard>/: recordings mirror below
    settings = snakemake.params.detect
    options = DetectOptions(hop_seconds=settings["hop_seconds"], min_score=settings["min_score"],
                            merge_gap=settings["merge_gap_seconds"], chunk_seconds=settings["chunk_seconds"],
                            batch_size=snakemake.params.batch_size, progress=False)
    detector = build_detector(snakemake.input.get("models"), probes=snakemake.input.get("probes", []),
                              embedding_card=snakemake.input.get("embedding_card"),
                              blend=snakemake.input.get("blend"))
    bands = load_bands(train_tp=snakemake.input.train_tp)
    result = detect_recordings(detector, snakemake.params.root, manifest_frame(snakemake.params.recordings),
                               out_dir, options, bands)
    print(result.report.throughput())
    result.write(snakemake.output.detections, snakemake.output.summary, snakemake.output.failures)
    write_json(result.stamp, snakemake.output.stamp)
