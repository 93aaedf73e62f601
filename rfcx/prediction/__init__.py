"""Prediction and detection: scoring recordings, submissions, calibration, blending and archive detection."""
