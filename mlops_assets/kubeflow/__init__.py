"""Kubeflow Pipelines as a training backend: the pipeline, its compilation, and running it."""
