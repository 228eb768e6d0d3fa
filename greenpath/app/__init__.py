"""Helpers of the Streamlit app (``app.py``).

The app itself stays thin: widgets -> a validated scenario -> a cached run.  What can
be tested without a browser lives here:

``sections``
    The plan's sections and which lever belongs to which (the sidebar's grouping).
``state``
    Scenario settings <-> run keys, share-link query parameters, saved scenarios.
``runner``
    A pool of models shared safely between sessions, runs, targets, wedges, bands.
``charts``
    Vega-Lite (Altair) chart builders drawn in the browser.
``model_view``, ``calibration_view``
    The model page (variable table, stock-and-flow diagrams) and calibration page data.
``ui``
    The Streamlit pages; ``app.py`` only calls :func:`greenpath.app.ui.main`.
"""
