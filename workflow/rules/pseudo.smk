# Stage 2 (pseudo_label.enabled): the stage-1 model of fold k pseudo-labels the unlabelled audio of the other folds'
# train recordings, and fold k trains again on its labelled windows plus these; stage-2 models then make every
# prediction (FINAL_MODELS). The leakage rule is in rfcx/training/pseudo.py.

if PSEUDO:

    rule predict_unlabelled:
        input:
            model=rules.train.output.model,
            folds=rules.split_folds.output[0],
            validated=rules.validate.output[0],
            csvs=dataset_csvs(),
            code=code("predict_unlabelled"),
        output:
            f"{RESULTS}/pseudo/fold{{fold}}_scores.parquet",
        params:
            features=config["features"],
            window_seconds=config["windows"]["window_seconds"],
            batch_size=config["predict"]["batch_size"],
        resources:
            gpu=GPU,
        threads: PREDICT_THREADS
        conda:
            "../envs/rfcx.yaml"
        log:
            f"{RESULTS}/logs/predict_unlabelled/fold{{fold}}.log",
        script:
            "../scripts/predict_unlabelled.py"

    rule pseudo_label:
        input:
            scores=rules.predict_unlabelled.output[0],
            folds=rules.split_folds.output[0],
            csvs=dataset_csvs(),
            code=code("pseudo_label"),
        output:
            f"{RESULTS}/pseudo/fold{{fold}}.parquet",
        params:
            settings=config["pseudo_label"],
            min_box_overlap=config["windows"]["min_box_overlap"],
        conda:
            "../envs/rfcx.yaml"
        log:
            f"{RESULTS}/logs/pseudo_label/fold{{fold}}.log",
        script:
            "../scripts/pseudo_label.py"

    use rule cache_waveforms as cache_pseudo with:
        input:
            windows=rules.pseudo_label.output[0],
            csvs=dataset_csvs(),
            code=code("cache_waveforms"),
        output:
            cache=f"{RESULTS}/pseudo/fold{{fold}}_waveforms.npy",
            index=f"{RESULTS}/pseudo/fold{{fold}}_waveform_index.parquet",
        log:
            f"{RESULTS}/logs/cache_pseudo/fold{{fold}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/cache_pseudo/fold{{fold}}.tsv"

    # the train rule and script; the pseudo inputs make it train on the pseudo-labelled windows too
    use rule train as train_stage2 with:
        input:
            windows=rules.crop_windows.output[0],
            cache=rules.cache_waveforms.output.cache,
            index=rules.cache_waveforms.output.index,
            pseudo=rules.pseudo_label.output[0],
            pseudo_cache=rules.cache_pseudo.output.cache,
            pseudo_index=rules.cache_pseudo.output.index,
            code=code("train"),
        output:
            model=f"{FINAL_MODELS}/fold{{fold}}/model.keras",
            history=f"{FINAL_MODELS}/fold{{fold}}/history.csv",
        log:
            f"{RESULTS}/logs/train_stage2/fold{{fold}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/train_stage2/fold{{fold}}.tsv"
