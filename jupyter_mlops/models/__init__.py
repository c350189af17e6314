"""Models on MLflow: logging an object as an MLflow model (the registry lifecycle comes here too).

Only the standard library at import: compiled KFP steps carry these files into images that lack
jupyter-mlops (kfp/stepnotebooks.py).
"""
