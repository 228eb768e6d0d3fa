"""Runners: many runs through an engine (batch, ensemble, sensitivity, discovery, wedges, checks, versions)."""
