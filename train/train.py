"""Stage 3: train the default model with the MDLM continuous-time objective.

    python3 train/train.py [--minutes 55] [--hidden 256 --blocks 6 --heads 4 --cond 128 --len 128]

Loglinear schedule (mask probability t), subs parameterisation, NELBO weight 1/t, low-discrepancy
t over the batch, AdamW with linear warm-up and cosine decay, seeded. The run stops at the time
budget: the step count is planned from the measured speed of the first steps. Every step uses one
canvas length drawn from {32, 64, 128}, so the model also sees the short canvases infilling uses.
Writes train/work/ckpt.pt and train/work/log.json.
"""
import argparse
import json
import math
import os
import platform
import time

import numpy as np
import torch

from common import WORK
from model import MDLM, subs_log_probs

EPS = 1e-3


def batch(stream, rng, length, rows, eot):
    """`rows` windows of length−2 tokens framed by <|endoftext|> at both ends (as MDLM-OWT)."""
    starts = rng.integers(0, len(stream) - length, size=rows)
    body = np.stack([stream[s : s + length - 2] for s in starts]).astype(np.int64)
    frame = np.full((rows, 1), eot, dtype=np.int64)
    return torch.from_numpy(np.concatenate([frame, body, frame], axis=1))


def loss_fn(model, x0, mask_id, gen):
    """MDLM NELBO per token: Σ_masked −log p(x0) / t, low-discrepancy t across the batch."""
    b, l = x0.shape
    u0 = torch.rand(1, generator=gen)
    t = (u0 + torch.arange(b) / b) % 1.0
    t = (1 - EPS) * t + EPS
    masked = torch.rand(b, l, generator=gen) < t[:, None]
    masked[:, 0] = masked[:, -1] = False  # the frame is never noised (the engine never masks it)
    xt = torch.where(masked, torch.full_like(x0, mask_id), x0)
    logp = subs_log_probs(model(xt), xt, mask_id)
    nll = -logp.gather(-1, x0[..., None])[..., 0]
    return ((nll * masked) / t[:, None]).sum() / (b * (l - 2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=55)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--cond", type=int, default=128)
    ap.add_argument("--len", type=int, default=128)
    ap.add_argument("--tokens-per-step", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(WORK, "tokenizer.json"))
    vocab = tok.get_vocab_size()
    mask_id, eot = vocab - 1, tok.token_to_id("<|endoftext|>")
    train = np.load(os.path.join(WORK, "train.npy"))
    val = np.load(os.path.join(WORK, "val.npy"))
    model = MDLM(vocab, args.hidden, args.blocks, args.heads, args.cond)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params / 1e6:.2f} M parameters", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98))
    lengths = [32, 64, args.len]
    val_rng = np.random.default_rng(1234)
    val_batches = [batch(val, val_rng, args.len, 16, eot) for _ in range(8)]

    def evaluate():
        model.eval()
        g = torch.Generator().manual_seed(99)
        with torch.no_grad():
            v = float(np.mean([loss_fn(model, xb, mask_id, g).item() for xb in val_batches]))
        model.train()
        return v

    log = {"args": vars(args), "params": n_params, "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}", "train": [], "val": []}
    budget = args.minutes * 60
    start = time.time()
    total_steps = None
    step, tokens = 0, 0
    while True:
        elapsed = time.time() - start
        if total_steps is None and step == 20:
            total_steps = max(step + 1, int(budget / (elapsed / step)))
            print(f"planned {total_steps} steps", flush=True)
        if total_steps is not None and step >= total_steps:
            break
        horizon = total_steps or 10**9
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step, horizon) / horizon)))
        for gr in opt.param_groups:
            gr["lr"] = lr
        length = lengths[rng.integers(len(lengths))]
        xb = batch(train, rng, length, args.tokens_per_step // length, eot)
        loss = loss_fn(model, xb, mask_id, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += xb.numel()
        if step % 10 == 0:
            log["train"].append([step, tokens, loss.item(), time.time() - start])
        if step % 200 == 0 or step == total_steps:
            v = evaluate()
            log["val"].append([step, tokens, v, time.time() - start])
            print(f"step {step}/{total_steps} tokens {tokens} loss {loss.item():.3f} val {v:.3f} lr {lr:.2e} {time.time() - start:.0f}s", flush=True)
            torch.save({"model": model.state_dict(), "args": vars(args), "vocab": vocab, "mask_id": mask_id}, os.path.join(WORK, "ckpt.pt"))
            with open(os.path.join(WORK, "log.json"), "w") as f:
                json.dump(log, f)
    log["wall_s"] = time.time() - start
    log["steps"], log["tokens"] = step, tokens
    log["final_val"] = evaluate()
    torch.save({"model": model.state_dict(), "args": vars(args), "vocab": vocab, "mask_id": mask_id}, os.path.join(WORK, "ckpt.pt"))
    with open(os.path.join(WORK, "log.json"), "w") as f:
        json.dump(log, f)
    print(f"done: {step} steps, {tokens} tokens, {log['wall_s']:.0f}s, final val {log['final_val']:.3f}", flush=True)


if __name__ == "__main__":
    main()
