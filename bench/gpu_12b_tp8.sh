#!/usr/bin/env bash
# Issue 20, one device-tool call on nvidia-h200-x8 (NeMo bundle carried: `bash ../shared/tools/nemo_gpu/make_bundle.sh
# .nemo_whl`, carry .nemo_whl): cosmos_ar_12b_tealrobot_tp8 as it ships (pure bf16, 10,600-token clips, random init,
# mock clips). Run A: TP=8 on 8 GPUs, 10 steps, a distributed checkpoint after step 8 (folder step=7). Run B: TP=4 on
# GPUs 0-3 resumes it (weights, optimizer, data position; resharded at load) and runs steps 9-10. Prints ms/step,
# model TFLOP/s per GPU and peak memory per GPU of each run and the losses of steps 9-10 side by side (~6 min).
#   bash bench/gpu_12b_tp8.sh ["extra bench_recipe.py args"]
TP_RUN=8 TP_RESUME=4 exec bash "$(dirname "$0")/gpu_12b_tp2.sh" "$@"
