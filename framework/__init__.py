"""Hydra configs in, versioned DVC stages out: schema-checked, gated and registered ML pipelines."""

__version__ = "0.1.0"
