#!/usr/bin/env python3
"""Summarise an Autobahn fuzzingclient report (its index.json).

    python3 scripts/autobahn/summary.py REPORT_DIR [--depth N] [--agent NAME]

Prints one row per case group (the first N numbers of the case id: 1 gives
1, 2, ... 13; 2 gives 6.4, 7.5, 12.1, ...) with the count of each outcome,
then every case whose outcome is FAILED or NON-STRICT, or whose close
behaviour is not OK, with the reason Autobahn gives in the case's own
report. Exits 1 when a case FAILED, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

# The outcomes Autobahn reports, in the order of the table's columns.
OUTCOMES = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]


def case_key(case_id: str) -> tuple[int, ...]:
    """Sort `9.10.2` after `9.2.1`."""
    return tuple(int(p) for p in case_id.split("."))


def group_of(case_id: str, depth: int) -> str:
    return ".".join(case_id.split(".")[:depth])


def load(report_dir: Path, agent: str | None) -> tuple[str, dict]:
    index = json.loads((report_dir / "index.json").read_text())
    if not index:
        sys.exit(f"{report_dir}/index.json holds no agent")
    name = agent or next(iter(index))
    if name not in index:
        sys.exit(f"no agent {name!r} in {report_dir}/index.json (has: {', '.join(index)})")
    return name, index[name]


def table(cases: dict, depth: int) -> list[str]:
    groups: dict[str, Counter] = defaultdict(Counter)
    for case_id, result in cases.items():
        groups[group_of(case_id, depth)][result["behavior"]] += 1
    others = sorted({b for c in groups.values() for b in c} - set(OUTCOMES))
    columns = OUTCOMES + others
    rows = [["group", *columns, "total"]]
    total: Counter = Counter()
    for group in sorted(groups, key=case_key):
        counts = groups[group]
        total.update(counts)
        rows.append([group, *(str(counts[c]) for c in columns), str(sum(counts.values()))])
    rows.append(["all", *(str(total[c]) for c in columns), str(sum(total.values()))])
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns) + 2)]
    return [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in rows
    ]


def details(report_dir: Path, result: dict) -> dict:
    path = report_dir / result["reportfile"]
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def notable(report_dir: Path, cases: dict) -> list[str]:
    lines = []
    for case_id in sorted(cases, key=case_key):
        result = cases[case_id]
        behavior, close = result["behavior"], result["behaviorClose"]
        if behavior not in ("FAILED", "NON-STRICT") and close in ("OK", "INFORMATIONAL"):
            continue
        d = details(report_dir, result)
        lines.append(
            f"{case_id:<9} {behavior} (close: {close}, remote code {result['remoteCloseCode']})"
            f"  {result['reportfile']}"
        )
        for key in ("result", "resultClose"):
            if d.get(key):
                lines.append(f"          {key}: {d[key]}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report_dir", type=Path, help="the fuzzingclient outdir (holds index.json)")
    parser.add_argument("--depth", type=int, default=1, help="numbers of the case id per group (default 1)")
    parser.add_argument("--agent", help="the agent to summarise (default the first)")
    args = parser.parse_args()
    agent, cases = load(args.report_dir, args.agent)
    print(f"Autobahn fuzzingclient: {agent}, {len(cases)} cases ({args.report_dir}/index.html)")
    print("\n".join(table(cases, args.depth)))
    worth_a_look = notable(args.report_dir, cases)
    if worth_a_look:
        print("\nFAILED, NON-STRICT, or close behaviour not OK:")
        print("\n".join(worth_a_look))
    return 1 if any(r["behavior"] == "FAILED" for r in cases.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
