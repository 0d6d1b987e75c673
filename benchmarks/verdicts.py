"""Shared by the throughput benchmarks: a target's row in the result JSON and the Markdown table
of verdicts (pretrain_throughput.py, export_throughput.py)."""

from __future__ import annotations


def target_row(name: str, measured: float, target: float) -> dict:
    """`{"name", "measured", "target", "reached"}`, the shape the issues' checks read."""
    return {"name": name, "measured": round(measured, 3), "target": target,
            "reached": measured >= target}


def verdict_table(rows: list) -> str:
    """The Markdown table of `target_row`s: ratios as `1.14x`, unmet targets in bold."""
    lines = ["| target | measured | target | reached |", "|---|---|---|---|"]
    lines += [f"| {t['name']} | {t['measured']:.2f}x | {t['target']:.2f}x | "
              f"{'yes' if t['reached'] else '**no**'} |" for t in rows]
    return "\n".join(lines)
