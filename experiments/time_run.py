"""Wall time of ``stratify run CONFIG``, end to end, as a user runs it.

Runs the command ``--repeats`` times in fresh processes (each into a new
temporary tracking store, so nothing is cached between runs), with optional
``key=value`` overrides, and reports per run the wall time, the CPU time of
the process and its workers, the peak resident memory of the largest process,
and the 1-minute load average before the run (the machine is shared: a load
near or above the number of cores means the wall time is inflated).

Usage::

    python experiments/time_run.py configs/mirocals.yaml --repeats 3
    python experiments/time_run.py configs/mirocals.yaml --repeats 3 explain.enabled=false
    python experiments/time_run.py configs/mirocals.yaml --repeats 1 --cold
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def one_run(config: Path, overrides: list[str], *, cold: bool = False) -> dict[str, float]:
    """Time one ``stratify run`` in a fresh process and a fresh store (and, ``cold``, an
    empty numba cache: the first run after an install, which compiles the forest's kernels)."""
    stratify = Path(sys.executable).with_name("stratify")
    with tempfile.TemporaryDirectory() as store:
        command = [str(stratify), "run", str(config), f"tracking.uri={store}/mlruns", *overrides]
        env = dict(os.environ, NUMBA_CACHE_DIR=f"{store}/numba") if cold else None
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": after.ru_maxrss / 1024, "load": load}


def machine() -> str:
    """Cores and CPU model of this machine."""
    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--cold", action="store_true", help="each run with an empty numba cache (a fresh install)"
    )
    args = parser.parse_args(argv)
    runs = [one_run(args.config, args.overrides, cold=args.cold) for _ in range(args.repeats)]
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}")
    cold = " (empty numba cache)" if args.cold else ""
    print(f"stratify run {args.config} {' '.join(args.overrides)}".rstrip() + cold)
    print("| run | wall s | CPU s (all processes) | peak RSS MB (largest process) | load before |")
    print("|---|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        print(
            f"| {i} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_rss_mb']:.0f} "
            f"| {r['load']:.2f} |"
        )
    walls = [r["wall_s"] for r in runs]
    print(f"median wall {statistics.median(walls):.1f} s, min {min(walls):.1f} s")


if __name__ == "__main__":
    main()
