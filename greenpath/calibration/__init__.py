"""Calibration of the model against Jiaozuo history."""
