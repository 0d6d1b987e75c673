"""Compares two pytest runs' `--durations=0` outputs test by test: is the suite slower because
tests got slower, or because there are more of them?

    .venv/bin/python -m pytest --durations=0 -q > before.log    # on the old tree
    .venv/bin/python -m pytest --durations=0 -q > after.log     # on the new one, same host, idle
    .venv/bin/python tools/compare_test_durations.py before.log after.log

Sums setup + call + teardown per test id (pytest hides those under 5 ms).
"""

from __future__ import annotations

import collections
import re
import sys

_DURATION = re.compile(r"\s*([\d.]+)s (call|setup|teardown)\s+(\S+)")
_SUMMARY = re.compile(r"(\d+) passed.* in ([\d.]+)s")


def durations(path: str) -> tuple[dict[str, float], tuple[int, float] | None]:
    """`({test id: seconds}, (tests passed, wall seconds))` of one pytest output."""
    per_test: dict[str, float] = collections.defaultdict(float)
    summary = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if match := _DURATION.match(line):
                per_test[match.group(3)] += float(match.group(1))
            elif match := _SUMMARY.search(line):
                summary = (int(match.group(1)), float(match.group(2)))
    return per_test, summary


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    before, before_summary = durations(sys.argv[1])
    after, after_summary = durations(sys.argv[2])
    common = set(before) & set(after)
    new = set(after) - set(before)
    print(f"before: {before_summary} (passed, wall s); after: {after_summary}")
    print(f"{len(common)} tests in both: {sum(before[t] for t in common):.1f} s -> "
          f"{sum(after[t] for t in common):.1f} s summed")
    print(f"{len(new)} new tests: {sum(after[t] for t in new):.1f} s summed; "
          f"{len(set(before) - set(after))} gone")
    growth = sorted(common, key=lambda t: after[t] - before[t], reverse=True)
    for test in growth[:8]:
        print(f"  {after[test] - before[test]:+7.1f} s  {test}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
