"""Cold start: what importing each function module adds to functions-framework's import.

Each measurement is a fresh interpreter; the baseline (`import functions_framework`) and
the function (`import functions_framework` + load main.py the way the framework does)
alternate in one run so machine noise hits both. Also lists heavy SDKs loaded at import
(there should be none: openai, Google TTS, supabase, stripe, storage3 load on demand).
The runtime's own modules count as they are found: compiled from source when there is no
``__pycache__`` (as in a deployment, whose upload leaves it out, or with
PYTHONDONTWRITEBYTECODE), some 25 to 30 ms less when it is there; a line says which.
Usage: python bench/cold_start.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = [
    "queue-job",
    "job-callback",
    "generate-video",
    "update-credits",
    "health-check-workers",
]
HEAVY = [
    "openai",
    "google.cloud.texttospeech",
    "supabase",
    "stripe",
    "storage3",
    "postgrest",
    "psycopg_pool",
    "ffmpeg",
]

PROBE = """
import importlib.util, json, os, sys, time
t = time.perf_counter()
import functions_framework
base = time.perf_counter() - t
fn = sys.argv[1]
if fn:
    from functions_framework import _function_registry as r
    t2 = time.perf_counter()
    module, spec = r.load_function_module(fn)
    spec.loader.exec_module(module)
    extra = time.perf_counter() - t2
else:
    extra = 0.0
heavy = [m for m in json.loads(sys.argv[2]) if m in sys.modules]
ours = [getattr(m, "__file__", None) for n, m in list(sys.modules.items()) if n == "videogen"
        or n.startswith("videogen.")]
cached = sum(os.path.exists(importlib.util.cache_from_source(f)) for f in ours if f)
print(json.dumps({"base": base, "extra": extra, "heavy": heavy, "cached": [cached, len(ours)]}))
"""


def measure(source: str) -> dict[str, object]:
    """One fresh interpreter: seconds for the framework import and for the module."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, source, json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout)


def main() -> int:
    """Print the median added import time of each function, and the heavy SDKs loaded."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    worst = 0.0
    cached = [0, 0]  # runtime modules with bytecode in __pycache__, of those loaded
    print(f"{'function':<22} {'framework s':>12} {'+function s':>12}  heavy SDKs at import")
    for name in FUNCTIONS:
        source = str(ROOT / "functions" / name / "main.py")
        runs = [measure(source) for _ in range(args.runs)]
        base = statistics.median(float(r["base"]) for r in runs)  # type: ignore[arg-type]
        extra = statistics.median(float(r["extra"]) for r in runs)  # type: ignore[arg-type]
        heavy = sorted({h for r in runs for h in r["heavy"]})  # type: ignore[attr-defined]
        worst = max(worst, extra)
        cached = max([cached, *(r["cached"] for r in runs)])  # type: ignore[list-item]
        print(f"{name:<22} {base:>12.3f} {extra:>12.3f}  {', '.join(heavy) or 'none'}")
    print(
        "runtime bytecode: "
        + (
            f"in __pycache__ for {cached[0]} of {cached[1]} modules"
            if cached[0]
            else "none, the runtime compiled from source in each run"
        )
    )
    print(
        f"worst added import time: {worst:.3f} s (bar: 0.300 s) -> {'OK' if worst <= 0.3 else 'OVER'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
