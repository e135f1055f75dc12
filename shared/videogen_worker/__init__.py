"""The reference GPU worker, its own package: the job it runs (``job``), its signed and
retrying way to the backend (``client``), the state machine that takes, renders and reports
jobs (``worker``, rendering with :mod:`videogen.media`), and its HTTP face on Flask
(``server``). ``python -m videogen_worker --help`` runs one. Never deployed with the
functions; it imports the ``videogen`` runtime, never the other way round."""

from importlib import metadata

try:
    __version__ = metadata.version("videogen")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
