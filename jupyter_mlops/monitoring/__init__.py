"""Monitoring: reference profiles of a model's training data and drift reports against them.

`profile.py` summarises a training frame (and the model's predictions on it) into a small,
JSON-serialisable `Profile` stored with the model; `drift.py` compares new data with a profile
or with a reference frame: PSI, CSI, KS or chi-square per feature, and prediction drift, in a
`DriftReport` that the widget, the `monitor` run, `%mlops drift` and the CLI present. Both work
on numpy, pandas and scipy only; nothing here talks to MLflow or draws.
"""
