# Detection on new field recordings with the fold ensemble: active only when detect.input_dir is set.

DETECT_DIR = config["detect"]["output"] or f"{RESULTS}/detections"


if config["detect"]["input_dir"]:

    rule detect:
        input:
            # The folder itself: adding or removing a recording changes its mtime, so the rule re-runs
            # (and skips the recordings already done).
            recordings=config["detect"]["input_dir"],
            **detector_inputs(),
            train_tp=f"{DATA}/train_tp.csv",
            code=code("detect"),
        output:
            summary=f"{DETECT_DIR}/summary.csv",
        params:
            detect=config["detect"],
            batch_size=config["predict"]["batch_size"],
        resources:
            gpu=GPU,
        threads: PREDICT_THREADS
        conda:
            "../envs/embedding.yaml" if "probe" in FAMILIES else "../envs/rfcx.yaml"
        log:
            f"{RESULTS}/logs/detect.log",
        benchmark:
            f"{RESULTS}/benchmarks/detect.tsv"
        script:
            "../scripts/detect.py"
