# Training: one job per fold, on the GPU when the config asks for one.


rule train:
    input:
        windows=rules.crop_windows.output[0],
        cache=rules.cache_waveforms.output.cache,
        index=rules.cache_waveforms.output.index,
        code=code("train"),
    output:
        model=f"{RESULTS}/models/fold{{fold}}/model.keras",
        history=f"{RESULTS}/models/fold{{fold}}/history.csv",
    params:
        run=run_settings(),
    resources:
        gpu=GPU,
    threads: train_threads
    priority: 1  # a fold starts before predictions when it can: they can fill a core it leaves
    conda:
        "../envs/rfcx.yaml"
    log:
        f"{RESULTS}/logs/train/fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/fold{{fold}}.tsv"
    script:
        "../scripts/train.py"
