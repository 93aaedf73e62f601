# Prediction and scoring: out-of-fold windows, test recordings, fold ensemble, submission.


rule predict_oof:
    input:
        model=f"{FINAL_MODELS}/fold{{fold}}/model.keras",
        windows=rules.crop_windows.output[0],
        cache=rules.cache_waveforms.output.cache,
        index=rules.cache_waveforms.output.index,
        code=code("predict_oof"),
    output:
        f"{RESULTS}/oof/fold{{fold}}.parquet",
    params:
        features=config["features"],
        window_seconds=config["windows"]["window_seconds"],
        batch_size=config["predict"]["batch_size"],
        crop_shifts_seconds=config["predict"]["oof_crop_shifts_seconds"],
    resources:
        gpu=GPU,
    threads: PREDICT_THREADS
    conda:
        "../envs/rfcx.yaml"
    log:
        f"{RESULTS}/logs/predict_oof/fold{{fold}}.log",
    script:
        "../scripts/predict_oof.py"


rule predict_oof_recordings:
    input:
        model=f"{FINAL_MODELS}/fold{{fold}}/model.keras",
        folds=rules.split_folds.output[0],
        validated=rules.validate.output[0],
        csvs=dataset_csvs(),
        code=code("predict_oof_recordings"),
    output:
        f"{RESULTS}/oof/fold{{fold}}_recordings.parquet",
    params:
        features=config["features"],
        window_seconds=config["windows"]["window_seconds"],
        predict=SLIDING,
    resources:
        gpu=GPU,
    threads: PREDICT_THREADS
    conda:
        "../envs/rfcx.yaml"
    log:
        f"{RESULTS}/logs/predict_oof_recordings/fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict_oof_recordings/fold{{fold}}.tsv"
    script:
        "../scripts/predict_oof_recordings.py"


rule score_oof:
    input:
        oof=expand(f"{RESULTS}/oof/fold{{fold}}.parquet", fold=FOLDS),
        recordings=(
            expand(f"{RESULTS}/oof/fold{{fold}}_recordings.parquet", fold=FOLDS)
            if config["predict"]["oof_recordings"]
            else []
        ),
        code=code("score_oof"),
    output:
        scores=f"{RESULTS}/scores/oof.json",
        table=report(
            f"{RESULTS}/scores/oof_per_fold.csv",
            caption="../report/oof_table.rst",
            category="Scores",
            labels={"table": "OOF LWLRAP per fold"},
        ),
        per_species=report(
            f"{RESULTS}/report/oof_per_species.png",
            caption="../report/oof_per_species.rst",
            category="Scores",
            labels={"figure": "OOF LWLRAP per species"},
        ),
    conda:
        "../envs/rfcx.yaml"
    log:
        f"{RESULTS}/logs/score_oof.log",
    script:
        "../scripts/score_oof.py"


if CALIBRATE:

    rule calibrate:
        input:
            oof=expand(f"{RESULTS}/oof/fold{{fold}}.parquet", fold=FOLDS),
            code=code("calibrate"),
        output:
            calibration=CALIBRATION,
            scores=CALIBRATION_SCORES,
        params:
            method=config["calibration"]["method"],
            min_positives=config["calibration"]["min_positives"],
        conda:
            "../envs/rfcx.yaml"
        log:
            f"{RESULTS}/logs/calibrate.log",
        script:
            "../scripts/calibrate.py"


rule predict_test:
    input:
        model=f"{FINAL_MODELS}/fold{{fold}}/model.keras",
        validated=rules.validate.output[0],
        csvs=dataset_csvs(),
        code=code("predict_test"),
    output:
        windows=f"{RESULTS}/test/fold{{fold}}_windows.parquet",
        recordings=f"{RESULTS}/test/fold{{fold}}.parquet",
    params:
        features=config["features"],
        window_seconds=config["windows"]["window_seconds"],
        predict=SLIDING,
    resources:
        gpu=GPU,
    threads: PREDICT_THREADS
    conda:
        "../envs/rfcx.yaml"
    log:
        f"{RESULTS}/logs/predict_test/fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict_test/fold{{fold}}.tsv"
    script:
        "../scripts/predict_test.py"


if not BLEND:  # the CNN alone: its fold ensemble is the submission (else rule blend writes it)

    rule ensemble:
        input:
            folds=expand(f"{RESULTS}/test/fold{{fold}}.parquet", fold=FOLDS),
            csvs=dataset_csvs(),
            code=code("ensemble"),
            **calibration_inputs("model"),
        output:
            submission=f"{RESULTS}/submission.csv",
            scores=f"{RESULTS}/scores/test.json",
        params:
            method=config["ensemble"]["method"],
        conda:
            "../envs/rfcx.yaml"
        log:
            f"{RESULTS}/logs/ensemble.log",
        script:
            "../scripts/ensemble.py"
