"""Snakemake script: detections on the recordings of detect.input_dir with the fold ensemble."""
from pathlib import Path

from rfcx.gpu_slots import claim_gpus
from rfcx.runlog import logged

with logged(snakemake.log[0], threads=snakemake.threads), claim_gpus(snakemake.resources.get("gpu", 0)):
    from rfcx.detect import DetectOptions, build_detector, detect_folder  # after `logged` has capped the pools

    out_dir = Path(snakemake.output.summary).parent  # per-recording files and failures.csv go beside the summary
    settings = snakemake.params.detect
    options = DetectOptions(hop_seconds=settings["hop_seconds"], min_score=settings["min_score"],
                            merge_gap=settings["merge_gap_seconds"], chunk_seconds=settings["chunk_seconds"],
                            batch_size=snakemake.params.batch_size, progress=False)
    detector = build_detector(snakemake.input.get("models"), probes=snakemake.input.get("probes", []),
                              embedding_card=snakemake.input.get("embedding_card"),
                              blend=snakemake.input.get("blend"))
    report = detect_folder(detector, snakemake.input.recordings, out_dir, options, train_tp=snakemake.input.train_tp)
    print(report.throughput())
    if report.failed:
        raise RuntimeError(f"{report.failed} recording(s) could not be read: "
                           + "; ".join(error for _, error in report.failures)
                           + f" (listed in {out_dir}/failures.csv)")
