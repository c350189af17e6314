"""Tests of the shared team server: MLflow on PostgreSQL, many kernels, faults."""
