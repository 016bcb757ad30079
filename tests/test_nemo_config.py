"""The NeMo config classes describe exactly the architectures of the plain presets (the sized classes are generated
from model/presets.py; this checks the translation both ways)."""

import pytest


@pytest.mark.parametrize("name", ["tiny", "4b", "12b"])
def test_nemo_sized_configs_match_presets(name):
    from nemo_cosmos_ar.model.presets import get_preset
    from nemo_cosmos_ar.nemo_glue.model import NEMO_CONFIGS, CosmosARNeMoConfig

    preset = get_preset(name)
    nemo_cfg = NEMO_CONFIGS[name]()
    assert nemo_cfg.cosmos_config() == preset
    assert nemo_cfg.seq_length == preset.seq_length
    assert CosmosARNeMoConfig.from_cosmos(preset).cosmos_config() == preset
    # 64000 divides by 64·TP for every TP the 8 KV heads allow: no vocab padding, no rows >= 64000 to sample.
    for tp in (1, 2, 4, 8):
        assert nemo_cfg.vocab_size % (nemo_cfg.make_vocab_size_divisible_by * tp) == 0
