"""Bad input to chapter 11's interpretability tools and to the Transformer's cache and config gets a clear error
naming what was expected and what came: the paths no other test reaches."""
import pytest
import torch

from seqlab import interpret
from seqlab.models import GPT, GPTConfig
from seqlab.models.transformer import LayerCache, SelfAttention


def small_gpt(**kw):
    torch.manual_seed(0)
    return GPT(GPTConfig(11, d_model=8, n_heads=2, n_layers=2, max_len=16, **kw))


def test_the_interpretability_tools_refuse_what_they_cannot_read():
    with pytest.raises(TypeError, match="config must be a GPTConfig, got dict"):
        interpret.attention_only({"vocab_size": 11})
    with pytest.raises(TypeError, match="model must be a seqlab.models.GPT, got Linear"):
        interpret.ov_circuits(torch.nn.Linear(2, 2), 0)
    with pytest.raises(ValueError, match=r"layer must be an int in \[0, 2\), got 2"):
        interpret.ov_circuits(small_gpt(), 2)
    with pytest.raises(ValueError, match=r"layer must be an int in \[0, 2\), got True"):
        interpret.ov_circuits(small_gpt(), True)
    with pytest.raises(ValueError, match=r"Pre-Norm model \(norm_first=True\)"):
        interpret.ov_circuits(small_gpt(norm_first=False), 0)
    with pytest.raises(ValueError, match="previous_token_score needs T >= 2, got T = 1"):
        interpret.previous_token_score(torch.ones(1, 2, 1, 1))
    x = torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(ValueError, match=r"x and y must have the same shape \(B, T\), got \(2, 5\) and \(2, 4\)"):
        interpret.token_losses(small_gpt(), x, x[:, :4])
    loss = torch.rand(2, 5)
    with pytest.raises(ValueError, match=r"the late mask must have loss's shape \(2, 5\), got \(2, 4\)"):
        interpret.icl_score(loss, 0, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="ablate_path needs a Pre-Norm GPT"):
        with interpret.ablate_path(small_gpt(norm_first=False), (0, 0), 1):
            pass
    with pytest.raises(ValueError, match=r"x, y and a bool mask must share one shape"):
        interpret.exact_match(small_gpt(), x, x, torch.ones(2, 5))            # a float mask
    with pytest.raises(ValueError, match="steps and values must have the same length, got 3 and 2"):
        interpret.first_crossing([1, 2, 3], [0.1, 0.2], 0.5)
    with pytest.raises(ValueError, match="more than window = 3 points, got 3 and 3"):
        interpret.steepest_drop([1, 2, 3], [3.0, 2.0, 1.0])
    assert interpret.steepest_drop([1, 2, 3, 4], [3.0, 3.0, 1.0, 1.0], window=1) in (2, 3)


def test_attention_patterns_says_so_when_the_fused_kernel_returns_no_weights():
    model = small_gpt()
    for block in model.blocks:
        block.attn.form = "fused"
    with pytest.raises(RuntimeError, match="returned no weights"):
        interpret.attention_patterns(model, torch.zeros(1, 4, dtype=torch.long))


def test_the_cache_and_the_attention_layer_refuse_keys_of_another_shape_and_conflicting_arguments():
    cache = LayerCache()
    cache.append(torch.zeros(2, 3, 4, 5), torch.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"the cache holds keys of shape \(2, 3, 4, 5\).*new keys of shape \(1, 3, 1, 5\)"):
        cache.append(torch.zeros(1, 3, 1, 5), torch.zeros(1, 3, 1, 5))
    with pytest.raises(ValueError, match=r"new keys of shape \(2, 3, 1, 6\)"):
        cache.append(torch.zeros(2, 3, 1, 6), torch.zeros(2, 3, 1, 6))
    attn = SelfAttention(8, 2, causal=True)
    x = torch.randn(1, 3, 8)
    with pytest.raises(TypeError, match="causal must be a bool, got int 1"):
        SelfAttention(8, 2, causal=1)
    with pytest.raises(ValueError, match="a sliding window is causal attention without ALiBi, got causal=False"):
        SelfAttention(8, 2, window=4)
    with pytest.raises(ValueError, match="got causal=True, alibi=True"):
        SelfAttention(8, 2, window=4, causal=True, alibi=True)
    with pytest.raises(TypeError, match=r"x must have the parameters' dtype torch.float32, got dtype torch.float64"):
        attn(x.double())
    with pytest.raises(TypeError, match="cache must be a LayerCache .* got dict"):
        attn(x, cache={})
    _, state = attn(x)
    with pytest.raises(ValueError, match="as state or as cache, not both"):
        attn(x, state, cache=LayerCache())


@pytest.mark.parametrize("kw, error, message", [
    (dict(init_std=0.0), ValueError, "init_std must be a positive number or None, got 0.0"),
    (dict(init_std=True), ValueError, "init_std must be a positive number or None, got True"),
    (dict(init_std="0.02"), ValueError, "init_std must be a positive number or None, got '0.02'"),
    (dict(causal=1), TypeError, "causal and norm_first must be bools, got 1 and True"),
    (dict(norm_first=None), TypeError, "causal and norm_first must be bools, got True and None"),
])
def test_gpt_config_refuses_a_bad_init_std_and_non_bool_switches(kw, error, message):
    with pytest.raises(error, match=message):
        GPTConfig(11, **kw)
    assert GPTConfig(11, init_std=None).init_std is None                       # None: PyTorch's default init
