#!/usr/bin/env python3
"""PyTorch baseline for `unmask bench`: the same MDLM-OWT-shaped DiT forward (12 blocks x 768,
12 heads, 50258 vocabulary, random f32 weights, head over every position), timed the same way
(one warm-up, median of N). Run it on the same machine, right after `unmask bench`:

    python3 bench/torch_mdlm.py --lengths 128,512 --iters 5 [--threads 2]

torch is not a dependency of the engine or its tests; this script exits with a message if it is
missing. The model follows kuleshov-group/mdlm models/dit.py (adaLN computed, not folded; SDPA
attention; rotate-half RoPE; GELU-tanh), so it does slightly more work than the folded engine
(the adaLN projections are ~0.1% of the FLOPs).
"""
import argparse
import json
import math
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("torch is not installed: pip install torch (CPU wheels suffice)", file=sys.stderr)
    sys.exit(2)

V, H, BLOCKS, HEADS, COND = 50258, 768, 12, 12, 128


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.Parameter(torch.ones(H))
        self.norm2 = nn.Parameter(torch.ones(H))
        self.qkv = nn.Linear(H, 3 * H, bias=False)
        self.out = nn.Linear(H, H, bias=False)
        self.mlp = nn.Sequential(nn.Linear(H, 4 * H), nn.GELU(approximate="tanh"), nn.Linear(4 * H, H))
        self.ada = nn.Linear(COND, 6 * H)

    def forward(self, x, c, cos, sin):
        L = x.shape[1]
        s1, sc1, g1, s2, sc2, g2 = self.ada(c)[:, None].chunk(6, dim=2)
        h = F.layer_norm(x, [H]) * self.norm1 * (1 + sc1) + s1
        q, k, v = self.qkv(h).view(1, L, 3, HEADS, H // HEADS).permute(2, 0, 3, 1, 4)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(1, L, H)
        x = x + g1 * self.out(a)
        h = F.layer_norm(x, [H]) * self.norm2 * (1 + sc2) + s2
        return x + g2 * self.mlp(h)


class DiT(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Parameter(torch.randn(V, H) * 0.02)
        self.sigma = nn.Sequential(nn.Linear(256, COND), nn.SiLU(), nn.Linear(COND, COND))
        self.blocks = nn.ModuleList(Block() for _ in range(BLOCKS))
        self.norm_final = nn.Parameter(torch.ones(H))
        self.final_ada = nn.Linear(COND, 2 * H)
        self.linear = nn.Linear(H, V)
        hd = H // HEADS
        self.inv_freq = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))

    def forward(self, ids):
        L = ids.shape[1]
        half = 128
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        t = torch.zeros(1, 1) * freqs  # time_conditioning false: sigma = 0
        c = F.silu(self.sigma(torch.cat([torch.cos(t), torch.sin(t)], dim=-1)))
        ang = torch.outer(torch.arange(L, dtype=torch.float32), self.inv_freq)
        cos, sin = ang.cos()[None, None], ang.sin()[None, None]
        x = self.embed[ids]
        for b in self.blocks:
            x = b(x, c, cos, sin)
        shift, scale = self.final_ada(c)[:, None].chunk(2, dim=2)
        return self.linear(F.layer_norm(x, [H]) * self.norm_final * (1 + scale) + shift)


def flops(L):
    per_block = 2 * L * H * (3 * H + H + 4 * H + 4 * H) + 4 * L * L * H
    return BLOCKS * per_block + 2 * L * H * V


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", default="128,512")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = DiT().eval()
    print(f"model: MDLM-OWT shape, torch {torch.__version__}, {torch.get_num_threads()} threads, f32", file=sys.stderr)
    with torch.inference_mode():
        for L in (int(x) for x in args.lengths.split(",")):
            ids = torch.randint(0, V, (1, L))
            model(ids)  # warm-up
            times = []
            for _ in range(args.iters):
                t0 = time.perf_counter()
                model(ids)
                times.append((time.perf_counter() - t0) * 1e3)
            ms = statistics.median(times)
            print(json.dumps({"model": "mdlm-owt-shape", "backend": "torch", "len": L, "iters": len(times),
                              "ms_median": ms, "ms_min": min(times), "gflop": flops(L) / 1e9,
                              "gflops_per_s": flops(L) / 1e9 / (ms / 1e3)}))


if __name__ == "__main__":
    main()
