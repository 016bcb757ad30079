#!/usr/bin/env bash
# Issue 13 follow-up: where generate's ~20 s of "setup" go on the H200 (bench/bench_generate_setup.py), carrying .gpu4.
# A random 4B model.pt is written first (its own process, writing no bytecode), then setup is timed step by step:
# cold (megatron's __pycache__ removed: gpu_site.sh installs with --no-compile, as every fresh device call has it),
# warm, warm under cProfile, and cold under -X importtime (top cumulative imports kept in $OUT).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
site=$(python3 -c "import megatron, os; print(os.path.dirname(os.path.dirname(megatron.__file__)))")
ck=/tmp/sp/model.pt
[ -f $ck ] || PYTHONDONTWRITEBYTECODE=1 python3 bench/bench_generate_setup.py --checkpoint $ck --write 4b
ls -la $ck; nproc; python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
run() { taskset -c 0-3 python3 bench/bench_generate_setup.py --checkpoint $ck "$@"; }
nocache() { find "$site/megatron" -name __pycache__ -prune -exec rm -rf {} +; find nemo_cosmos_ar -name __pycache__ -prune -exec rm -rf {} +; }
rm -rf ~/.cache/torch_extensions
nocache; echo "=== cold, as before the fix (Megatron builds managed_alloc_runtime)"; run --build-extension 2>&1 | grep -E "^\||setup steps|Error"
echo "=== again, as before the fix (the build cached, or failing again)"; run --build-extension 2>&1 | grep -E "^\||Error"; ls ~/.cache/torch_extensions/*/ 2>&1
rm -rf ~/.cache/torch_extensions
nocache; echo "=== cold (no megatron/nemo_cosmos_ar bytecode), the fix"; run 2>&1 | grep -E "^\||setup steps|Error"
echo "=== warm"; run 2>&1 | grep -E "^\||setup steps|Error"
echo "=== warm, cProfile"; run --profile "check_device,mcore,open_checkpoint: load" > "$OUT/profile_warm.txt" 2>/dev/null; grep -E "^\|" "$OUT/profile_warm.txt"
nocache; echo "=== cold, importtime"; taskset -c 0-3 python3 -X importtime bench/bench_generate_setup.py --checkpoint $ck 2> "$OUT/importtime_cold.txt" | grep -E "^\|"
sort -t'|' -k2 -n -r "$OUT/importtime_cold.txt" | head -45
echo "=== self time by top package (cold)"; python3 - "$OUT/importtime_cold.txt" <<'PY'
import sys, collections
tot = collections.Counter()
for line in open(sys.argv[1]):
    if line.startswith("import time:") and "self" not in line:
        self_us = int(line.split("|")[0].split(":")[1]); name = line.split("|")[2]
        tot[name.strip().split(".")[0]] += self_us
for k, v in tot.most_common(15): print(f"{v/1e6:8.3f} s  {k}")
PY
