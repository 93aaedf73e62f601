# rfcx: train and evaluate species detectors on rainforest audio (Kaggle RFCx layout).
# This file is the table of contents; the stages live in workflow/rules/, the logic in the rfcx package.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/pseudo.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/embedding.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/detect.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
