"""The step contract both backends run: the step notebook, the serializers of the values that
cross an edge, the in-step runtime, and the MLflow names they write.

It imports only the standard library and nbformat, so the KFP compiler can ship this package
whole to a cluster image that lacks jupyter-mlops; the local runner uses the same files.
"""
