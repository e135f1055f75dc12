"""A job's typed params → files in storage, shared by the in-request render and the worker."""
