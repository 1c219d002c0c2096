"""The hooked model: names, shapes, hooks, and the fast path against two references."""

import pytest
import torch

from grokinterp.model import GrokTransformer, ModelConfig
from grokinterp.tasks import grid_tokens

EXPECTED_SHAPES = {
    "embed.W_E": (14, 32),
    "pos_embed.W_pos": (3, 32),
    "blocks.0.attn.W_Q": (2, 32, 16),
    "blocks.0.attn.W_K": (2, 32, 16),
    "blocks.0.attn.W_V": (2, 32, 16),
    "blocks.0.attn.W_O": (2, 16, 32),
    "blocks.0.mlp.W_in": (32, 64),
    "blocks.0.mlp.W_out": (64, 32),
    "unembed.W_U": (32, 13),
}


def small(p=13, **kw):
    return ModelConfig.for_task(p, d_model=32, n_heads=2, d_head=16, d_mlp=64, **kw)


def test_parameters_carry_hooked_transformer_names_and_shapes():
    model = GrokTransformer(small(), seed=0)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == EXPECTED_SHAPES
    with_bias = GrokTransformer(small(mlp_bias=True), seed=0).state_dict()
    assert with_bias["blocks.0.mlp.b_in"].shape == (64,)
    assert with_bias["blocks.0.mlp.b_out"].shape == (32,)


def test_init_scales_and_determinism():
    cfg = ModelConfig.for_task(113)
    a, b = GrokTransformer(cfg, seed=3), GrokTransformer(cfg, seed=3)
    for name, param in a.state_dict().items():
        assert torch.equal(param, b.state_dict()[name])
    sd = a.state_dict()
    # std of N(0,1)/sqrt(fan): 1/sqrt(128) for most, 1/sqrt(114) for W_U.
    assert sd["blocks.0.mlp.W_in"].std().item() == pytest.approx(128**-0.5, rel=0.02)
    assert sd["unembed.W_U"].std().item() == pytest.approx(114**-0.5, rel=0.03)
    assert not torch.equal(sd["embed.W_E"], GrokTransformer(cfg, seed=4).state_dict()["embed.W_E"])


def test_run_with_cache_has_the_usual_hooks():
    model = GrokTransformer(small(), seed=0)
    tokens = grid_tokens(13)[:20]
    logits, cache = model.run_with_cache(tokens)
    assert logits.shape == (20, 3, 13)
    assert cache["hook_embed"].shape == (20, 3, 32)
    assert cache["blocks.0.attn.hook_pattern"].shape == (20, 2, 3, 3)
    assert cache["blocks.0.mlp.hook_post"].shape == (20, 3, 64)
    for name in [
        "hook_pos_embed",
        "blocks.0.hook_resid_pre",
        "blocks.0.attn.hook_z",
        "blocks.0.hook_resid_mid",
        "blocks.0.mlp.hook_pre",
        "blocks.0.hook_resid_post",
    ]:
        assert name in cache
    pattern = cache["blocks.0.attn.hook_pattern"]
    assert torch.allclose(pattern.sum(-1), torch.ones(20, 2, 3))
    assert (pattern[:, :, 0, 1:] == 0).all()  # causal: position 0 sees only itself


@pytest.mark.parametrize("p,bias", [(13, False), (13, True), (10, False)])
def test_fast_path_equals_plain_forward_on_random_weights(p, bias):
    # float64, so the comparison tests the algebra and not float32 summation order.
    model = GrokTransformer(small(p, mlp_bias=bias), seed=1).double()
    with torch.no_grad():
        for param in model.parameters():  # larger weights make attention non-uniform
            param.mul_(3).add_(0.1 * torch.randn_like(param))
        tokens = grid_tokens(p)
        logits, cache = model.run_with_cache(tokens)
        fast, post = model.last_logits(tokens, return_post=True)
    assert fast.abs().max() > 10  # weights large enough to exercise every term
    torch.testing.assert_close(fast, logits[:, -1], atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(post, cache["blocks.0.mlp.hook_post"][:, -1], atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("p,bias,chunk", [(13, False, None), (13, True, 4), (10, False, 3)])
def test_grid_logits_equal_plain_forward_on_random_weights(p, bias, chunk):
    # Same float64 comparison as above, for the analysis shortcut; chunk sizes that do
    # and do not divide p exercise the blocking.
    model = GrokTransformer(small(p, mlp_bias=bias), seed=5).double()
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(3).add_(0.1 * torch.randn_like(param))
        logits, cache = model.run_with_cache(grid_tokens(p))
        fast, post = model.grid_logits(return_post=True, chunk=chunk)
    pattern = cache["blocks.0.attn.hook_pattern"][:, :, -1]
    assert pattern.std(dim=0).max() > 0.1  # attention really depends on a and b
    assert fast.abs().max() > 10
    torch.testing.assert_close(fast, logits[:, -1], atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(post, cache["blocks.0.mlp.hook_post"][:, -1], atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(model.grid_logits(chunk=chunk), fast, atol=1e-10, rtol=1e-10)


def test_grid_logits_float32_close_to_plain_forward():
    model = GrokTransformer(ModelConfig.for_task(31), seed=6)
    with torch.no_grad():
        plain = model(grid_tokens(31))[:, -1]
        fast = model.grid_logits()
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)


def test_grid_logits_gradients_equal_plain_forward():
    model = GrokTransformer(small(11, mlp_bias=True), seed=8).double()
    grads = []
    for fn in (lambda: model(grid_tokens(11))[:, -1], lambda: model.grid_logits(chunk=4)):
        model.zero_grad()
        fn().logsumexp(-1).sum().backward()
        grads.append({k: v.grad.clone() for k, v in model.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-10, rtol=1e-9)


def test_grid_logits_fall_back_for_two_layers():
    model = GrokTransformer(small(n_layers=2), seed=7).double()
    with torch.no_grad():
        fast, post = model.grid_logits(return_post=True)
        plain = model(grid_tokens(13))[:, -1]
    assert post is None  # the shortcut's activations exist for one layer only
    torch.testing.assert_close(fast, plain, atol=1e-10, rtol=1e-10)


def test_fast_path_gradients_equal_plain_forward():
    model = GrokTransformer(small(), seed=2).double()
    tokens = grid_tokens(13)[::3]
    grads = []
    for fn in (lambda: model(tokens)[:, -1], lambda: model.last_logits(tokens)):
        model.zero_grad()
        fn().double().logsumexp(-1).sum().backward()
        grads.append({k: v.grad.clone() for k, v in model.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-10, rtol=1e-9)


def test_forward_equals_transformer_lens_bridge():
    """Independent implementation: TransformerLens 4's native model, same weights."""
    tl = pytest.importorskip("transformer_lens")
    import transformer_lens.model_bridge.sources.native  # noqa: F401
    from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

    cfg = small()
    model = GrokTransformer(cfg, seed=5)
    bridge_cfg = tl.TransformerBridgeConfig(
        n_layers=1,
        d_model=32,
        n_heads=2,
        d_head=16,
        d_mlp=64,
        d_vocab=14,
        d_vocab_out=13,
        n_ctx=3,
        act_fn="relu",
        normalization_type=None,
        seed=0,
    )
    bridge = tl.TransformerBridge.boot_native(bridge_cfg)
    converted = convert_tl_checkpoint(dict(model.state_dict()), bridge_cfg)
    state = bridge.state_dict()
    for key in state:
        state[key] = converted[key] if key in converted else torch.zeros_like(state[key])
    bridge.load_state_dict(state)
    tokens = grid_tokens(13)
    with torch.no_grad():
        ours = model(tokens)
        theirs = bridge(tokens)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_config_validation():
    with pytest.raises(ValueError, match="d_model"):
        ModelConfig(d_model=0)
    with pytest.raises(ValueError, match="act_fn"):
        ModelConfig(act_fn="gelu")
