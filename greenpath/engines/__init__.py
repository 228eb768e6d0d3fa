"""Engines: what runs the model's equations (PySD, the NumPy vector engine) and their cache."""
