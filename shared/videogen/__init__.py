"""The function runtime the five functions share (docs/architecture.md, "Rooms")."""

import gc

# Cold start: what is loaded before the runtime (functions-framework, Flask, pydantic's
# core) lives as long as the process. Frozen, it is never walked again by the collections
# that loading the runtime's modules triggers: a full pass over it cost ~30 ms of each
# function's import. Only what is alive now is frozen; the collector runs as before.
gc.freeze()
