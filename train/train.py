"""Stage 3: train the default model with the MDLM continuous-time objective.

    python3 train/train.py [--minutes 55] [--hidden 256 --blocks 6 --heads 4 --cond 128 --len 128]

Loglinear schedule (mask probability t), subs parameterisation, NELBO weight 1/t, low-discrepancy
t over the batch, AdamW with linear warm-up and cosine decay, seeded. The run stops at the time
budget: warm-up is counted in steps, the cosine decay in elapsed time, so a machine that slows
down mid-run (a build beside it) still ends on the low learning rate. Every step uses one canvas
length drawn from {32, 64, 128}, so the model also sees the short canvases infilling uses.

`--init DIR` starts from an exported model (DIR/model.safetensors, same shape) instead of random
weights, and carries DIR/training_log.json along as the earlier stage, so the report counts every
token the weights have seen. Writes train/work/ckpt.pt and train/work/log.json.
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
    ap.add_argument("--init", help="an exported model folder to continue from (same shape)")
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
    earlier = None
    if args.init:
        from safetensors.torch import load_file

        weights = {k: v.float() for k, v in load_file(os.path.join(args.init, "model.safetensors")).items()}
        own = model.state_dict()
        wrong = [k for k in own if k not in weights or weights[k].shape != own[k].shape]
        if wrong or len(weights) != len(own):
            raise SystemExit(f"--init {args.init}: model.safetensors does not match --hidden/--blocks/--heads/--cond (first mismatch: {(wrong or sorted(set(weights) - set(own)))[0]})")
        model.load_state_dict(weights)
        log_path = os.path.join(args.init, "training_log.json")
        if os.path.exists(log_path):
            earlier = json.load(open(log_path))
        print(f"continuing from {args.init}" + (f" ({earlier['tokens']} tokens seen)" if earlier else ""), flush=True)
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

    log = {"args": vars(args), "params": n_params, "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}", "train": [], "val": [], "earlier": earlier}
    budget = args.minutes * 60
    start = time.time()
    step, tokens = 0, 0
    while True:
        progress = (time.time() - start) / budget
        if progress >= 1:
            break
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
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
        if step % 200 == 0:
            v = evaluate()
            log["val"].append([step, tokens, v, time.time() - start])
            print(f"step {step} tokens {tokens} loss {loss.item():.3f} val {v:.3f} lr {lr:.2e} {time.time() - start:.0f}s", flush=True)
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
