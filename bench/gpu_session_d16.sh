#!/usr/bin/env bash
# Fifteenth session (2026-12-02), carrying .gpu4, after gpu_session_c16.sh (the sweep) and gpu_fa4_install.sh a and b
# on the same warm machine: the whole generate (int8 + FP8 + FA4, guardrails on, the guide's 9-frame prompt), "a" =
# the decode attention's best swept choice written into decode_kernel.DEFAULTS, "b" = the defaults as committed;
# a discarded warm run, then 3 pairs.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
[ -f /tmp/best_attn.txt ] || { echo "no sweep result on this machine (run gpu_session_c16.sh first)"; exit 3; }
IFS=, read -r bn w nw st ev fc < /tmp/best_attn.txt
F=nemo_cosmos_ar/inference/decode_kernel.py
OLD=$(grep '^DEFAULTS = ' $F)
tf() { [ "$1" = 1 ] && echo True || echo False; }
NEW="DEFAULTS = {\"block_n\": $bn, \"waves\": $w, \"num_warps\": $nw, \"num_stages\": $st, \"early_v\": $(tf "$ev"), \"fused_combine\": $(tf "$fc")}"
echo "a: $NEW"; echo "b: $OLD"
if [ "$bn,$w,$nw,$st,$ev,$fc" = "64,4.0,4,2,0,0" ]; then echo "the sweep kept the defaults: nothing to compare"; exit 0; fi
python3 -c 'import sys; p, a, b = sys.argv[1:]; s = open(p).read(); assert a in s; open(p, "w").write(s.replace(a, b))' "$F" "$OLD" "$NEW"
AB_ARGS=--guardrails bash bench/gpu_ab_e2e.sh "$F" "$NEW" "$OLD" 3 470
