# Sourced by the bench/gpu_session_*.sh scripts on the device machine: installs the carried wheels once into a
# site folder kept between calls of a warm machine, and sets the environment every run uses.
#   source bench/gpu_site.sh .gpu4              # every *.whl of .gpu4 (megatron_core, av, decord)
#   source bench/gpu_site.sh .gpu3 nemo         # the NeMo bundle in .gpu3/nemo_whl (+ its optional wheels) + decord
# The carried folders are git-ignored (add them to .git/info/exclude) and built on the CPU machine; the H200 image has
# Python 3.12 and reaches no index, so the wheels are downloaded for cp312 here (49 MB, under the 64 MiB carry limit):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
#     megatron-core==0.15.3 av==19.0.2 -d .gpu4
#   pip download --no-deps --only-binary=:all: --python-version 3.12 decord==0.6.0 -d .gpu4   # py3-none wheel
# .gpu3 = `bash ../shared/tools/nemo_gpu/make_bundle.sh` output (minus tensorstore, which the image has) + decord.
carried=$1; kind=${2:-plain}; site=/tmp/site_$(basename "$carried")_$kind
if [ ! -f "$site/.ok" ]; then
  rm -rf "$site"
  if [ "$kind" = nemo ]; then
    wheels="$carried/nemo_whl/*.whl $carried/decord-*.whl $(python3 "$carried"/nemo_whl/pick_opt.py)"
  else
    wheels="$carried/*.whl"
  fi
  # shellcheck disable=SC2086  # the globs expand here on purpose
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" $wheels && touch "$site/.ok" || exit 1
fi
export PYTHONPATH=$site:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore CUDA_DEVICE_MAX_CONNECTIONS=1
# FlashAttention-4 (the DiT's "fa4" attention), where bench/gpu_fa4_install.sh put it on this warm machine: first, as
# in the fifth session's measurement (call e6)
if [ -f /tmp/fa4site/.b_ok ]; then
  export PYTHONPATH=/tmp/fa4site:/tmp/fa4site/nvidia_cutlass_dsl/dsl_packages:$PYTHONPATH
fi
# The H200 image sets PYTHONDONTWRITEBYTECODE=1, so every process would compile every module it imports (~3 s of
# generate's start-up, BENCHMARKS.md issue 13 call e3); an installed environment has its .pyc files.
unset PYTHONDONTWRITEBYTECODE
# For same-machine A/B scripts: `swap FILE OLD NEW` replaces the exact text OLD by NEW in FILE (fails if OLD is not
# there, so a stale pattern cannot silently measure the same code twice).
swap() { python3 -c 'import sys; p, a, b = sys.argv[1:]; s = open(p).read(); assert a in s, (p, a); open(p, "w").write(s.replace(a, b))' "$@"; }
# The whole-generate runs of the session scripts: bench_generate_e2e.py on the random folders of /tmp/e2e (written
# once per machine), the guide's 9-frame prompt, each run a fresh process; logs in $L (the caller sets it), copied to
# $OUT as they come.
#   e2e_setup                  the folders and the video prompt
#   e2e NAME LIMIT ARGS...     one run (ARGS: --configs ..., more flags), unless the call is past LIMIT seconds
#                              ($SECONDS); E2E_TIMEOUT (default 100) bounds the run
#   e2e_report NAME...         each run's table row and "# " line
e2e_setup() { mkdir -p "$L" "$OUT"; timeout 200 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only \
  > "$L/setup.log" 2>&1; }
e2e() {
  local name=$1 limit=$2 t=${E2E_TIMEOUT:-100}; shift 2
  [ "$SECONDS" -lt "$limit" ] || return 0
  timeout $((t + 10)) python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --input video --timeout "$t" "$@" \
    > "$L/$name.log" 2>&1
  cp "$L"/*.log "$OUT"/ 2>/dev/null
}
e2e_report() { local f; for f in "$@"; do echo "=== $f"; grep -E "^\| dd|^# dd" "$L/$f.log" 2>/dev/null | tail -2 | cut -c1-400; done; }
# The GPU's SM clock, power and throttle reasons every 200 ms while runs go on (the DiT runs at the power limit:
# BENCHMARKS.md, issue 13, twenty-ninth session): smi_start before the runs, smi_report after them.
smi_start() {
  nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,power.limit,temperature.gpu,clocks_throttle_reasons.active \
    --format=csv,noheader -lms 200 > "$OUT/smi.csv" 2>&1 &
  SMI_PID=$!
}
smi_report() { kill "$SMI_PID" 2>/dev/null; python3 bench/smi_summary.py "$OUT/smi.csv"; }
