"""Pydantic models: request bodies and query strings, per-job-type params, answers."""
