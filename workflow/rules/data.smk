# Data: (synthetic dataset) -> validation -> folds -> windows -> waveform cache.

if SYNTHETIC:

    rule synth:
        input:
            code=code("synth"),
        output:
            multiext(f"{DATA}/", *CSV_FILES, "test_truth.csv"),
        params:
            scale=config["synth"]["scale"],
            seed=config["synth"]["seed"],
        conda:
            "../envs/rfcx.yaml"
        log:
            f"{Path(DATA).parent}/logs/{Path(DATA).name}.log",
        threads: workflow.cores
        script:
            "../scripts/synth.py"


rule validate:
    input:
        csvs=dataset_csvs(),
        recordings=dataset_recordings(),
        code=code("validate"),
    output:
        f"{RESULTS}/data/validated.json",
    params:
        decode_audio=config["validation"]["decode_audio"],
    conda:
        "../envs/rfcx.yaml"
    log:
        f"{RESULTS}/logs/validate.log",
    threads: workflow.cores
    script:
        "../scripts/validate.py"


rule split_folds:
    input:
        validated=rules.validate.output[0],
        csvs=dataset_csvs(),
        code=code("split_folds"),
    output:
        f"{RESULTS}/data/folds.parquet",
    params:
        n_folds=config["folds"]["n_folds"],
        seed=config["seed"],
    conda:
        "../envs/rfcx.yaml"
    log:
        f"{RESULTS}/logs/split_folds.log",
    script:
        "../scripts/split_folds.py"


rule crop_windows:
    input:
        folds=rules.split_folds.output[0],
        csvs=dataset_csvs(),
        code=code("crop_windows"),
    output:
        f"{RESULTS}/data/windows.parquet",
    params:
        windows=config["windows"],
        seed=config["seed"],
    conda:
        "../envs/rfcx.yaml"
    log:
        f"{RESULTS}/logs/crop_windows.log",
    script:
        "../scripts/crop_windows.py"


rule cache_waveforms:
    input:
        windows=rules.crop_windows.output[0],
        csvs=dataset_csvs(),
        code=code("cache_waveforms"),
    output:
        cache=f"{RESULTS}/data/waveforms.npy",
        index=f"{RESULTS}/data/waveform_index.parquet",
    params:
        margin_seconds=config["windows"]["margin_seconds"],
        sample_rate=config["features"]["sample_rate"],
    conda:
        "../envs/rfcx.yaml"
    log:
        f"{RESULTS}/logs/cache_waveforms.log",
    threads: 4
    benchmark:
        f"{RESULTS}/benchmarks/cache_waveforms.tsv"
    script:
        "../scripts/cache_waveforms.py"
