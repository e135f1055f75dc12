"""What recording request metrics costs per request (the HTTP kit's ``metrics.observe``).

Two measurements in one process, no database and no network:

1. ``observe`` alone: one counter increment and one histogram observation for a label set
   already seen (the steady state), in ns per call (best of several timeit repeats).
2. A whole request through the kit: ``GET /live`` of a tiny ``@endpoint`` (auth "always",
   JSON reply) via werkzeug's test client, with ``observe`` as the kit has it and with it
   replaced by a no-op; runs alternate so machine noise hits both. The difference is the
   added cost per request as a client of the kit sees it.

Usage: python bench/metrics_bench.py [--requests N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import timeit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    import logging

    from flask import Flask

    from videogen import metrics
    from videogen.kit import endpoint as http
    from videogen.kit.context import Context
    from videogen.kit.endpoint import Reply, endpoint

    logging.getLogger("videogen.kit.endpoint").setLevel(logging.WARNING)  # no log line per request

    metrics.observe("bench", "GET", 200, 0.001)  # the label set exists: the steady state
    n = 200_000
    per_call = min(
        timeit.repeat(lambda: metrics.observe("bench", "GET", 200, 0.001), number=n, repeat=5)
    )
    observe_ns = per_call / n * 1e9

    @endpoint("bench", methods={"GET": ("always",)}, routes={"/live": {"GET": ("always",)}})
    def handler(ctx: Context) -> Reply:
        return Reply(200, {"status": "ok"})

    app = Flask("bench")
    app.add_url_rule("/", "h", lambda: handler(__import__("flask").request))
    app.add_url_rule("/<path:p>", "p", lambda p: handler(__import__("flask").request))
    client = app.test_client()
    client.get("/live")  # warm up

    real = http.metrics.observe

    def run(observe: object) -> float:
        http.metrics.observe = observe  # type: ignore[assignment]
        started = time.perf_counter()
        for _ in range(args.requests):
            client.get("/live")
        return (time.perf_counter() - started) / args.requests * 1e6

    with_metrics, without = [], []
    try:
        for i in range(args.rounds):  # alternate which goes first, against drift
            if i % 2:
                with_metrics.append(run(real))
                without.append(run(lambda *a: None))
            else:
                without.append(run(lambda *a: None))
                with_metrics.append(run(real))
    finally:
        http.metrics.observe = real
    on, off = statistics.median(with_metrics), statistics.median(without)
    print(
        json.dumps(
            {
                "observe_ns_per_call": round(observe_ns),
                "request_us_with_metrics": round(on, 1),
                "request_us_without_metrics": round(off, 1),
                "added_us_per_request": round(on - off, 2),
                "added_share": f"{(on - off) / off:.1%}",
                "requests_per_round": args.requests,
                "rounds": args.rounds,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
