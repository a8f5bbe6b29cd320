"""A character-level GPT in NumPy: nanoGPT's architecture, trained and sampled like the recurrent models.

Pre-LayerNorm blocks of causal multi-head self-attention and a GELU MLP, a final LayerNorm, and a
readout tied to the token embedding. For a window of ids x (T, B), every (N, C) array below has
one row per position, N = T * B, in time-major order (row t * B + b is step t of stream b):

    X = wte[x] + wpe[t]                             token row + position row                    (N, C)
    for each block l:
        a = LN(X) * ln1_g + ln1_b                                                               (N, C)
        q, k, v = a Wqkv + bqkv                     one fused projection, C columns each         (N, 3C)
        A_h = softmax(q_h k_h^T / sqrt(D) + M)      head h's D = C / heads columns; M is 0 on
                                                    and below the diagonal, -inf above (causal)  (T, T) per stream
        y = [A_1 v_1, ..., A_heads v_heads]         the heads' outputs side by side              (N, C)
        X = X + y Wo + bo                           residual
        m = LN(X) * ln2_g + ln2_b                                                               (N, C)
        u = m Wfc + bfc                                                                          (N, 4C)
        X = X + GELU(u) Wproj + bproj               GELU(u) = u Phi(u), Phi the normal cdf (exact erf GELU)
    z = LN(X) * lnf_g + lnf_b                                                                   (N, C)
    logits = z wte^T                                tied readout: wte is read twice              (N, V)

    LN(X) = (X - mean) / sqrt(var + 1e-5), per row over its C columns

The biases (ln*_b, b*) exist only with `bias=True` (nanoGPT's shakespeare_char recipe has none).
With dropout, nanoGPT's four places: on the embedding sum, on the attention probabilities, and on
each block's two residual branches (y Wo + bo and GELU(u) Wproj + bproj), inverted (kept values / keep).

Parameters (ours, with nanoGPT's PyTorch names; our matrices are (in, out), nn.Linear's (out, in)):

    wte       (V, C)       transformer.wte.weight and lm_head.weight (one array, tied)
    wpe       (block, C)   transformer.wpe.weight
    ln1_g{l}  (C,)         transformer.h.{l}.ln_1.weight          ln1_b{l}  ... .ln_1.bias
    Wqkv{l}   (C, 3C)      transformer.h.{l}.attn.c_attn.weight^T bqkv{l}   ... .attn.c_attn.bias
    Wo{l}     (C, C)       transformer.h.{l}.attn.c_proj.weight^T bo{l}     ... .attn.c_proj.bias
    ln2_g{l}  (C,)         transformer.h.{l}.ln_2.weight          ln2_b{l}  ... .ln_2.bias
    Wfc{l}    (C, 4C)      transformer.h.{l}.mlp.c_fc.weight^T    bfc{l}    ... .mlp.c_fc.bias
    Wproj{l}  (4C, C)      transformer.h.{l}.mlp.c_proj.weight^T  bproj{l}  ... .mlp.c_proj.bias
    lnf_g     (C,)         transformer.ln_f.weight                lnf_b     ... .ln_f.bias

Speed notes (measured: `lstm-tui bench --cell gpt --compare torch`, benchmarks/gpt_gelu.py):
- Every LayerNorm's gain and bias are folded into the product that reads it:
  (a * g + b) W + c = a (diag(g) W) + (b W + c), so neither pass ever scales an (N, C) array by g;
  backward gets d a directly and unfolds the gradients of g, b, W from the (C, .) gradient of
  diag(g) W. The attention's 1/sqrt(D) is folded into the q columns of the same copy.
- Attention for all streams and heads is batched matmuls on strided views of the (N, 3C)
  projection (no transposed copies), writing the heads' outputs straight into the (N, C) array the
  output projection reads.
- The softmax exponentiates the scores without subtracting the row maximum (a shift softmax does
  not see): exact while no exponential overflows and a row's sum is a normal number. A row whose
  sum overflows or falls below sqrt(tiny) is recomputed the usual way, max subtracted.
- GELU: NumPy has no erf. float64 evaluates Phi to float64 precision (two polynomial pieces and
  one exp); float32 uses Phi ~ (1 + tanh(x P(x^2))) / 2, a fitted polynomial P whose error is
  below float32 resolution (about 1 ulp of Phi). Run in float32, the exact evaluation costs several
  times as much (benchmarks/results/gpt_gelu.txt). benchmarks/fit_gelu.py derives both. The
  backward uses the exact derivative Phi(u) + u phi(u) in both.
- Big arrays come from a pool (core's Pool, keeping as many spares of a shape as a step caches:
  about 4L + 8) and go back to it when backward has spent them.

Generation (Stepper, Stream) keeps a key/value cache, so each new character costs one position.
The cache holds at most `block` positions. Reading a character when it is full first keeps the
last keep = block // 2 characters, reads them again as a fresh context (positions 0 .. keep-1,
one bulk pass), then reads the new character at position keep. So the context of character i
(counting from 0 from a fresh start) is all of it for i < block, and otherwise its last
c = keep + 1 + ((i - block) mod (block - keep)) characters: between keep + 1 and block.
`context_length` and `context_windows` state the same rule for evaluation, which reads a text in
those windows (`score_windows`) so that its one-pass score is the loss of generation's predictions.

A window carries no state into the next (`initial_state` is ()): each training window is a fresh
context of at most `block` positions, and a stream the trainer restarts mid-window (`resets`)
starts again at position 0 there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from .base import Cache, CharModel, ModelConfig, Params, Pool, Resets, State
from .recurrent import scatter_rows

LN_EPS = 1e-5  # LayerNorm's epsilon, as nn.LayerNorm and nanoGPT


# ------------------------------------------------------------------------ the normal cdf, GELU
# Polynomials highest degree first (Horner), derived by benchmarks/fit_gelu.py.
# float64, |x| < 2: Phi(x) = 1/2 + x R(x^2).
_PHI_SMALL = (
    -1.1606779311358433e-16, 6.30127480647449e-15, -1.9980460870692806e-13, 5.055861492246278e-12,
    -1.1283088889529666e-10, 2.2731201469848888e-09, -4.122601622240647e-08, 6.659686122475279e-07,
    -9.444655693847572e-06, 0.00011543468733518617, -0.0011873282153967084, 0.009973557010022772,
    -0.06649038006690465, 0.39894228040143265,
)  # fmt: skip
# float64, a = |x| >= 2: 1 - Phi(a) = t exp(Q(s) - a^2 / 2), t = 1 / (1 + a / 4), s = 3 t - 1 in (-1, 1].
_PHI_TAIL = (
    -1.0039216084699803e-11, 3.918762674396979e-10, 6.692947900128405e-10, -4.7062383318700265e-09,
    -1.293529188272459e-08, 2.6049755043320527e-08, 1.5323924124808021e-07, 3.564704289899086e-08,
    -1.2230575054879995e-06, -2.689068708337903e-06, 4.719963445075135e-06, 3.408682439431973e-05,
    4.251646446379979e-05, -0.0002053990087740796, -0.0010679155576503545, -0.0014515059193016954,
    0.008361248766037757, 0.07497426108717865, 0.45641734683335217, -1.9148248712464402,
)  # fmt: skip
_PHI_SPLIT = 2.0
# float32: Phi(x) ~ (1 + tanh(x P(x^2))) / 2. Unclipped: past |x| = 5.5, x P(x^2) only grows (> 9,
# where tanh is 1 in float32), and the leading coefficient is positive, so a huge x saturates.
_PHI_FAST = (
    1.756169805223182e-09, -1.3226330910373026e-07, 3.9647440742570626e-06, -5.530619205328304e-05,
    -3.2594978996657044e-05, 0.03633308457657671, 0.7978849414598795,
)  # fmt: skip
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _horner(s: NDArray, coefficients: tuple[float, ...], out: NDArray) -> NDArray:
    """out = the polynomial (highest degree first) at s, in place (s and out must not overlap)."""
    np.multiply(s, coefficients[0], out=out)
    out += coefficients[1]
    for c in coefficients[2:]:
        out *= s
        out += c
    return out


def normal_cdf_exact(x: NDArray) -> NDArray:
    """Phi(x) for every element, to the precision of x's dtype (float64: within a few units in the
    last place, and the left tail to full relative precision, where 1 + erf would cancel)."""
    x = np.asarray(x)
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    a = np.abs(flat)
    small = np.flatnonzero(a < _PHI_SPLIT)
    tail = np.flatnonzero(~(a < _PHI_SPLIT))  # (NaN goes here and stays NaN)
    with np.errstate(over="ignore", invalid="ignore"):
        xs = flat[small]
        out_small = _horner(xs * xs, _PHI_SMALL, out=np.empty_like(xs))
        out_small *= xs
        out_small += 0.5
        out[small] = out_small
        at = a[tail]
        t = 1.0 / (1.0 + 0.25 * at)  # (0, 2/3]
        q = _horner(3.0 * t - 1.0, _PHI_TAIL, out=np.empty_like(t))
        q -= 0.5 * at * at
        upper = t * np.exp(q)  # 1 - Phi(|x|)
        out[tail] = np.where(flat[tail] > 0, 1.0 - upper, upper)
    return out.reshape(x.shape)


def normal_cdf_fast(x: NDArray, out: NDArray | None = None, scratch: NDArray | None = None) -> NDArray:
    """Phi(x) ~ (1 + tanh(x P(x^2))) / 2: absolute error about 1e-7 (one float32 ulp of Phi), for
    float32. `out` and `scratch`, shaped like x, spare the allocations."""
    with np.errstate(over="ignore", invalid="ignore"):  # a huge |x|: P overflows to inf, tanh to +-1
        return _cdf_fast(x, np.empty_like(x) if out is None else out, np.empty_like(x) if scratch is None else scratch)


def _cdf_fast(x: NDArray, out: NDArray, t: NDArray) -> NDArray:
    """normal_cdf_fast's arithmetic, for callers that have set np.errstate themselves."""
    np.multiply(x, x, out=t)
    _horner(t, _PHI_FAST, out=out)
    out *= x
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def normal_cdf(x: NDArray, out: NDArray | None = None, scratch: NDArray | None = None) -> NDArray:
    """Phi(x) as the model computes it: exact in float64, the fast form in float32."""
    if x.dtype == np.float32:
        return normal_cdf_fast(x, out, scratch)
    p = normal_cdf_exact(x)
    if out is None:
        return p
    np.copyto(out, p)
    return out


def gelu_forward(u: NDArray, Phi: NDArray, G: NDArray) -> None:
    """Phi = Phi(u) and G = GELU(u) = u Phi(u), written into the arrays given (shaped like u;
    three distinct arrays: G is scratch space until the end)."""
    normal_cdf(u, out=Phi, scratch=G)
    np.multiply(u, Phi, out=G)


def gelu_backward(u: NDArray, Phi: NDArray, dG: NDArray, scratch: NDArray) -> None:
    """dG becomes d loss / d u = dG * (Phi(u) + u phi(u)), phi the normal density, in place.
    `scratch` (shaped like u) is overwritten."""
    with np.errstate(over="ignore", invalid="ignore"):
        np.multiply(u, u, out=scratch)
        scratch *= -0.5
        np.exp(scratch, out=scratch)  # exp(-u^2 / 2)
    scratch *= u
    scratch *= _INV_SQRT_2PI  # u phi(u)
    scratch += Phi
    dG *= scratch


def gelu(u: NDArray) -> NDArray:
    """GELU(u) = u Phi(u), as the model computes it."""
    return u * normal_cdf(u)


# ------------------------------------------------------------------ shared pieces of arithmetic
def _layer_norm(X: NDArray, Xhat: NDArray, mean_w: NDArray) -> NDArray:
    """Xhat = (X - mean) / sqrt(var + eps), row by row (gain and bias are folded into the next
    product); returns rstd (N,) = 1 / sqrt(var + eps). `mean_w` is a (C,) vector of 1/C."""
    mean = X @ mean_w  # (N,)
    np.subtract(X, mean[:, None], out=Xhat)
    var = np.einsum("nc,nc->n", Xhat, Xhat)  # (N,) sum of squares, / C below
    var *= mean_w[0]
    var += LN_EPS
    rstd = np.sqrt(var, out=var)
    np.divide(1.0, rstd, out=rstd)
    Xhat *= rstd[:, None]
    return rstd


def _layer_norm_backward(dXhat: NDArray, Xhat: NDArray, rstd: NDArray, mean_w: NDArray) -> None:
    """dXhat (N, C) becomes d loss / d X, in place:
    dX = rstd (dXhat - mean(dXhat) - Xhat mean(dXhat Xhat)). Overwrites Xhat."""
    m1 = dXhat @ mean_w  # (N,) mean(dXhat)
    m2 = np.einsum("nc,nc->n", dXhat, Xhat)  # (N,)
    m2 *= mean_w[0]  # mean(dXhat Xhat)
    dXhat -= m1[:, None]
    Xhat *= m2[:, None]
    dXhat -= Xhat
    dXhat *= rstd[:, None]


def _fold(
    W: NDArray, g: NDArray, b: NDArray | None, c: NDArray | None, scale: NDArray | None, out: NDArray | None = None
) -> tuple[NDArray, NDArray | None]:
    """The product that reads a LayerNorm, with its gain and bias folded in:
    (a * g + b) W + c = a W_eff + c_eff,  W_eff = diag(g) W S,  c_eff = (b W + c) S,
    S = diag(scale) (columns scaled, or none). W (C, K); returns W_eff (C, K), in `out` if given,
    and c_eff (K,) or None."""
    W_eff = np.multiply(W, g[:, None], out=out)  # (C, K)
    if scale is not None:
        W_eff *= scale
    if b is None:
        return W_eff, None
    c_eff = b @ W  # (K,)
    if c is not None:
        c_eff += c
    if scale is not None:
        c_eff *= scale
    return W_eff, c_eff


def _unfold(
    dW_eff: NDArray, dc_eff: NDArray | None, W: NDArray, g: NDArray, b: NDArray | None, scale: NDArray | None
) -> tuple[NDArray, NDArray, NDArray | None, NDArray | None]:
    """Gradients (dW, dg, db, dc) of W, g, b, c from those of W_eff and c_eff (see _fold):
    dW = diag(g) dW_eff S + b (dc_eff S)^T,  dg = rowsum(dW_eff S * W),  db = W (dc_eff S),  dc = dc_eff S.
    dW_eff becomes dW, in place (a fresh (C, K) array would cost page faults every step)."""
    if scale is not None:
        dW_eff *= scale  # dW_eff S
    dg = np.einsum("ck,ck->c", dW_eff, W)  # (C,)
    dW_eff *= g[:, None]  # (C, K) dW, but for the bias term
    if dc_eff is None or b is None:
        return dW_eff, dg, None, None
    dc = dc_eff * scale if scale is not None else dc_eff  # (K,)
    dW_eff += np.outer(b, dc)
    return dW_eff, dg, W @ dc, dc


def _heads(A2: NDArray, T: int, B: int, heads: int, parts: int) -> list[NDArray]:
    """Views (B, heads, T, D) of the `parts` C-column blocks of A2 (N, parts * C), rows time-major:
    part p, head h of stream b is A2[b::B, p*C + h*D : p*C + (h+1)*D]. No copies."""
    D = A2.shape[1] // (parts * heads)
    A5 = A2.reshape(T, B, parts, heads, D)
    return [A5[:, :, p].transpose(1, 2, 0, 3) for p in range(parts)]


def _attention_probs(q: NDArray, k: NDArray, mask: NDArray, out: NDArray) -> NDArray:
    """out (..., Tq, Tk) = softmax(q k^T + mask) over the last axis, for q (..., Tq, D), k (..., Tk, D).

    The exponentials are taken without subtracting each row's max (softmax is shift-invariant):
    exact while nothing overflows and each row's sum is a normal number, which the sums show; the
    rare row that fails (a score above ~88 in float32, or all of them below ~-43) sends the whole
    array through the usual max-subtracted form."""
    kT = k.swapaxes(-1, -2)
    np.matmul(q, kT, out=out)
    out += mask
    with np.errstate(over="ignore", invalid="ignore"):
        np.exp(out, out=out)
        sums = out @ np.ones(out.shape[-1], out.dtype)  # (..., Tq) (inf when a row overflowed: see below)
    lo = math.sqrt(float(np.finfo(out.dtype).tiny))
    if not (float(sums.min()) >= lo and float(sums.max()) < math.inf):
        np.matmul(q, kT, out=out)
        out += mask
        out -= out.max(axis=-1, keepdims=True)
        np.exp(out, out=out)
        sums = out.sum(axis=-1)
    np.divide(1.0, sums, out=sums)
    out *= sums[..., None]
    return out


def _softmax_backward(dA: NDArray, A: NDArray) -> None:
    """dA (..., T, T) = d loss / d A becomes d loss / d scores, in place: A * (dA - rowsum(dA * A))."""
    rowdot = np.einsum("...ij,...ij->...i", dA, A)  # (..., T)
    dA -= rowdot[..., None]
    dA *= A


def causal_mask(T: int, dtype: str) -> NDArray:
    """(T, T): 0 where query t may read key s (s <= t), -inf above the diagonal."""
    return np.triu(np.full((T, T), -np.inf, dtype), k=1)


def _reset_layout(T: int, B: int, resets: Resets, dtype: str) -> tuple[NDArray, NDArray]:
    """With streams that start afresh mid-window: positions (T, B) counted from each stream's latest
    start, and the additive mask (B, 1, T, T) that lets step t read only steps of its own text."""
    start = np.zeros((T, B), np.int64)  # (T, B) the step where each stream's current text began
    for t in sorted(resets):
        start[t:, resets[t]] = t
    steps = np.arange(T)
    pos = steps[:, None] - start  # (T, B)
    visible = (steps[None, None, :] <= steps[None, :, None]) & (
        steps[None, None, :] >= start.T[:, :, None]
    )  # (B, T, T)
    mask = np.where(visible, 0.0, -np.inf).astype(dtype)[:, None]  # (B, 1, T, T)
    return pos, mask


# ---------------------------------------------------------------------------------- the model
@dataclass(eq=False)
class Masks:
    """Inverted-dropout masks of one training window (0 or 1/keep), in nanoGPT's four places."""

    embedding: NDArray  # (N, C) on wte[x] + wpe[t]
    attention: list[NDArray]  # per block (B, heads, T, T) on the attention probabilities
    attn_out: list[NDArray]  # per block (N, C) on y Wo + bo
    mlp_out: list[NDArray]  # per block (N, C) on GELU(u) Wproj + bproj


class _BlockCache:
    """What one block's backward pass needs from its forward pass."""

    __slots__ = ("xhat1", "rstd1", "W1", "qkv", "A", "Ad", "Y", "xhat2", "rstd2", "W2", "U", "Phi", "G")

    def __init__(self) -> None:
        self.xhat1: NDArray  # (N, C) LN of the block's input
        self.rstd1: NDArray  # (N,)
        self.W1: NDArray  # (C, 3C) diag(ln1_g) Wqkv, q columns / sqrt(D)
        self.qkv: NDArray  # (N, 3C) q (scaled), k, v
        self.A: NDArray  # (B, heads, T, T) attention probabilities
        self.Ad: NDArray  # (B, heads, T, T) after dropout (A itself without)
        self.Y: NDArray  # (N, C) the heads' outputs side by side
        self.xhat2: NDArray  # (N, C) LN after the attention's residual
        self.rstd2: NDArray  # (N,)
        self.W2: NDArray  # (C, 4C) diag(ln2_g) Wfc
        self.U: NDArray  # (N, 4C) the MLP's pre-activation
        self.Phi: NDArray  # (N, 4C) Phi(U)
        self.G: NDArray  # (N, 4C) GELU(U)


class GPTCache(Cache):
    """Everything `backward` needs from `forward`: `layers` holds each block's _BlockCache, `top`
    the final LayerNorm's output (N, C)."""

    __slots__ = ("ids", "T", "B", "pos", "rstdf", "Wr", "masks")

    def __init__(self, ids: NDArray, T: int, B: int, resets: Resets | None, masks: Masks | None) -> None:
        super().__init__([], resets, np.empty(0))
        self.layers: list[_BlockCache]
        self.ids = ids  # (N,) token ids, time-major
        self.T, self.B = T, B
        self.pos: NDArray | None = None  # (T, B) positions when some stream restarted, else None (0..T-1)
        self.rstdf: NDArray  # (N,) the final LayerNorm's 1 / std
        self.Wr: NDArray  # (C, V) diag(lnf_g) wte^T
        self.masks = masks


def head_size(config: ModelConfig) -> int:
    """D: the columns of each attention head."""
    return config.hidden // config.heads


class CharGPT(CharModel):
    """The GPT model: a config and a dict of parameters, with forward/backward over a window of at
    most `block` steps (see the module docstring)."""

    name: ClassVar[str] = "gpt"
    title: ClassVar[str] = "GPT"
    summary: ClassVar[str] = "transformer (nanoGPT's architecture): causal self-attention over a block"
    state_names: ClassVar[tuple[str, ...]] = ()  # nothing carried between windows
    inside_quantities: ClassVar[tuple[str, ...]] = ("residual",)  # for `inspect --unit`
    inside_default: ClassVar[str] = "residual"
    gate_quantities: ClassVar[tuple[str, ...]] = ()
    inside_attention: ClassVar[bool] = True  # the inside view shows each head's attention
    torch_class: ClassVar[str] = "nanoGPT's GPT"

    def __init__(self, config: ModelConfig, params: Params):
        super().__init__(config, params)
        self._pool = Pool(per_shape=4 * config.layers + 8)  # every cached array of a step comes back
        self._mask = causal_mask(config.block, config.dtype)  # (block, block)
        self._mean_w = np.full(config.hidden, 1.0 / config.hidden, config.dtype)  # (C,)
        self._qscale = np.ones(3 * config.hidden, config.dtype)  # (3C,) 1/sqrt(D) on the q columns
        self._qscale[: config.hidden] = 1.0 / math.sqrt(head_size(config))

    # ------------------------------------------------------------------------- facts
    @classmethod
    def check_config(cls, config: ModelConfig) -> None:
        """The heads split the width evenly."""
        super().check_config(config)
        if config.hidden % config.heads:
            raise ConfigError(
                f"--heads {config.heads} must divide the width --hidden {config.hidden} "
                f"(each head takes hidden / heads columns)"
            )

    @classmethod
    def longest_window(cls, config: ModelConfig) -> int | None:
        """Its block: the positions it has embeddings for."""
        return config.block

    @classmethod
    def shape_text(cls, config: ModelConfig) -> str:
        return (
            f"{config.layers} layer{'s' if config.layers > 1 else ''} x width {config.hidden}, "
            f"{config.heads} head{'s' if config.heads > 1 else ''}, block {config.block}"
        )

    @classmethod
    def param_shapes(cls, config: ModelConfig) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape, in a fixed order (biases only with config.bias)."""
        V, C, bias = config.vocab_size, config.hidden, config.bias
        shapes: dict[str, tuple[int, ...]] = {"wte": (V, C), "wpe": (config.block, C)}
        for i in range(config.layers):
            block = [
                (f"ln1_g{i}", (C,)), (f"ln1_b{i}", (C,)),
                (f"Wqkv{i}", (C, 3 * C)), (f"bqkv{i}", (3 * C,)),
                (f"Wo{i}", (C, C)), (f"bo{i}", (C,)),
                (f"ln2_g{i}", (C,)), (f"ln2_b{i}", (C,)),
                (f"Wfc{i}", (C, 4 * C)), (f"bfc{i}", (4 * C,)),
                (f"Wproj{i}", (4 * C, C)), (f"bproj{i}", (C,)),
            ]  # fmt: skip
            shapes.update((name, s) for name, s in block if bias or not _is_bias(name))
        shapes["lnf_g"] = (C,)
        if bias:
            shapes["lnf_b"] = (C,)
        return shapes

    @classmethod
    def init_params(cls, config: ModelConfig, rng: np.random.Generator) -> Params:
        """nanoGPT's initialisation: every matrix and embedding normal(0, 0.02), except the two
        residual projections (Wo, Wproj) normal(0, 0.02 / sqrt(2 L)); biases 0, LayerNorm gains 1."""
        residual_std = 0.02 / math.sqrt(2 * config.layers)
        params: Params = {}
        for name, shape in cls.param_shapes(config).items():
            if name.startswith("ln") and "_g" in name:
                params[name] = np.ones(shape, config.dtype)
            elif len(shape) == 1:
                params[name] = np.zeros(shape, config.dtype)
            else:
                std = residual_std if name.startswith(("Wo", "Wproj")) else 0.02
                params[name] = rng.normal(0.0, std, size=shape).astype(config.dtype)
        return params

    @classmethod
    def train_flops_per_char(cls, config: ModelConfig) -> float:
        """Forward + backward flops per character at a full block: 6 per matrix weight (the
        readout's included) and 12 L C T for the attention scores and their use (as nanoGPT's MFU)."""
        L, C, V = config.layers, config.hidden, config.vocab_size
        return 6.0 * (12 * L * C * C + V * C) + 12.0 * L * C * config.block

    @classmethod
    def activation_bytes(cls, config: ModelConfig, batch: int, seq_len: int) -> int:
        """About the memory one training step of `batch` x `seq_len` holds: per block the cached
        (N, 18C) of rows, the (B, heads, T, T) attention and the folded (C, 7C) weights (with
        dropout also the masks and the dropped attention); the passes' temporaries (N, 13C) and
        one attention array; the logits, their gradient and the loss's two temporaries (N, V) each."""
        N, C, H, T = batch * seq_len, config.hidden, config.heads, seq_len
        att = batch * H * T * T
        per_block = 18 * N * C + att + 7 * C * C + (3 * N * C + 2 * att if config.dropout > 0 else 0)
        temporaries = 13 * N * C + att + (N * C if config.dropout > 0 else 0)
        floats = config.layers * per_block + temporaries + 4 * N * config.vocab_size
        return floats * np.dtype(config.dtype).itemsize

    # ---------------------------------------------------------------- nanoGPT's names
    @classmethod
    def torch_names(cls, config: ModelConfig) -> dict[str, tuple[str, bool]]:
        """Our name -> (nanoGPT's state_dict name, transposed?). wte has a second name, lm_head.weight."""
        names = {"wte": ("transformer.wte.weight", False), "wpe": ("transformer.wpe.weight", False)}
        per_block = {
            "ln1_g": ("ln_1.weight", False), "ln1_b": ("ln_1.bias", False),
            "Wqkv": ("attn.c_attn.weight", True), "bqkv": ("attn.c_attn.bias", False),
            "Wo": ("attn.c_proj.weight", True), "bo": ("attn.c_proj.bias", False),
            "ln2_g": ("ln_2.weight", False), "ln2_b": ("ln_2.bias", False),
            "Wfc": ("mlp.c_fc.weight", True), "bfc": ("mlp.c_fc.bias", False),
            "Wproj": ("mlp.c_proj.weight", True), "bproj": ("mlp.c_proj.bias", False),
        }  # fmt: skip
        shapes = cls.param_shapes(config)
        for i in range(config.layers):
            for ours, (theirs, transposed) in per_block.items():
                if f"{ours}{i}" in shapes:
                    names[f"{ours}{i}"] = (f"transformer.h.{i}.{theirs}", transposed)
        names["lnf_g"] = ("transformer.ln_f.weight", False)
        if config.bias:
            names["lnf_b"] = ("transformer.ln_f.bias", False)
        return names

    @classmethod
    def torch_shapes(cls, config: ModelConfig) -> dict[str, tuple[int, ...]]:
        """Every tensor of nanoGPT's state_dict for this shape (lm_head.weight included), with its shape."""
        shapes = cls.param_shapes(config)
        out = {}
        for ours, (theirs, transposed) in cls.torch_names(config).items():
            out[theirs] = shapes[ours][::-1] if transposed else shapes[ours]
        out["lm_head.weight"] = shapes["wte"]
        return out

    @classmethod
    def to_torch(cls, params: Params, config: ModelConfig) -> dict[str, NDArray]:
        """Our parameters under nanoGPT's names and layouts; lm_head.weight repeats wte (tied).
        Linear in the arrays, so gradients and Adam's moments map the same way."""
        out = {}
        for ours, (theirs, transposed) in cls.torch_names(config).items():
            out[theirs] = np.ascontiguousarray(params[ours].T if transposed else params[ours])
        out["lm_head.weight"] = out["transformer.wte.weight"]
        return out

    @classmethod
    def from_torch(cls, tensors: dict[str, NDArray], config: ModelConfig) -> Params:
        """The inverse of `to_torch`. lm_head.weight, when present, must equal the token
        embedding: this model ties them (a GPT whose readout is separate is not one of ours)."""
        wte = tensors["transformer.wte.weight"]
        head = tensors.get("lm_head.weight")
        if head is not None and not np.array_equal(head, wte):
            raise ConfigError("lm_head.weight differs from transformer.wte.weight: only tied readouts load")
        return {
            ours: np.ascontiguousarray(tensors[theirs].T if transposed else tensors[theirs])
            for ours, (theirs, transposed) in cls.torch_names(config).items()
        }

    @classmethod
    def torch_vocab_axes(cls, config: ModelConfig) -> dict[str, int]:
        """The tensors with an axis over the vocabulary, and that axis."""
        return {"transformer.wte.weight": 0, "lm_head.weight": 0}

    @classmethod
    def torch_config(cls, tensors: dict[str, NDArray], saved: dict[str, Any]) -> dict[str, Any] | None:
        """Our config fields from nanoGPT's tensors (V, C, block, L, bias) and `saved`, the metadata's
        config (n_head, which no tensor's shape shows); None when these are not a GPT's."""
        if "transformer.wte.weight" not in tensors:
            return None
        for name in ("transformer.wpe.weight", "transformer.h.0.ln_1.weight"):
            if name not in tensors:
                raise ConfigError(f"no tensor {name} (nanoGPT's GPT has one)")
        if tensors["transformer.wte.weight"].ndim != 2 or tensors["transformer.wpe.weight"].ndim != 2:
            raise ConfigError("transformer.wte.weight and transformer.wpe.weight must be matrices")
        heads = saved.get("n_head")
        if not isinstance(heads, int) or isinstance(heads, bool):
            raise ConfigError(
                "the metadata 'config' must give n_head, the number of attention heads (no tensor's shape shows it)"
            )
        V, C = tensors["transformer.wte.weight"].shape
        layers = 0
        while f"transformer.h.{layers}.ln_1.weight" in tensors:
            layers += 1
        return {
            "vocab_size": int(V),
            "hidden": int(C),
            "layers": layers,
            "heads": heads,
            "block": int(tensors["transformer.wpe.weight"].shape[0]),
            "bias": "transformer.ln_f.bias" in tensors,
        }

    @classmethod
    def export_config(cls, config: ModelConfig) -> dict[str, Any]:
        """nanoGPT's GPTConfig fields, so that GPTConfig(**them, without "cell") builds the model an
        export loads into, and "cell": "gpt"."""
        return {
            "block_size": config.block,
            "vocab_size": config.vocab_size,
            "n_layer": config.layers,
            "n_head": config.heads,
            "n_embd": config.hidden,
            "dropout": config.dropout,
            "bias": config.bias,
            "cell": cls.name,
        }

    # ------------------------------------------------------------------- instances
    def initial_state(self, batch: int = 1) -> State:
        """Nothing: a GPT's context is the window it reads."""
        return ()

    def dropout_masks(self, T: int, B: int, rng: np.random.Generator) -> Masks | None:
        """Inverted-dropout masks for a (T, B) window, or None when dropout is 0."""
        p = self.config.dropout
        if p == 0.0:
            return None
        cfg, keep = self.config, 1.0 - p
        N, C, dt = T * B, cfg.hidden, cfg.dtype

        def draw(shape: tuple[int, ...]) -> NDArray:
            return ((rng.random(shape) < keep) / keep).astype(dt)

        L = cfg.layers
        return Masks(
            embedding=draw((N, C)),
            attention=[draw((B, cfg.heads, T, T)) for _ in range(L)],
            attn_out=[draw((N, C)) for _ in range(L)],
            mlp_out=[draw((N, C)) for _ in range(L)],
        )

    def stream_masks(self, masks: Masks | None, streams: slice) -> Masks | None:
        """The masks of streams `streams` (a slice of the B): rows t * B + b of the (N, C) arrays,
        and the B axis of the attention's."""
        if masks is None:
            return None
        B = masks.attention[0].shape[0]

        def rows(a: NDArray) -> NDArray:  # (N, C) -> (T * b, C), still time-major
            return np.ascontiguousarray(a.reshape(-1, B, a.shape[-1])[:, streams].reshape(-1, a.shape[-1]))

        return Masks(
            embedding=rows(masks.embedding),
            attention=[np.ascontiguousarray(a[streams]) for a in masks.attention],
            attn_out=[rows(a) for a in masks.attn_out],
            mlp_out=[rows(a) for a in masks.mlp_out],
        )

    # ----------------------------------------------------------------------- forward
    def forward(
        self, x: NDArray, state: State = (), resets: Resets | None = None, masks: Any = None
    ) -> tuple[NDArray, State, Cache]:
        """Logits (T, B, V) for ids `x` (T, B), T <= block, each stream read from position 0 (a
        stream in `resets` starts again from position 0 at that step, seeing none of the steps
        before); the state, (); the cache for backward."""
        cfg, P, pool = self.config, self.params, self._pool
        T, B = x.shape
        if T > cfg.block:
            raise ValueError(f"a window of {T} steps is longer than the block ({cfg.block})")
        N, C, V, H, dt = T * B, cfg.hidden, cfg.vocab_size, cfg.heads, cfg.dtype
        ids = np.asarray(x).reshape(N)
        if N and (int(ids.min()) < 0 or int(ids.max()) >= V):
            raise IndexError(f"character ids must be in [0, {V}), got {ids.min()}..{ids.max()}")
        cache = GPTCache(ids, T, B, resets, masks)
        mean_w = self._mean_w

        X = pool.take((N, C), dt)  # (N, C) the residual stream, updated in place
        np.take(P["wte"], ids, axis=0, out=X, mode="clip")  # (ids checked above; "raise" would buffer)
        if resets:
            pos, mask = _reset_layout(T, B, resets, dt)  # (T, B), (B, 1, T, T)
            X += P["wpe"][pos.reshape(N)]
            cache.pos = pos
        else:
            X.reshape(T, B, C)[...] += P["wpe"][:T, None, :]
            mask = self._mask[:T, :T]  # (T, T)
        if masks is not None:
            X *= masks.embedding
        branch = pool.take((N, C), dt)  # (N, C) a residual branch's output before it is added

        for i in range(cfg.layers):
            bc = _BlockCache()
            # attention
            bc.xhat1 = pool.take((N, C), dt)  # (N, C)
            bc.rstd1 = _layer_norm(X, bc.xhat1, mean_w)  # (N,)
            W1 = pool.take((C, 3 * C), dt)  # (C, 3C) diag(ln1_g) Wqkv, q columns / sqrt(D)
            bc.W1, c1 = _fold(P[f"Wqkv{i}"], P[f"ln1_g{i}"], P.get(f"ln1_b{i}"), P.get(f"bqkv{i}"), self._qscale, W1)
            bc.qkv = pool.take((N, 3 * C), dt)  # (N, 3C)
            np.matmul(bc.xhat1, bc.W1, out=bc.qkv)
            if c1 is not None:
                bc.qkv += c1
            q, k, v = _heads(bc.qkv, T, B, H, 3)  # (B, H, T, D) views
            bc.A = _attention_probs(q, k, mask, out=pool.take((B, H, T, T), dt))  # (B, H, T, T)
            bc.Ad = bc.A
            if masks is not None:
                bc.Ad = np.multiply(bc.A, masks.attention[i], out=pool.take((B, H, T, T), dt))  # (B, H, T, T)
            bc.Y = pool.take((N, C), dt)  # (N, C)
            np.matmul(bc.Ad, v, out=_heads(bc.Y, T, B, H, 1)[0])
            np.matmul(bc.Y, P[f"Wo{i}"], out=branch)
            if cfg.bias:
                branch += P[f"bo{i}"]
            if masks is not None:
                branch *= masks.attn_out[i]
            X += branch
            # MLP
            bc.xhat2 = pool.take((N, C), dt)  # (N, C)
            bc.rstd2 = _layer_norm(X, bc.xhat2, mean_w)  # (N,)
            W2 = pool.take((C, 4 * C), dt)  # (C, 4C) diag(ln2_g) Wfc
            bc.W2, c2 = _fold(P[f"Wfc{i}"], P[f"ln2_g{i}"], P.get(f"ln2_b{i}"), P.get(f"bfc{i}"), None, W2)
            bc.U = pool.take((N, 4 * C), dt)  # (N, 4C)
            np.matmul(bc.xhat2, bc.W2, out=bc.U)
            if c2 is not None:
                bc.U += c2
            bc.Phi = pool.take((N, 4 * C), dt)  # (N, 4C)
            bc.G = pool.take((N, 4 * C), dt)  # (N, 4C)
            gelu_forward(bc.U, bc.Phi, bc.G)
            np.matmul(bc.G, P[f"Wproj{i}"], out=branch)
            if cfg.bias:
                branch += P[f"bproj{i}"]
            if masks is not None:
                branch *= masks.mlp_out[i]
            X += branch
            cache.layers.append(bc)

        cache.top = pool.take((N, C), dt)  # (N, C)
        cache.rstdf = _layer_norm(X, cache.top, mean_w)  # (N,)
        cache.Wr, cr = _fold(P["wte"].T, P["lnf_g"], P.get("lnf_b"), None, None)  # (C, V), (V,)
        logits = cache.top @ cache.Wr  # (N, V)
        if cr is not None:
            logits += cr
        pool.give(X, branch)
        return logits.reshape(T, B, V), (), cache

    # ---------------------------------------------------------------------- backward
    def backward(self, dlogits: NDArray, cache: Cache) -> tuple[Params, State]:
        """Gradients of every parameter given d loss / d logits (T, B, V); the state's, ().

        Spends the cache: its arrays are overwritten and recycled, so each is backpropagated once."""
        assert isinstance(cache, GPTCache), "a GPT backpropagates its own forward pass"
        cache.spend()
        cfg, P, pool = self.config, self.params, self._pool
        T, B, V = dlogits.shape
        N, C, H, dt = T * B, cfg.hidden, cfg.heads, dlogits.dtype
        mean_w, masks = self._mean_w, cache.masks
        dl = dlogits.reshape(N, V)  # (N, V)
        grads: Params = {}

        # readout: logits = xhatf Wr + cr, Wr = diag(lnf_g) wte^T
        dWr = cache.top.T @ dl  # (C, V)
        dcr = dl.sum(axis=0) if cfg.bias else None  # (V,)
        dX = pool.take((N, C), dt)  # (N, C) d loss / d the residual stream
        np.matmul(dl, cache.Wr.T, out=dX)
        dWte_T, grads["lnf_g"], db, _ = _unfold(dWr, dcr, P["wte"].T, P["lnf_g"], P.get("lnf_b"), None)  # (C, V), (C,)
        if db is not None:
            grads["lnf_b"] = db
        _layer_norm_backward(dX, cache.top, cache.rstdf, mean_w)

        dbranch = pool.take((N, C), dt)  # (N, C) d loss / d a residual branch (after its dropout)
        dxhat = pool.take((N, C), dt)  # (N, C) d loss / d a LayerNorm's output, then its input
        dqkv = pool.take((N, 3 * C), dt)  # (N, 3C)
        dq, dk, dv = _heads(dqkv, T, B, H, 3)  # (B, H, T, D) views
        dY = pool.take((N, C), dt)  # (N, C)
        for i in reversed(range(cfg.layers)):
            bc = cache.layers[i]
            # MLP: X += dropout(G Wproj + bproj)
            d_out = np.multiply(dX, masks.mlp_out[i], out=dbranch) if masks is not None else dX  # (N, C)
            grads[f"Wproj{i}"] = bc.G.T @ d_out  # (4C, C)
            if cfg.bias:
                grads[f"bproj{i}"] = d_out.sum(axis=0)  # (C,)
            dU = pool.take((N, 4 * C), dt)  # (N, 4C) d loss / d G, then d loss / d U
            np.matmul(d_out, P[f"Wproj{i}"].T, out=dU)
            gelu_backward(bc.U, bc.Phi, dU, scratch=bc.G)
            dW2 = bc.xhat2.T @ dU  # (C, 4C)
            dc2 = dU.sum(axis=0) if cfg.bias else None  # (4C,)
            np.matmul(dU, bc.W2.T, out=dxhat)
            dW, dg, db, dc = _unfold(
                dW2, dc2, P[f"Wfc{i}"], P[f"ln2_g{i}"], P.get(f"ln2_b{i}"), None
            )  # (C, 4C), (C,)..
            grads[f"Wfc{i}"], grads[f"ln2_g{i}"] = dW, dg
            if cfg.bias:
                grads[f"ln2_b{i}"], grads[f"bfc{i}"] = db, dc  # type: ignore[assignment]
            _layer_norm_backward(dxhat, bc.xhat2, bc.rstd2, mean_w)
            dX += dxhat
            pool.give(dU, bc.U, bc.Phi, bc.G, bc.W2)

            # attention: X += dropout(Y Wo + bo)
            d_out = np.multiply(dX, masks.attn_out[i], out=dbranch) if masks is not None else dX  # (N, C)
            grads[f"Wo{i}"] = bc.Y.T @ d_out  # (C, C)
            if cfg.bias:
                grads[f"bo{i}"] = d_out.sum(axis=0)  # (C,)
            np.matmul(d_out, P[f"Wo{i}"].T, out=dY)
            dYh = _heads(dY, T, B, H, 1)[0]  # (B, H, T, D)
            q, k, v = _heads(bc.qkv, T, B, H, 3)  # (B, H, T, D)
            dA = pool.take((B, H, T, T), dt)  # (B, H, T, T) d loss / d A, then d loss / d scores
            np.matmul(dYh, v.swapaxes(-1, -2), out=dA)
            np.matmul(bc.Ad.swapaxes(-1, -2), dYh, out=dv)
            if masks is not None:
                dA *= masks.attention[i]
            _softmax_backward(dA, bc.A)
            np.matmul(dA, k, out=dq)
            np.matmul(dA.swapaxes(-1, -2), q, out=dk)
            dW1 = bc.xhat1.T @ dqkv  # (C, 3C)
            dc1 = dqkv.sum(axis=0) if cfg.bias else None  # (3C,)
            np.matmul(dqkv, bc.W1.T, out=dxhat)
            dW, dg, db, dc = _unfold(
                dW1, dc1, P[f"Wqkv{i}"], P[f"ln1_g{i}"], P.get(f"ln1_b{i}"), self._qscale
            )  # (C, 3C)..
            grads[f"Wqkv{i}"], grads[f"ln1_g{i}"] = dW, dg
            if cfg.bias:
                grads[f"ln1_b{i}"], grads[f"bqkv{i}"] = db, dc  # type: ignore[assignment]
            _layer_norm_backward(dxhat, bc.xhat1, bc.rstd1, mean_w)
            dX += dxhat
            pool.give(dA, bc.A, bc.qkv, bc.Y, bc.xhat1, bc.xhat2, bc.W1)
            if bc.Ad is not bc.A:
                pool.give(bc.Ad)

        # embedding: X = dropout(wte[x] + wpe[pos])
        if masks is not None:
            dX *= masks.embedding
        dwpe = np.zeros((cfg.block, C), dt)  # (block, C)
        if cache.pos is None:
            dwpe[:T] = dX.reshape(T, B, C).sum(axis=1)
        else:
            np.add.at(dwpe, cache.pos.reshape(N), dX)
        grads["wpe"] = dwpe
        grads["wte"] = scatter_rows(cache.ids, dX, V) + dWte_T.T  # (V, C) lookup + readout
        pool.give(dX, dbranch, dxhat, dqkv, dY, cache.top)
        return {name: grads[name] for name in P}, ()

    # --------------------------------------------------------------------- inference
    def stepper(self) -> Stepper:
        """One-position-at-a-time inference on a frozen copy of the current weights."""
        return Stepper(self)

    def attention(self, ids: NDArray) -> NDArray:
        """(L, heads, n, n): every head's attention probabilities over `ids` (n,), n <= block, read
        as one fresh context; row t is how position t spreads its attention over positions 0..t."""
        return self.stepper().read_recorded(np.asarray(ids))[0]

    def activations(self, ids: NDArray) -> dict[str, NDArray]:
        """{"residual": (L, n, C)}: the residual stream after each block at every character of ids
        (n,), each read in the context generation gives it (`context_windows`: all of a text of up
        to `block` characters is one context)."""
        ids = np.asarray(ids)
        stepper = self.stepper()
        out = np.empty((self.config.layers, len(ids), self.config.hidden), self.config.dtype)  # (L, n, C)
        for start, stop, first in self.score_windows(len(ids)) if len(ids) else ():
            out[:, first:stop] = stepper.read_recorded(ids[start:stop])[1][:, first - start :]
        return {"residual": out}

    def score_windows(self, n: int) -> list[tuple[int, int, int]]:
        """How evaluation reads a text of n positions: the windows of `context_windows`, each read
        as a fresh context, so that every position is scored with the context generation gives it."""
        return context_windows(n, self.config.block)


def _is_bias(name: str) -> bool:
    """A parameter that exists only with bias=True."""
    return name.startswith(("ln1_b", "ln2_b", "lnf_b", "bqkv", "bo", "bfc", "bproj"))


# ------------------------------------------------------------------------------- generation
def context_length(i: int, block: int) -> int:
    """How many characters (ending with character i itself) the model reads when it predicts the
    character after character i of a text read from a fresh start (the cache rule)."""
    if i < block:
        return i + 1
    keep = block // 2
    return keep + 1 + (i - block) % (block - keep)


def context_windows(n: int, block: int) -> list[tuple[int, int, int]]:
    """The cache rule as windows, for scoring n positions with batched forward passes: triples
    (start, stop, first) such that reading ids[start:stop] as a fresh context and keeping the
    predictions at positions first..stop-1 gives, for every position i < n exactly once, the
    prediction generation makes (the context of `context_length(i, block)`)."""
    keep = block // 2
    windows = [(0, min(n, block), 0)]
    start = block - keep
    while start + keep < n:
        windows.append((start, min(n, start + block), start + keep))
        start += block - keep
    return windows


class KVCache:
    """Generation state: per block the keys and values of the positions read so far, and their ids.
    `step` extends it in place (copy() it to branch)."""

    __slots__ = ("K", "V", "ids", "n")

    def __init__(self, config: ModelConfig, batch: int):
        L, H, D, block = config.layers, config.heads, head_size(config), config.block
        self.K = [np.zeros((batch, H, block, D), config.dtype) for _ in range(L)]  # (B, H, block, D) per block
        self.V = [np.zeros((batch, H, block, D), config.dtype) for _ in range(L)]  # (B, H, block, D) per block
        self.ids = np.zeros((batch, block), np.int64)  # (B, block) the characters at the positions held
        self.n = 0  # positions held, the same for every stream

    def copy(self) -> KVCache:
        out = KVCache.__new__(KVCache)
        out.K, out.V = [k.copy() for k in self.K], [v.copy() for v in self.V]
        out.ids, out.n = self.ids.copy(), self.n
        return out


class _BlockWeights:
    """One block's weights as generation uses them (LayerNorms folded, q columns scaled): a copy."""

    __slots__ = ("W1", "c1", "Wo", "bo", "W2", "c2", "Wproj", "bproj")

    def __init__(self, P: Params, i: int, bias: bool, qscale: NDArray):
        self.W1, self.c1 = _fold(
            P[f"Wqkv{i}"], P[f"ln1_g{i}"], P.get(f"ln1_b{i}"), P.get(f"bqkv{i}"), qscale
        )  # (C, 3C)
        self.Wo = P[f"Wo{i}"].copy()  # (C, C)
        self.bo = P[f"bo{i}"].copy() if bias else None  # (C,)
        self.W2, self.c2 = _fold(P[f"Wfc{i}"], P[f"ln2_g{i}"], P.get(f"ln2_b{i}"), P.get(f"bfc{i}"), None)  # (C, 4C)
        self.Wproj = P[f"Wproj{i}"].copy()  # (4C, C)
        self.bproj = P[f"bproj{i}"].copy() if bias else None  # (C,)


class Stepper:
    """Generation with a key/value cache: `step(ids, state)` reads one more position of B streams;
    `prime` reads a text; `stream` one stream a character at a time. Holds its own copy of the
    weights (LayerNorm gains and biases folded in), so training may go on changing the model."""

    def __init__(self, model: CharGPT):
        cfg, P = model.config, model.params
        self.config = cfg
        self._keep = cfg.block // 2
        self._wte, self._wpe = P["wte"].copy(), P["wpe"].copy()
        self._mask = model._mask
        self._mean_w = model._mean_w
        self._blocks = [_BlockWeights(P, i, cfg.bias, model._qscale) for i in range(cfg.layers)]
        Wr, cr = _fold(P["wte"].T, P["lnf_g"], P.get("lnf_b"), None, None)
        self._Wr, self._cr = np.ascontiguousarray(Wr), cr  # (C, V), (V,) or None

    def initial_state(self, batch: int = 1) -> KVCache:
        return KVCache(self.config, batch)

    def _read(self, ids: NDArray, cache: KVCache, record: list[list[NDArray]] | None = None) -> NDArray:
        """Read ids (m, B) at positions n..n+m-1 (n + m <= block) into the cache; the logits (B, V)
        after the last. With `record`, append each block's attention (B, H, m, n+m) and output (m, B, C)."""
        cfg = self.config
        m, B = ids.shape
        n = cache.n
        C, H, M, dt = cfg.hidden, cfg.heads, m * B, cfg.dtype
        X = np.take(self._wte, ids.reshape(M), axis=0)  # (M, C) rows time-major
        X.reshape(m, B, C)[...] += self._wpe[n : n + m, None, :]
        xhat = np.empty((M, C), dt)  # (M, C)
        qkv = np.empty((M, 3 * C), dt)  # (M, 3C)
        Y = np.empty((M, C), dt)  # (M, C)
        U = np.empty((M, 4 * C), dt)  # (M, 4C)
        Phi = np.empty((M, 4 * C), dt)  # (M, 4C)
        G = np.empty((M, 4 * C), dt)  # (M, 4C)
        mask = self._mask[n : n + m, : n + m]  # (m, n+m)
        for i, w in enumerate(self._blocks):
            _layer_norm(X, xhat, self._mean_w)
            np.matmul(xhat, w.W1, out=qkv)
            if w.c1 is not None:
                qkv += w.c1
            q, k, v = _heads(qkv, m, B, H, 3)  # (B, H, m, D)
            Kl, Vl = cache.K[i], cache.V[i]
            Kl[:, :, n : n + m] = k
            Vl[:, :, n : n + m] = v
            A = _attention_probs(q, Kl[:, :, : n + m], mask, out=np.empty((B, H, m, n + m), dt))  # (B, H, m, n+m)
            np.matmul(A, Vl[:, :, : n + m], out=_heads(Y, m, B, H, 1)[0])
            X += Y @ w.Wo if w.bo is None else Y @ w.Wo + w.bo
            _layer_norm(X, xhat, self._mean_w)
            np.matmul(xhat, w.W2, out=U)
            if w.c2 is not None:
                U += w.c2
            gelu_forward(U, Phi, G)
            X += G @ w.Wproj if w.bproj is None else G @ w.Wproj + w.bproj
            if record is not None:
                record[0].append(A)
                record[1].append(X.reshape(m, B, C).copy())
        cache.ids[:, n : n + m] = ids.T
        cache.n = n + m
        last = X.reshape(m, B, C)[-1]  # (B, C)
        zhat = np.empty_like(last)
        _layer_norm(last, zhat, self._mean_w)
        logits = zhat @ self._Wr  # (B, V)
        if self._cr is not None:
            logits += self._cr
        return logits

    def _recrop(self, cache: KVCache) -> None:
        """The cache is full: keep its last block // 2 characters, read again from position 0."""
        kept = cache.ids[:, cache.n - self._keep :].T.copy()  # (keep, B)
        cache.n = 0
        if len(kept):
            self._read(kept, cache)

    def advance(self, ids: NDArray, cache: KVCache) -> NDArray | None:
        """Read ids (m, B) one position after another (in bulk where the cache has room), applying
        the rule when the cache is full; the logits (B, V) after the last, None when m = 0."""
        V, block = self.config.vocab_size, self.config.block
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= V):
            raise IndexError(f"character ids must be in [0, {V}), got {ids.min()}..{ids.max()}")
        logits = None
        done, m = 0, ids.shape[0]
        while done < m:
            if cache.n == block:
                self._recrop(cache)
            take = min(m - done, block - cache.n)
            logits = self._read(ids[done : done + take], cache)
            done += take
        return logits

    def step(self, ids: NDArray, state: KVCache) -> tuple[NDArray, KVCache]:
        """Logits (B, V) for the next character after `ids` (B,); the cache, extended in place."""
        logits = self.advance(np.asarray(ids).reshape(1, -1), state)
        assert logits is not None
        return logits, state

    def prime(self, ids: NDArray, state: KVCache | None = None) -> tuple[NDArray | None, KVCache]:
        """Read the characters `ids` (n,) after `state` (default: fresh); the logits (V,) after the
        last (None when `ids` is empty) and the cache."""
        cache = self.initial_state(1) if state is None else state
        logits = self.advance(np.asarray(ids, dtype=np.int64).reshape(-1, 1), cache)
        return (None if logits is None else logits[0]), cache

    def stream(self, state: KVCache | None = None) -> Stream:
        """One stream that reads a character at a time from `state` (default: fresh)."""
        return Stream(self, self.initial_state(1) if state is None else state)

    def read_recorded(self, ids: NDArray) -> tuple[NDArray, NDArray]:
        """Read ids (n,), n <= block, as a fresh context: every block's attention (L, H, n, n) and
        output (L, n, C)."""
        n = len(ids)
        if not 1 <= n <= self.config.block:
            raise ValueError(f"the inside view reads 1 to {self.config.block} characters, got {n}")
        record: list[list[NDArray]] = [[], []]
        self._read(np.asarray(ids, dtype=np.int64).reshape(n, 1), self.initial_state(1), record)
        return np.stack([A[0] for A in record[0]]), np.stack([X[:, 0] for X in record[1]])


class Stream:
    """A single stream for generation: `feed(id)` reads one character (one position: each block
    projects one row and attends over the cached keys and values) and returns the logits for the
    next. The same maths as Stepper.step with a batch of one, with every intermediate in a buffer
    allocated once."""

    def __init__(self, stepper: Stepper, state: KVCache):
        cfg = stepper.config
        if state.ids.shape[0] != 1:
            raise ValueError("a stream reads one text: its state must hold a batch of one")
        C, H, D, dt = cfg.hidden, cfg.heads, head_size(cfg), cfg.dtype
        self._st, self._cache = stepper, state
        self._x = np.empty(C, dt)  # (C,) the residual stream
        self._a = np.empty(C, dt)  # (C,) a LayerNorm's output
        self._qkv = np.empty(3 * C, dt)  # (3C,)
        self._q = self._qkv[:C].reshape(H, 1, D)  # (H, 1, D) views into qkv
        self._k = self._qkv[C : 2 * C].reshape(H, D)  # (H, D)
        self._v = self._qkv[2 * C :].reshape(H, D)  # (H, D)
        self._s = np.empty((H, 1, cfg.block), dt)  # (H, 1, block) scores, then probabilities
        self._y = np.empty(C, dt)  # (C,) the heads' outputs side by side
        self._yh = self._y.reshape(H, 1, D)  # (H, 1, D) a view of y per head
        self._o = np.empty(C, dt)  # (C,) a residual branch
        self._u = np.empty(4 * C, dt)  # (4C,) MLP pre-activation
        self._phi = np.empty(4 * C, dt)  # (4C,) Phi(u)
        self._g = np.empty(4 * C, dt)  # (4C,) GELU(u)
        self._logits = np.empty(cfg.vocab_size, dt)  # (V,)
        self._lo = math.sqrt(float(np.finfo(dt).tiny))
        self._C = C
        self._fast = dt == "float32"  # the float32 cdf, without its own errstate (feed sets one)

    def _norm(self, x: NDArray, out: NDArray) -> NDArray:
        """out = LN(x) for one row (C,): _layer_norm's maths in four NumPy calls."""
        mean = float(np.add.reduce(x)) / self._C
        np.subtract(x, mean, out=out)
        var = float(np.dot(out, out)) / self._C
        out *= 1.0 / math.sqrt(var + LN_EPS)
        return out

    def feed(self, char_id: int) -> NDArray:
        """The logits (V,) after reading character `char_id`. The array is reused: read it (or
        copy it) before the next call."""
        st, cache = self._st, self._cache
        if cache.n == st.config.block:
            st._recrop(cache)
        n = cache.n
        x, a, y, o, u, phi, g = self._x, self._a, self._y, self._o, self._u, self._phi, self._g
        dot, matmul, exp, norm = np.dot, np.matmul, np.exp, self._norm
        np.add(st._wte[char_id], st._wpe[n], out=x)
        with np.errstate(over="ignore", invalid="ignore"):
            for i, w in enumerate(st._blocks):
                dot(norm(x, a), w.W1, out=self._qkv)
                if w.c1 is not None:
                    self._qkv += w.c1
                Kl, Vl = cache.K[i][0], cache.V[i][0]  # (H, block, D)
                Kl[:, n] = self._k
                Vl[:, n] = self._v
                s = self._s[:, :, : n + 1]  # (H, 1, n+1) every position so far is visible
                matmul(self._q, Kl[:, : n + 1].transpose(0, 2, 1), out=s)
                exp(s, out=s)
                sums = np.add.reduce(s, axis=2)  # (H, 1)
                # as _attention_probs: exact unless a sum overflows (so does their total) or is tiny
                if not (
                    self._lo <= float(np.minimum.reduce(sums, axis=None))
                    and math.isfinite(float(np.add.reduce(sums, axis=None)))
                ):
                    matmul(self._q, Kl[:, : n + 1].transpose(0, 2, 1), out=s)
                    s -= s.max(axis=2, keepdims=True)
                    exp(s, out=s)
                    sums = np.add.reduce(s, axis=2)
                s /= sums[:, :, None]
                matmul(s, Vl[:, : n + 1], out=self._yh)
                dot(y, w.Wo, out=o)
                if w.bo is not None:
                    o += w.bo
                x += o
                dot(norm(x, a), w.W2, out=u)
                if w.c2 is not None:
                    u += w.c2
                if self._fast:
                    _cdf_fast(u, phi, g)
                else:
                    np.copyto(phi, normal_cdf_exact(u))
                np.multiply(u, phi, out=g)
                dot(g, w.Wproj, out=o)
                if w.bproj is not None:
                    o += w.bproj
                x += o
        cache.ids[0, n] = char_id
        cache.n = n + 1
        dot(norm(x, a), st._Wr, out=self._logits)
        if st._cr is not None:
            self._logits += st._cr
        return self._logits

    def state(self) -> KVCache:
        """A copy of the cache, as Stepper.step takes it."""
        return self._cache.copy()
