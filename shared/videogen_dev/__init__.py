"""videogen's dev tooling: the ``videogen`` CLI, the local stack (``up``/``down``/``demo``),
the embedded Postgres (``localdb``), the migrations runner, the dev server with the local
Supabase services, the deploy build and the OpenAPI generator. Never deployed: ``make
build`` copies only the ``videogen`` runtime package."""
