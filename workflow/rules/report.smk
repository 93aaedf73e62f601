# Figures and tables for `snakemake --report`, and the one-screen summary.


rule plot_training:
    input:
        histories=expand(f"{FINAL_MODELS}/fold{{fold}}/history.csv", fold=FOLDS),
        code=code("plot_training"),
    output:
        report(
            f"{RESULTS}/report/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
            labels={"figure": "training curves"},
        ),
    params:
        low_res_epochs=config["train"]["low_res_epochs"],
    conda:
        "../envs/rfcx.yaml"
    log:
        f"{RESULTS}/logs/plot_training.log",
    script:
        "../scripts/plot_training.py"


rule plot_augmentations:
    input:
        windows=rules.crop_windows.output[0],
        cache=rules.cache_waveforms.output.cache,
        index=rules.cache_waveforms.output.index,
        code=code("plot_augmentations"),
    output:
        report(
            f"{RESULTS}/report/augmentations.png",
            caption="../report/augmentations.rst",
            category="Training",
            labels={"figure": "augmentation examples"},
        ),
    params:
        features=config["features"],
        augment=config["augment"],
        window_seconds=config["windows"]["window_seconds"],
        seed=config["seed"],
    conda:
        "../envs/rfcx.yaml"
    log:
        f"{RESULTS}/logs/plot_augmentations.log",
    script:
        "../scripts/plot_augmentations.py"


rule summarise:
    input:
        submission=f"{RESULTS}/submission.csv",
        test=f"{RESULTS}/scores/test.json",
        code=code("summarise"),
        **family_oof_scores(),
        **({"blend": f"{RESULTS}/scores/blend.json"} if BLEND else {}),
        **calibration_inputs("scores"),
    output:
        preview=report(
            f"{RESULTS}/report/submission_preview.csv",
            caption="../report/submission_preview.rst",
            category="Submission",
            labels={"table": "submission preview"},
        ),
        summary=report(
            f"{RESULTS}/summary.txt",
            caption="../report/summary.rst",
            category="Scores",
            labels={"table": "summary"},
        ),
    params:
        oof_crops=len(config["predict"]["oof_crop_shifts_seconds"]),
        families=FAMILIES,
    conda:
        "../envs/rfcx.yaml"
    log:
        f"{RESULTS}/logs/summarise.log",
    script:
        "../scripts/summarise.py"
