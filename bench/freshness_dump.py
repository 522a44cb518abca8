"""Why are long refresh intervals long? Reads a `bench/freshness.py --dump FILE` and prints,
per phase, the interval quantiles (as ratios to the (Q+1)/B limit), the gaps between successive
PBX requests, and for every interval over the goal what else the PBX was asked in it.

    python bench/freshness.py --dump /tmp/d.jsonl && python bench/freshness_dump.py /tmp/d.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import Counter, defaultdict
from pathlib import Path

BUDGET_REQUESTS, BUDGET_WINDOW = 18, 5.0
ROUND_ROBIN = ("/api/queue/status", "/api/call/statistics")


def quantile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def explain(rows: list[dict], *, goal: float) -> None:
    for queues in sorted({row["q"] for row in rows}):
        mine = [row for row in rows if row["q"] == queues]
        limit = (queues + 1) * BUDGET_WINDOW / BUDGET_REQUESTS
        for phase in (row for row in mine if "phase" in row):
            start, end = phase["start"], phase["end"]
            requests = sorted(
                (row["at"], row["path"])
                for row in mine
                if "path" in row and start <= row["at"] < end
            )
            polled = defaultdict(list)
            for row in mine:
                if "status_of" in row and start <= row["at"] < end:
                    polled[row["status_of"]].append(row["at"])
            intervals = [
                (b - a, a, b)
                for times in polled.values()
                for a, b in itertools.pairwise(sorted(times))
            ]
            ratios = [length / limit for length, _a, _b in intervals]
            gaps = [b - a for (a, _), (b, _) in itertools.pairwise(requests)]
            print(f"== {phase['phase']}: {len(ratios)} intervals")
            print(
                "   interval/limit p50 {:.3f} p90 {:.3f} p95 {:.3f} max {:.3f}".format(
                    *(quantile(ratios, q) for q in (0.5, 0.9, 0.95)), max(ratios)
                )
            )
            print(
                "   request gaps ms p5..p99:",
                [round(1000 * quantile(gaps, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)],
            )
            long = [(a, b) for length, a, b in intervals if length / limit > goal]
            share = 100 * len(long) / max(1, len(intervals))
            print(f"   over {goal}: {len(long)} ({share:.1f} %); besides the round-robin, inside:")
            others = Counter()
            for a, b in long:
                inside = Counter(
                    path for at, path in requests if a < at < b and path not in ROUND_ROBIN
                )
                others[tuple(sorted(inside.items()))] += 1
            for what, count in others.most_common(8):
                print(f"     {count:4d} x {dict(what) or 'nothing else (a late request)'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dump", type=Path)
    parser.add_argument("--goal", type=float, default=1.15)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.dump.read_text().splitlines() if line.strip()]
    explain(rows, goal=args.goal)


if __name__ == "__main__":
    main()
