"""The typed face of the SQL API: a procedure called as somebody (``connection``), one typed
function per procedure, in one module per SQL concern (``reads``, ``profiles``,
``write_requests``, ``job_reports``, ``job_routing``, ``fleet``, ``media_lifecycle``,
``prompts_admin``, ``provider_keys``, ``operations``), and a write's request and answer
(``outcomes``, ``writes``). These modules are the only place in Python where a procedure's
name is spelled; services call them; nothing else sends SQL.

Each function says how it runs by what it takes:

* a :class:`~videogen.db.connection.Session` — inside that caller's transaction, as that
  caller (reads run as the user, so RLS applies; an admin session runs service procedures);
* ``Database`` and a user's :class:`~videogen.principal.Principal` — a user's write, one
  call as ``service_role`` with the user's claims;
* ``Runs`` (a session or a database, :mod:`videogen.db.calls`) — a service procedure,
  inside the session's transaction when given one, else as its own one-call transaction.

Results are pydantic models of :mod:`videogen.models` (reads, changes,
assignments), and a write request's :class:`~videogen.db.outcomes.Outcome` of one; a
procedure that may find nothing answers None.
"""
