"""nemo_cosmos_ar: Megatron-Core / NeMo 2 plugin for NVIDIA Cosmos-Predict1 autoregressive video world models."""

from setuptools import find_packages, setup

setup(
    name="nemo-cosmos-ar",
    version="0.1.0",
    description="Post-train, convert and run Cosmos-Predict1 autoregressive world models with Megatron-Core / NeMo 2",
    packages=find_packages(include=["nemo_cosmos_ar", "nemo_cosmos_ar.*"]),
    python_requires=">=3.10",
    # The full pinned stack lives in requirements-cpu.txt / constraints-cpu.txt (CPU) and in the NeMo container
    # (GPU, see Dockerfile); only what the core needs is declared here so installs never pull a torch build.
    install_requires=["torch>=2.4", "numpy", "tqdm", "safetensors"],
    extras_require={
        "nemo": ["nemo_toolkit[nlp]==2.7.3", "megatron-core==0.15.3", "nemo-run==0.11.1"],
        "video": ["decord==0.6.0", "av==18.1.0"],
        "te": ["transformer-engine[pytorch]"],
        "dev": ["pytest"],
    },
    entry_points={
        "console_scripts": ["cosmos-ar=nemo_cosmos_ar.cli:entry"],
        # The `nemo` CLI (nemo-run) loads every module of this group: that registers our recipe factories.
        "nemo_run.cli": ["cosmos_ar=nemo_cosmos_ar.recipes"],
    },
)
