"""The HTTP kit: a function's route table served with the shared contract (envelope, limits,
CORS, auth modes, signatures, logging, metrics). Imports services and below, never above."""
