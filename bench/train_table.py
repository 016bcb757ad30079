"""Markdown table of bench_recipe.py RESULT lines: python bench/train_table.py LOG."""

import json
import sys


def main(path: str) -> None:
    rows = [json.loads(line.split("RESULT ", 1)[1]) for line in open(path) if line.startswith("RESULT ")]
    print(
        "| run | precision | grid | tokens | GPUs/TP | ms/step | tokens/s/GPU | model TFLOP/s/GPU | peak alloc GiB | "
        "peak reserved GiB | cap GiB | loss first -> last |"
    )
    print("|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        losses = list(r["losses"].values())
        print(
            f"| {r['label']} | {r['precision']} | {'x'.join(map(str, r['grid']))} | {r['tokens_per_sample']:,} | "
            f"{r['world']}/{r['tp']} | {r['ms_per_step']:.1f} | {r['tokens_per_s_per_gpu']:,.0f} | "
            f"{r['model_tflops_per_gpu']:.1f} | {r['peak_gib']:.1f} | {r['reserved_gib']:.1f} | "
            f"{r['cap_gib'] or '-'} | {losses[0]:.4f} -> {losses[-1]:.4f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1])
