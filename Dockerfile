# GPU image: a pinned NeMo container (NeMo 2.x with nemo.collections.llm, Megatron-Core, TransformerEngine, CUDA)
# plus this package. The container supplies the whole stack, so the package goes in with --no-deps; only the video
# I/O wheels it lacks are added. Build (needs a machine that can pull from nvcr.io):
#   docker build -t nemo-cosmos-ar:latest .
#   docker run --gpus all --ipc=host -v $PWD/checkpoints:/workspace/checkpoints -it nemo-cosmos-ar:latest
# With TransformerEngine present the TE layer spec is used automatically (COSMOS_AR_SPEC=local forces torch SDPA).
# Not built in CI (no GPU, no registry access there); the CPU stack is requirements-cpu.txt + constraints-cpu.txt.
ARG NEMO_IMAGE=nvcr.io/nvidia/nemo:25.09
FROM ${NEMO_IMAGE}

WORKDIR /opt/nemo_cosmos_ar
COPY setup.py README.md ./
COPY nemo_cosmos_ar ./nemo_cosmos_ar
RUN pip install --no-cache-dir "decord==0.6.0" "av>=12" \
 && pip install --no-cache-dir --no-deps -e . \
 && python -c "import nemo_cosmos_ar.recipes, nemo_cosmos_ar.nemo_glue.connectors" \
 && cosmos-ar describe --model 4b

WORKDIR /workspace
ENV OUTPUT_ROOT=/workspace/checkpoints
