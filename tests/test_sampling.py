"""The top-p boundary: cosmos-predict1 zeroes a sorted entry only when the mass *before* it is strictly greater than
``top_p`` (``cumsum - p > top_p``, ``autoregressive/utils/sampling.py`` ``sample_top_p``), so an entry whose
preceding mass equals ``top_p`` exactly is kept. The distributions below hit the boundary exactly in fp32 (equal
logits give probabilities 1/2 and 1/4, which fp32 holds exactly, and so are their partial sums), and the kept set
does not depend on how the sort orders ties.
"""

import pytest
import torch

from nemo_cosmos_ar.inference.sampling import SamplingConfig, sample, sampling_probs

NEG = float("-inf")


@pytest.mark.parametrize(
    "logits, top_p, kept",
    [
        # two tokens of 1/2: the second has exactly top_p = 0.5 before it -> kept (>= would drop it)
        ([0.0, 0.0, NEG, NEG], 0.5, 2),
        # four tokens of 1/4: masses before them 0, 1/4, 1/2, 3/4
        ([0.0, 0.0, 0.0, 0.0], 0.75, 4),
        ([0.0, 0.0, 0.0, 0.0], 0.5, 3),
        ([0.0, 0.0, 0.0, 0.0], 0.25, 2),
        # just below the boundary the entry goes
        ([0.0, 0.0, 0.0, 0.0], 0.2499, 1),
    ],
)
def test_entry_whose_preceding_mass_equals_top_p_is_kept(logits, top_p, kept):
    probs = sampling_probs(torch.tensor([logits]), SamplingConfig(temperature=1.0, top_p=top_p))
    assert probs.dtype == torch.float32
    assert int((probs > 0).sum()) == kept
    assert torch.equal(probs[probs > 0], torch.full((kept,), 1.0 / kept))


def test_both_boundary_tokens_are_drawn():
    """Sampling (not only the distribution): with two tokens of mass 1/2 and top_p = 0.5 both are drawn."""
    logits = torch.tensor([[0.0, NEG, 0.0, NEG]])
    cfg = SamplingConfig(temperature=1.0, top_p=0.5)
    g = torch.Generator().manual_seed(0)
    drawn = {int(sample(logits, cfg, g)[0]) for _ in range(64)}
    assert drawn == {0, 2}  # a miss of one of them has probability 2**-63
