"""Summary of an ``nvidia-smi`` log written by ``smi_start`` (bench/gpu_site.sh): the SM clock and power while the GPU
was busy (drawing over 300 W), and the throttle reasons seen then (``0x4``: the software power cap).

    python bench/smi_summary.py smi.csv
"""

from __future__ import annotations

import collections
import statistics
import sys


def main(path: str) -> None:
    # columns: timestamp, clocks.sm, clocks.mem, power.draw, power.limit, temperature.gpu, clocks_throttle_reasons
    rows = [r.split(", ") for r in open(path) if r.count(",") >= 6]
    busy = [r for r in rows if r[3].endswith(" W") and float(r[3][:-2]) > 300]
    if not busy:
        print(f"no busy samples among {len(rows)}")
        return
    clk = sorted(float(r[1].split()[0]) for r in busy)
    pw = sorted(float(r[3][:-2]) for r in busy)
    print(
        f"busy samples {len(busy)} of {len(rows)}: SM clock median {statistics.median(clk):.0f} MHz, "
        f"p10 {clk[len(clk) // 10]:.0f}; power median {statistics.median(pw):.0f} W of {busy[0][4]}"
    )
    print("throttle reasons:", collections.Counter(r[6].strip() for r in busy).most_common(4))


if __name__ == "__main__":
    main(sys.argv[1])
