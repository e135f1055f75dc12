"""The typed face of the SQL API: a procedure called as somebody (connection), one Python
function per procedure (procedures), a write's request and answer (outcomes, writes)."""
