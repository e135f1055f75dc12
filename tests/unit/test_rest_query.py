"""PostgREST's query-string grammar as videogen_dev.rest_query parses it (the local
PostgREST's parser; tests/functions/test_rest_api.py runs it against a server)."""

from __future__ import annotations

import pytest
from videogen_dev import rest_query as q


def test_select_with_renames_casts_json_paths_and_nested_embeds():
    items = q.parse_select(
        'id,price:credits_base::text,rf:resolution_factors->>720p,"odd name",'
        "jobs!jobs_model_id_fkey!inner(id,events:job_events(*)),m:models(*)"
    )
    assert items[0] == q.Column(q.Field("id"))
    assert items[1] == q.Column(q.Field("credits_base"), "price", "text")
    assert items[2] == q.Column(q.Field("resolution_factors", [("->>", "720p")]), "rf")
    assert items[3] == q.Column(q.Field("odd name"))
    jobs = items[4]
    assert isinstance(jobs, q.Embed)
    assert (jobs.name, jobs.hint, jobs.inner, jobs.key) == (
        "jobs",
        "jobs_model_id_fkey",
        True,
        "jobs",
    )
    assert jobs.select[1] == q.Embed("job_events", "events", None, False, [q.Star()])
    assert items[5] == q.Embed("models", "m", None, False, [q.Star()])
    assert q.parse_select("") == [q.Star()]
    assert q.Field("data", [("->", "a"), ("->>", 0)]).default_alias == "0"


def test_filters_in_lists_quotes_and_negation():
    f = q.parse_filter("name", 'not.in.(a,"b,c","d\\"e")')
    assert (f.op, f.negate, f.value) == ("in", True, ["a", "b,c", 'd"e'])
    assert q.parse_filter("id", "in.()").value == []
    assert q.parse_filter("x", "is.not_null").value == "not_null"
    assert q.parse_filter("data->a->>b", "eq.1").field == q.Field(
        "data", [("->", "a"), ("->>", "b")]
    )
    assert q.parse_filter("url", "eq.a.b.c").value == "a.b.c"  # dots in the value stay


def test_logic_trees_nest():
    tree = q.parse_logic("or", "(a.eq.1,and(b.gt.2,c.not.is.null),not.or(d.in.(1,2),e.like.*x*))")
    assert tree.op == "or" and not tree.negate
    a, inner, negated = tree.children
    assert isinstance(a, q.Filter) and a.value == "1"
    assert isinstance(inner, q.Logic) and inner.op == "and"
    assert inner.children[1] == q.Filter(q.Field("c"), "is", "null", True)
    assert isinstance(negated, q.Logic) and negated.negate and negated.op == "or"
    assert negated.children[0].value == ["1", "2"]  # type: ignore[union-attr]


def test_order_and_columns():
    terms = q.parse_order("a.desc.nullslast,b,data->>k.asc.nullsfirst")
    assert [(t.field.name, t.desc, t.nulls) for t in terms] == [
        ("a", True, "last"), ("b", False, None), ("data", False, "first"),
    ]  # fmt: skip
    assert q.parse_columns('"a","b c",d') == ["a", "b c", "d"]


def test_prefer_header():
    prefs = q.parse_prefer(["return=representation, count=exact", "resolution=merge-duplicates"])
    assert (prefs.ret, prefs.count, prefs.resolution) == (
        "representation",
        "exact",
        "merge-duplicates",
    )
    assert q.parse_prefer(["nonsense=1"]).ret is None  # lenient by default
    with pytest.raises(q.QueryError) as strict:
        q.parse_prefer(["handling=strict, nonsense=1"])
    assert strict.value.code == "PGRST122"


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda: q.parse_filter("a", "eqq.1"), "PGRST100"),
        (lambda: q.parse_filter("a", "eq"), "PGRST100"),
        (lambda: q.parse_filter("a", "is.maybe"), "PGRST100"),
        (lambda: q.parse_filter("a", "in.1,2"), "PGRST100"),
        (lambda: q.parse_filter("a", "fts.word"), "PGRST127"),
        (lambda: q.parse_filter("a", "eq(any).{1,2}"), "PGRST127"),
        (lambda: q.parse_logic("or", "(a.eq.1"), "PGRST100"),
        (lambda: q.parse_logic("or", "()"), "PGRST100"),
        (lambda: q.parse_select("id,jobs(id"), "PGRST100"),
        (lambda: q.parse_select("id::text;drop"), "PGRST100"),
        (lambda: q.parse_select("...jobs(id)"), "PGRST127"),
        (lambda: q.parse_select("count()"), "PGRST123"),
        (lambda: q.parse_select("credits_base.sum()"), "PGRST123"),
        (lambda: q.parse_order("a.sideways"), "PGRST100"),
        (lambda: q.parse_order("jobs(id).desc"), "PGRST127"),
        (lambda: q.parse_int("limit", "ten"), "PGRST100"),
        (lambda: q.parse_prefer(["tx=rollback"]), "PGRST127"),
    ],
)
def test_what_is_refused(call, code):
    with pytest.raises(q.QueryError) as caught:
        call()
    assert caught.value.code == code
