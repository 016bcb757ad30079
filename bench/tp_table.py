"""Format the RESULT lines of ``bench_recipe.py`` runs (read from stdin or files) as markdown tables.

Used by ``bench_tp_scaling.sh``: one speed row per run, then the loss of every step that more than one run trained,
with the largest difference between runs (they must agree within bf16 tolerance, about 1e-3 at losses near 11).

Usage: ``grep RESULT run.log | python bench/tp_table.py`` or ``python bench/tp_table.py run.log ...``.
"""

from __future__ import annotations

import fileinput
import json


def tables(results: list[dict]) -> str:
    lines = [
        "| run | GPUs | TP | steps | ms/step | tokens/s/GPU | model TFLOP/s/GPU | peak GiB/GPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        steps = sorted(int(k) for k in r["losses"])
        resumed = " (resumed)" if steps and steps[0] > 1 else ""
        lines.append(
            f"| TP={r['tp']}{resumed} | {r['world']} | {r['tp']} | {steps[0]}-{steps[-1]} | "
            f"{r['ms_per_step']:.1f} | {r['tokens_per_s_per_gpu']:,.0f} | {r['model_tflops_per_gpu']:.0f} | "
            f"{r['peak_gib']:.1f} |"
        )
    shared = sorted({int(k) for r in results for k in r["losses"]})
    shared = [s for s in shared if sum(str(s) in r["losses"] for r in results) > 1]
    if shared:
        head = " | ".join(f"TP={r['tp']}" for r in results)
        lines += ["", f"| step | {head} | largest difference |", "| --- |" + " --- |" * (len(results) + 1)]
        for s in shared:
            vals = [r["losses"].get(str(s)) for r in results]
            have = [v for v in vals if v is not None]
            cells = " | ".join("-" if v is None else f"{v:.6f}" for v in vals)
            lines.append(f"| {s} | {cells} | {max(have) - min(have):.1e} |")
    return "\n".join(lines)


def main() -> None:
    results = [json.loads(line.split("RESULT", 1)[1]) for line in fileinput.input() if line.startswith("RESULT ")]
    if not results:
        raise SystemExit("no RESULT lines in the input")
    print(tables(results))


if __name__ == "__main__":
    main()
