# The embedding family (families: probe): pretrained embeddings on a grid, a per-species probe per fold, its
# out-of-fold and test scores; and the blend of every family into the submission when there are several.

EMBEDDINGS = f"{RESULTS}/embeddings"
PROBE = f"{RESULTS}/probe"


rule embed:
    input:
        validated=rules.validate.output[0],
        folds=rules.split_folds.output[0],
        csvs=dataset_csvs(),
        code=code("embed"),
    output:
        train_vectors=f"{EMBEDDINGS}/train.npy",
        train_index=f"{EMBEDDINGS}/train_index.parquet",
        test_vectors=f"{EMBEDDINGS}/test.npy",
        test_index=f"{EMBEDDINGS}/test_index.parquet",
        card=f"{EMBEDDINGS}/model.json",
    params:
        embedding=config["embedding"],
    threads: workflow.cores
    conda:
        "../envs/embedding.yaml"
    log:
        f"{RESULTS}/logs/embed.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed.tsv"
    script:
        "../scripts/embed.py"


rule train_probe:
    input:
        vectors=rules.embed.output.train_vectors,
        index=rules.embed.output.train_index,
        folds=rules.split_folds.output[0],
        csvs=dataset_csvs(),
        code=code("train_probe"),
    output:
        f"{PROBE}/fold{{fold}}/probe.npz",
    params:
        probe=config["probe"],
    threads: 1
    conda:
        "../envs/rfcx.yaml"
    log:
        f"{RESULTS}/logs/train_probe/fold{{fold}}.log",
    script:
        "../scripts/train_probe.py"


rule predict_probe:
    input:
        probe=rules.train_probe.output[0],
        train_vectors=rules.embed.output.train_vectors,
        train_index=rules.embed.output.train_index,
        test_vectors=rules.embed.output.test_vectors,
        test_index=rules.embed.output.test_index,
        folds=rules.split_folds.output[0],
        csvs=dataset_csvs(),
        code=code("predict_probe"),
    output:
        oof=f"{PROBE}/oof/fold{{fold}}.parquet",
        recordings=f"{PROBE}/oof/fold{{fold}}_recordings.parquet",
        test=f"{PROBE}/test/fold{{fold}}.parquet",
    params:
        pooling=config["predict"]["pooling"],
        min_box_overlap=config["probe"]["min_box_overlap"],
    conda:
        "../envs/rfcx.yaml"
    log:
        f"{RESULTS}/logs/predict_probe/fold{{fold}}.log",
    script:
        "../scripts/predict_probe.py"


use rule score_oof as score_probe_oof with:
    input:
        oof=expand(f"{PROBE}/oof/fold{{fold}}.parquet", fold=FOLDS),
        recordings=expand(f"{PROBE}/oof/fold{{fold}}_recordings.parquet", fold=FOLDS),
        code=code("score_oof"),
    output:
        scores=f"{RESULTS}/scores/oof_probe.json",
        table=report(
            f"{RESULTS}/scores/oof_probe_per_fold.csv",
            caption="../report/oof_table.rst",
            category="Scores",
            labels={"table": "OOF LWLRAP per fold, embedding probe"},
        ),
        per_species=report(
            f"{RESULTS}/report/oof_probe_per_species.png",
            caption="../report/oof_per_species.rst",
            category="Scores",
            labels={"figure": "OOF LWLRAP per species, embedding probe"},
        ),
    log:
        f"{RESULTS}/logs/score_probe_oof.log",


if BLEND:

    rule blend:
        input:
            oof=[path for family in FAMILIES for path in family_oof_recordings(family)],
            test=[path for family in FAMILIES for path in family_test_folds(family)],
            csvs=dataset_csvs(),
            code=code("blend"),
        output:
            submission=f"{RESULTS}/submission.csv",
            scores=f"{RESULTS}/scores/test.json",
            blend=f"{RESULTS}/scores/blend.json",
        params:
            oof={family: family_oof_recordings(family) for family in FAMILIES},
            test={family: family_test_folds(family) for family in FAMILIES},
            step=config["blend"]["step"],
        conda:
            "../envs/rfcx.yaml"
        log:
            f"{RESULTS}/logs/blend.log",
        script:
            "../scripts/blend.py"
