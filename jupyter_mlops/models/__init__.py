"""Models on MLflow: the registry lifecycle (aliases, gates, promotion, serving hand-off).

Logging an object as an MLflow model is steps/model_logging.py's: KFP steps log their model
with it in images that lack jupyter-mlops, so it lives in the package the compiler ships.
"""
