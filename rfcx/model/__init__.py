"""The model families: the CNN detector with its training recipe, features, backbones, losses, metrics and
augmentations; the probe."""
