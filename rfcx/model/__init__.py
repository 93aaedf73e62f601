"""The model families: the CNN detector with its features, backbones, losses, metrics and augmentations; the probe."""
