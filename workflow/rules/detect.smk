# Detection over a field archive with the fold ensemble: active only when detect.input_dir is set. The archive is
# listed when the workflow is planned (rfcx.data.archive.plan: the manifest), split into shards of about
# detect.hours_per_job hours of audio, one job each, and gathered into the archive's tables.

DETECT_DIR = config["detect"]["output"] or f"{RESULTS}/detections"


if config["detect"]["input_dir"]:
    from rfcx.data.archive import plan as plan_archive

    ARCHIVE = plan_archive(config["detect"], DETECT_DIR)
    SHARD_FILES = {"detections": "detections.parquet", "summaries": "summary.parquet",
                   "failures": "failures.parquet", "stamps": "detector.json"}

    wildcard_constraints:
        shard=r"shard-[0-9a-f]{10}",

    rule detect_shard:
        input:
            # The shard's recordings: one replaced in place re-runs this shard alone.
            recordings=lambda wildcards: ARCHIVE.recordings(wildcards.shard),
            **detector_inputs(),
            train_tp=f"{DATA}/train_tp.csv",
            code=code("detect_shard"),
        output:
            detections=f"{DETECT_DIR}/shards/{{shard}}/detections.parquet",
            summary=f"{DETECT_DIR}/shards/{{shard}}/summary.parquet",
            failures=f"{DETECT_DIR}/shards/{{shard}}/failures.parquet",
            stamp=f"{DETECT_DIR}/shards/{{shard}}/detector.json",
        params:
            # The shard's manifest rows: a file added, removed or replaced in it re-runs this shard alone.
            recordings=lambda wildcards: ARCHIVE.rows(wildcards.shard),
            root=str(ARCHIVE.manifest.root),
            detect=config["detect"],
            batch_size=config["predict"]["batch_size"],
        resources:
            gpu=GPU,
        threads: PREDICT_THREADS
        conda:
            "../envs/embedding.yaml" if "probe" in FAMILIES else "../envs/rfcx.yaml"
        log:
            f"{RESULTS}/logs/detect/{{shard}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/detect/{{shard}}.tsv"
        script:
            "../scripts/detect_shard.py"

    rule detect:
        input:
            **{kind: expand(f"{DETECT_DIR}/shards/{{shard}}/{name}", shard=sorted(ARCHIVE.shards))
               for kind, name in SHARD_FILES.items()},
            manifest_failures=f"{DETECT_DIR}/manifest_failures.csv",
            code=code("detect_gather"),
        output:
            summary=f"{DETECT_DIR}/summary.csv",
            detections=f"{DETECT_DIR}/detections.parquet",
            table=f"{DETECT_DIR}/detections.csv",
            failures=f"{DETECT_DIR}/failures.csv",
            by_hour=f"{DETECT_DIR}/activity_by_hour.csv",
            by_date=f"{DETECT_DIR}/activity_by_date.csv",
            activity=report(f"{DETECT_DIR}/activity.png", category="Detection",
                            caption="../report/activity.rst"),
            stamp=f"{DETECT_DIR}/detect.json",
        conda:
            "../envs/rfcx.yaml"
        log:
            f"{RESULTS}/logs/detect/gather.log",
        script:
            "../scripts/detect_gather.py"
