"""The yardstick for the HTTP benchmark: a function that only answers JSON."""

import functions_framework


@functions_framework.http
def trivial(request):  # type: ignore[no-untyped-def]
    """Answer a fixed JSON body."""
    return {"success": True, "data": {"ok": True}}, 202
