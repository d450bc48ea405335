"""The MDLM DiT (kuleshov-group/mdlm models/dit.py) with the HF checkpoint's tensor names, so the
engine loads our models exactly as it loads the public ones: the masked model as mdlm-owt
(model_type "mdlm", time_conditioning false), the uniform-state model as udlm-lm1b (model_type
"udlm", time-conditioned on σ = −log α_t, which is the only input that differs).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def rotate_half_rope(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class LayerNorm(nn.Module):
    """LayerNorm without bias, eps 1e-5, computed in f32 (MDLM's `LayerNorm`)."""

    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return F.layer_norm(x.float(), [x.shape[-1]]) * self.weight


class Block(nn.Module):
    def __init__(self, h, heads, cond, dropout=0.0):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.norm1 = LayerNorm(h)
        self.attn_qkv = nn.Linear(h, 3 * h, bias=False)
        self.attn_out = nn.Linear(h, h, bias=False)
        self.norm2 = LayerNorm(h)
        self.mlp = nn.Sequential(nn.Linear(h, 4 * h), nn.GELU(approximate="tanh"), nn.Linear(4 * h, h))
        self.adaLN_modulation = nn.Linear(cond, 6 * h)
        nn.init.zeros_(self.adaLN_modulation.weight)
        nn.init.zeros_(self.adaLN_modulation.bias)

    def forward(self, x, c, cos, sin):
        b, l, h = x.shape
        s1, sc1, g1, s2, sc2, g2 = self.adaLN_modulation(c)[:, None].chunk(6, dim=2)
        y = self.norm1(x) * (1 + sc1) + s1
        q, k, v = self.attn_qkv(y).view(b, l, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        q, k = rotate_half_rope(q, cos, sin), rotate_half_rope(k, cos, sin)
        q, k = q.to(v.dtype), k.to(v.dtype)  # under autocast the f32 rotation would widen q and k only
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, l, h)
        # MDLM's bias_dropout_add_scale: dropout on each branch before its gate
        x = x + g1 * F.dropout(self.attn_out(a), self.dropout, self.training)
        y = self.norm2(x) * (1 + sc2) + s2
        return x + g2 * F.dropout(self.mlp(y), self.dropout, self.training)


class SigmaMap(nn.Module):
    def __init__(self, cond):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(256, cond), nn.SiLU(), nn.Linear(cond, cond))

    def forward(self, sigma):
        half = 128
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=sigma.device) / half)
        args = sigma[:, None].float() * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class OutputLayer(nn.Module):
    def __init__(self, h, cond, vocab):
        super().__init__()
        self.norm_final = LayerNorm(h)
        self.linear = nn.Linear(h, vocab)
        self.adaLN_modulation = nn.Linear(cond, 2 * h)
        nn.init.zeros_(self.adaLN_modulation.weight)
        nn.init.zeros_(self.adaLN_modulation.bias)

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c)[:, None].chunk(2, dim=2)
        return self.linear(self.norm_final(x) * (1 + scale) + shift)


class Rotary(nn.Module):
    def __init__(self, hd):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd)))


class Backbone(nn.Module):
    def __init__(self, vocab, h, blocks, heads, cond, time_conditioning=False, dropout=0.0):
        super().__init__()
        self.time_conditioning = time_conditioning
        self.vocab_embed = nn.Module()
        self.vocab_embed.embedding = nn.Parameter(torch.empty(vocab, h))
        nn.init.kaiming_uniform_(self.vocab_embed.embedding, a=math.sqrt(5))
        self.sigma_map = SigmaMap(cond)
        self.rotary_emb = Rotary(h // heads)
        self.blocks = nn.ModuleList(Block(h, heads, cond, dropout) for _ in range(blocks))
        self.output_layer = OutputLayer(h, cond, vocab)

    def forward(self, ids, sigma=None):
        b, l = ids.shape
        if not self.time_conditioning or sigma is None:
            # time_conditioning false: sigma is zeroed, as Diffusion._process_sigma does
            sigma = torch.zeros(b, device=ids.device)
        c = F.silu(self.sigma_map(sigma))
        ang = torch.outer(torch.arange(l, dtype=torch.float32, device=ids.device), self.rotary_emb.inv_freq)
        cos, sin = ang.cos()[None, None], ang.sin()[None, None]
        x = self.vocab_embed.embedding[ids]
        for blk in self.blocks:
            x = blk(x, c, cos, sin)
        return self.output_layer(x, c)


class MDLM(nn.Module):
    """Also the uniform-state model: the same backbone with `time_conditioning=True`."""

    def __init__(self, vocab, h, blocks, heads, cond, time_conditioning=False, dropout=0.0):
        super().__init__()
        self.backbone = Backbone(vocab, h, blocks, heads, cond, time_conditioning, dropout)

    def forward(self, ids, sigma=None):
        return self.backbone(ids, sigma)


def subs_log_probs(logits, ids, mask_id):
    """MDLM's subs parameterisation for the masked rows: the mask can never be the clean token."""
    logits = logits.float()
    logits[..., mask_id] = -1e6
    return logits.log_softmax(-1)
