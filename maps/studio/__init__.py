"""The planner's studio: a local web page that edits a study live (``python app.py serve``).

``session`` keeps the scenario and its history, ``live`` turns a scenario into the batch run's
result through ``coverage``'s stage functions, ``server`` is the HTTP API and the page.
"""
