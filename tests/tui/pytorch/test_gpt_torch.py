"""The NumPy GPT against PyTorch: nanoGPT's model (reference_gpt.py, its module names, loaded
strictly from our parameters) computes the same logits and gradients, and its crop-and-recompute
generation writes the same greedy text as our key/value cache."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConfigError
from core.models import ModelConfig, softmax_cross_entropy
from core.models.gpt import CharGPT

torch = pytest.importorskip("torch")
from reference_gpt import from_model, grads_as_ours  # noqa: E402

RECIPE = {"vocab_size": 65, "hidden": 128, "layers": 4, "heads": 4, "block": 64}  # nanoGPT's CPU recipe


@pytest.fixture(autouse=True)
def one_thread():
    """PyTorch's threads synchronise between every small operation: one is faster here, and quieter."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gpt_config(vocab_size: int, **kw) -> ModelConfig:
    return ModelConfig(vocab_size, cell="gpt", **kw)


def perturbed(config: ModelConfig, seed: int) -> CharGPT:
    """A model moved away from nanoGPT's start (gains 1, biases 0) so that every path matters."""
    rng = np.random.default_rng(seed)
    model = CharGPT.create(config, rng)
    for p in model.params.values():
        p += rng.normal(0.0, 0.5 if config.hidden <= 16 else 0.05, p.shape).astype(p.dtype)
    return model


def small_model(dtype: str = "float64", bias: bool = True, block: int = 16) -> CharGPT:
    return perturbed(gpt_config(20, hidden=32, layers=2, heads=4, block=block, bias=bias, dtype=dtype), 13)


# ------------------------------------------------------------------------------- PyTorch
@pytest.mark.parametrize(("bias", "dropout"), [(False, 0.0), (True, 0.0), (False, 0.2)])
def test_logits_and_gradients_equal_pytorch(bias, dropout):
    config = gpt_config(**RECIPE, bias=bias, dropout=dropout, dtype="float64")
    model = perturbed(config, 7)
    rng = np.random.default_rng(8)
    T, B = 64, 3
    x, y = rng.integers(0, 65, (T, B)), rng.integers(0, 65, (T, B))
    masks = model.dropout_masks(T, B, rng)
    logits, _, cache = model.forward(x, (), None, masks)
    loss, dlogits = softmax_cross_entropy(logits.reshape(T * B, 65), y.reshape(-1))
    grads, _ = model.backward(dlogits.reshape(T, B, 65), cache)

    net = from_model(model)  # load_state_dict(strict=True) under nanoGPT's names
    t_logits = net(torch.from_numpy(x.T.copy()), masks)  # (B, T, V)
    t_loss = torch.nn.functional.cross_entropy(t_logits.reshape(-1, 65), torch.from_numpy(y.T.copy()).reshape(-1))
    t_loss.backward()
    t_grads = grads_as_ours(net, config)

    np.testing.assert_allclose(logits.transpose(1, 0, 2), t_logits.detach().numpy(), rtol=0, atol=1e-12)
    assert loss == pytest.approx(t_loss.item(), rel=1e-13)
    assert set(t_grads) == set(grads)
    for name, g in grads.items():
        scale = np.max(np.abs(t_grads[name]))
        assert np.max(np.abs(g - t_grads[name])) <= 1e-6 * scale, name


def test_float32_logits_close_to_pytorch():
    config = gpt_config(**RECIPE)
    model = perturbed(config, 9)
    x = np.random.default_rng(10).integers(0, 65, (64, 4))
    logits = model.forward(x, ())[0]
    with torch.no_grad():
        t_logits = from_model(model)(torch.from_numpy(x.T.copy())).numpy()
    np.testing.assert_allclose(logits.transpose(1, 0, 2), t_logits, rtol=0, atol=2e-5 * np.abs(t_logits).max())


def test_names_round_trip_and_match_nanogpt():
    config = gpt_config(**RECIPE, bias=True)
    model = perturbed(config, 11)
    tensors = CharGPT.to_torch(model.params, config)
    net = from_model(model)
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == CharGPT.torch_shapes(config)
    assert {k: v.shape for k, v in tensors.items()} == CharGPT.torch_shapes(config)
    assert np.shares_memory(tensors["lm_head.weight"], tensors["transformer.wte.weight"])  # tied
    back = CharGPT.from_torch({k: v.numpy() for k, v in net.state_dict().items()}, config)
    assert set(back) == set(model.params)
    for name, p in model.params.items():
        np.testing.assert_array_equal(back[name], p)
    untied = dict(tensors, **{"lm_head.weight": tensors["lm_head.weight"] + 1.0})
    with pytest.raises(ConfigError, match="tied"):
        CharGPT.from_torch(untied, config)


def test_export_config_is_nanogpts_gptconfig_and_reads_back():
    config = gpt_config(**RECIPE)
    fields = CharGPT.export_config(config)
    assert fields.pop("cell") == "gpt"
    assert fields == {
        "block_size": 64,
        "vocab_size": 65,
        "n_layer": 4,
        "n_head": 4,
        "n_embd": 128,
        "dropout": 0.0,
        "bias": False,
    }
    tensors = CharGPT.to_torch(CharGPT.create(config, np.random.default_rng(0)).params, config)
    shape = CharGPT.torch_config(tensors, fields)
    assert ModelConfig(cell="gpt", **shape) == config
    with pytest.raises(ConfigError, match="n_head"):  # no tensor's shape says how many heads
        CharGPT.torch_config(tensors, {})


@pytest.mark.parametrize("bias", [False, True])
def test_greedy_continuation_equals_nanogpt_generate(bias):
    model = small_model(bias=bias, block=24)
    prime = np.array([3, 1, 4, 1, 5])
    new = 24 - len(prime)  # within the block, where nanoGPT's crop and our cache read the same context
    with torch.no_grad():
        theirs = from_model(model).generate_greedy(torch.from_numpy(prime[None].copy()), new)[0].numpy()
    stepper = model.stepper()
    logits, state = stepper.prime(prime)
    stream, ours = stepper.stream(state), list(prime)
    for _ in range(new):
        ours.append(int(np.argmax(logits)))
        logits = stream.feed(ours[-1])
    assert ours == theirs.tolist()
    recomputed = list(prime)  # and the same as our own full forward pass at every step
    for _ in range(new):
        recomputed.append(int(np.argmax(model.forward(np.array(recomputed)[:, None], ())[0][-1, 0])))
    assert recomputed == ours
