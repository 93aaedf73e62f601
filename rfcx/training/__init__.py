"""Training: fitting the detector, its batch loader, confuser mixing and pseudo-labels."""
