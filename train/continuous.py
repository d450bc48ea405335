"""The continuous families on the MDLM DiT backbone (families-reference §3.6, §4, §5):

- `gaussian`: VP Gaussian noise on learned unit-norm embeddings (d_e = 16), Plaid's linear
  γ(t) = γ0 + (γ1 − γ0)·t with γ0 = −3, γ1 = 6 (α² = sigmoid(−γ), σ² = sigmoid(γ)); the input
  z/√(α²/d_e + σ²) through `input_linear`, logits over the vocabulary with Plaid's output prior
  (α/σ²)·z·Eᵀ, x̂0 = softmax(logits)·E; trained with cross-entropy on x0 (CDCD's score
  interpolation).
- `bits`: Analog Bits, 12 bits per token MSB-first scaled to ±0.5, the cosine schedule
  ᾱ(t) = cos(((t + 2e-4)/(1 + 2.5e-4))·π/2)², 12 per-bit logits trained with the per-bit
  sigmoid cross-entropy (`x_sigmoid_xent`), x̂0 = (2σ(out) − 1)·0.5.

Both: the network is conditioned (adaLN, MDLM's SigmaMap) on −log SNR(t), so both families share
one conditioning input; self-conditioning adds `selfcond_linear(x̂0)` (zero-initialised) with x̂0
from a no-grad first pass on a fraction of the rows (Plaid ¼, Analog Bits ½); known text is never
noised (DiffuSeq's partial noising): half the rows noise only one random span and are scored on
it, the other half noise every body token, so the model learns both infilling and free
generation. Tensor names sit under `backbone.` as in the MDLM layout, so the engine's DiT builder
reads the blocks unchanged.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from model import Block, OutputLayer, Rotary, SigmaMap

GAMMA_0, GAMMA_1 = -3.0, 6.0
BIT_SCALE = 0.5


def gaussian_gamma(t):
    return GAMMA_0 + (GAMMA_1 - GAMMA_0) * t


def cosine_alpha_bar(t):
    return torch.cos(((t + 2e-4) / (1 + 2.5e-4)) * math.pi / 2) ** 2


def to_bits(ids, n):
    shifts = torch.arange(n - 1, -1, -1, device=ids.device)
    return ((ids[..., None] >> shifts) & 1).float()


def from_bits(bits):
    n = bits.shape[-1]
    weights = 2 ** torch.arange(n - 1, -1, -1, device=bits.device)
    return ((bits > 0).long() * weights).sum(-1)


class Continuous(nn.Module):
    def __init__(self, kind, vocab, h, blocks, heads, cond, embed_dim=16, bits=12, dropout=0.0):
        super().__init__()
        assert kind in ("gaussian", "bits")
        self.kind = kind
        self.vocab = vocab
        self.n_bits = bits
        width = embed_dim if kind == "gaussian" else bits
        self.width = width
        bb = nn.Module()
        if kind == "gaussian":
            bb.embedding_matrix = nn.Parameter(torch.randn(vocab, embed_dim))
        bb.input_linear = nn.Linear(width, h)
        bb.selfcond_linear = nn.Linear(width, h, bias=False)
        nn.init.zeros_(bb.selfcond_linear.weight)
        bb.sigma_map = SigmaMap(cond)
        bb.rotary_emb = Rotary(h // heads)
        bb.blocks = nn.ModuleList(Block(h, heads, cond, dropout) for _ in range(blocks))
        bb.output_layer = OutputLayer(h, cond, vocab if kind == "gaussian" else bits)
        self.backbone = bb

    def embeddings(self):
        e = self.backbone.embedding_matrix
        return e / e.norm(dim=-1, keepdim=True)

    def clean(self, ids):
        """x0 of the canvas: unit-norm embeddings, or ±0.5 bits."""
        if self.kind == "gaussian":
            return self.embeddings()[ids]
        return (2 * to_bits(ids, self.n_bits) - 1) * BIT_SCALE

    def levels(self, t):
        """(α, σ, −log SNR) at t, each [b]."""
        if self.kind == "gaussian":
            g = gaussian_gamma(t)
            return torch.sigmoid(-g).sqrt(), torch.sigmoid(g).sqrt(), g
        ab = cosine_alpha_bar(t).clamp(1e-12, 1 - 1e-12)
        return ab.sqrt(), (1 - ab).sqrt(), torch.log((1 - ab) / ab)

    def forward(self, z, x_sc, alpha, sigma, g):
        """Logits ([b, l, V] or [b, l, bits]) for the noisy canvas z [b, l, width]."""
        bb = self.backbone
        b, l, _ = z.shape
        if self.kind == "gaussian":
            x = z / torch.sqrt(alpha**2 / self.width + sigma**2)[:, None, None]
            sc = x_sc * math.sqrt(self.width)
        else:
            x, sc = z, x_sc
        h = bb.input_linear(x) + bb.selfcond_linear(sc)
        c = F.silu(bb.sigma_map(g))
        ang = torch.outer(torch.arange(l, dtype=torch.float32, device=z.device), bb.rotary_emb.inv_freq)
        cos, sin = ang.cos()[None, None], ang.sin()[None, None]
        for blk in bb.blocks:
            h = blk(h, c, cos, sin)
        out = bb.output_layer(h, c).float()
        if self.kind == "gaussian":
            # Plaid's output prior: the Gaussian log-likelihood of z under each unit-norm embedding
            out = out + (alpha / sigma**2)[:, None, None] * (z.float() @ self.embeddings().t())
        return out

    def estimate(self, logits):
        """x̂0 from the logits: softmax·E, or (2σ − 1)·0.5 per bit."""
        if self.kind == "gaussian":
            return logits.softmax(-1) @ self.embeddings()
        return (2 * torch.sigmoid(logits) - 1) * BIT_SCALE

    def token_loss(self, logits, ids):
        """Per-position loss [b, l]: cross-entropy over the vocabulary, or Σ per-bit BCE."""
        if self.kind == "gaussian":
            return F.cross_entropy(logits.transpose(1, 2), ids, reduction="none")
        return F.binary_cross_entropy_with_logits(logits, to_bits(ids, self.n_bits), reduction="none").sum(-1)

    def tokens(self, logits):
        if self.kind == "gaussian":
            return logits.argmax(-1)
        return from_bits(logits).clamp(max=self.vocab - 1)


def unknown_mask(b, l, gen, device, span_rate=0.5):
    """Which positions are noised: a `span_rate` share of the rows one random span (infilling,
    DiffuSeq's partial noising), the others every body token; the frame at both ends never.
    `span_rate` 0 is unconditional training (the sampler then only clamps)."""
    noised = torch.ones(b, l, dtype=torch.bool, device=device)
    span_rows = torch.rand(b, generator=gen, device=device) < span_rate
    body = l - 2
    length = (torch.rand(b, generator=gen, device=device) * (body // 2)).long() + 1
    start = (torch.rand(b, generator=gen, device=device) * (body - length + 1)).long() + 1
    pos = torch.arange(l, device=device)[None]
    in_span = (pos >= start[:, None]) & (pos < (start + length)[:, None])
    noised = torch.where(span_rows[:, None], in_span, noised)
    noised[:, 0] = noised[:, -1] = False
    return noised


def continuous_loss_fn(model, x0, selfcond_rate, gen, span_rate=0.5):
    """One batch's loss per scored token: the clean canvas noised at low-discrepancy t where
    `unknown_mask` says (known positions hold their clean values), self-conditioned on a
    fraction of the rows, the family's x0 loss on the noised positions."""
    b, l = x0.shape
    dev = x0.device
    u0 = torch.rand(1, generator=gen, device=dev)
    t = (u0 + torch.arange(b, device=dev) / b) % 1.0
    alpha, sigma, g = model.levels(t)
    clean = model.clean(x0)
    noised = unknown_mask(b, l, gen, dev, span_rate)
    eps = torch.randn(clean.shape, generator=gen, device=dev)
    z = alpha[:, None, None] * clean + sigma[:, None, None] * eps
    z = torch.where(noised[..., None], z, clean)
    x_sc = torch.zeros_like(clean)
    rows = torch.rand(b, generator=gen, device=dev) < selfcond_rate
    if rows.any():
        with torch.no_grad():
            first = model(z[rows], x_sc[rows], alpha[rows], sigma[rows], g[rows])
            x_sc[rows] = model.estimate(first).to(x_sc.dtype)
    logits = model(z, x_sc, alpha, sigma, g)
    per = model.token_loss(logits, x0)
    return (per * noised).sum() / noised.sum().clamp(min=1)
