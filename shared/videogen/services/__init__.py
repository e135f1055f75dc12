"""Use cases: what a function does for a caller, each given what it needs or one Scope."""
