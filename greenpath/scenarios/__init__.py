"""Scenarios and targets: reading, validating and writing the files users edit."""
