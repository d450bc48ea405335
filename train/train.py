"""Stage 3: train a model: the masked default (MDLM objective), the uniform-state one (UDLM), or
a continuous one (Gaussian embedding diffusion, Analog Bits: train/continuous.py).

    python3 train/train.py [--objective mdlm|udlm|gaussian|bits] [--minutes 55] [--hidden 256 ...]

`mdlm`: loglinear schedule (mask probability t), subs parameterisation, NELBO weight 1/t.
`gaussian`, `bits`: see continuous.py (self-conditioned on `--selfcond-rate` of the rows: ¼ for
gaussian as Plaid, ½ for bits as Analog Bits; known text never noised on half the rows).
`udlm`: uniform-state noise (a token is kept w.p. α_t = 1 − (1−ε)t, else replaced by a uniform
draw over all N ids, which may redraw it), the model conditioned on σ = −log α_t, trained on the
closed-form continuous-time NELBO (families-reference §1.7, Duo's O(V) form, the scalar terms in
f64 because they cancel at small t). Both: low-discrepancy t over the batch, AdamW with linear
warm-up and cosine decay, seeded. The run stops at the time
budget: warm-up is counted in steps, the cosine decay in elapsed time, so a machine that slows
down mid-run (a build beside it) still ends on the low learning rate. Every step uses one canvas
length drawn from {32, 64, 128}, so the model also sees the short canvases infilling uses.

`--dreamon-rows S` (mdlm) gives a share S of every batch DreamOn's length augmentation (dreamon.py):
holes that grow by `<|expand|>` and shrink by `<|endoftext|>`; the rest keep the plain loss, and
validation stays the plain loss, so the exported best is chosen on fixed-length quality.

`--init DIR` starts from an exported model (DIR/model.safetensors, same shape) instead of random
weights, and carries DIR/training_log.json along as the earlier stage, so the report counts every
token the weights have seen. Writes train/work/ckpt.pt and train/work/log.json; `--export DIR` also writes the exported model
(export.py's files) to DIR each time the validation loss improves, so a run cut short by a time
limit still leaves its best weights (the GPU run, train/gpu.sh). `--device cuda` trains under bf16
autocast.
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
from continuous import Continuous, continuous_loss_fn
from model import MDLM, subs_log_probs

EPS = 1e-3


def batch(stream, rng, length, rows, eot):
    """`rows` windows of length−2 tokens framed by <|endoftext|> at both ends (as MDLM-OWT)."""
    starts = rng.integers(0, len(stream) - length, size=rows)
    body = np.stack([stream[s : s + length - 2] for s in starts]).astype(np.int64)
    frame = np.full((rows, 1), eot, dtype=np.int64)
    return torch.from_numpy(np.concatenate([frame, body, frame], axis=1))


def times(b, gen, device):
    u0 = torch.rand(1, generator=gen, device=device)
    t = (u0 + torch.arange(b, device=device) / b) % 1.0
    return (1 - EPS) * t + EPS


def loss_fn(model, x0, mask_id, gen):
    """MDLM NELBO per token: Σ_masked −log p(x0) / t, low-discrepancy t across the batch."""
    b, l = x0.shape
    t = times(b, gen, x0.device)
    masked = torch.rand(b, l, generator=gen, device=x0.device) < t[:, None]
    masked[:, 0] = masked[:, -1] = False  # the frame is never noised (the engine never masks it)
    xt = torch.where(masked, torch.full_like(x0, mask_id), x0)
    logp = subs_log_probs(model(xt), xt, mask_id)
    nll = -logp.gather(-1, x0[..., None])[..., 0]
    return ((nll * masked) / t[:, None]).sum() / (b * (l - 2))


def uniform_nelbo(logp, x0, z, alpha):
    """The uniform-state continuous-time NELBO per position (families-reference §1.7, Duo's
    `nll_per_token` form): `logp` [b, l, N] the model's log x_θ, `alpha` [b, 1] α_t, with
    α'_t = −(1−ε). The O(V) sum S stays in f32; the per-position scalars are f64, since
    N/x̄_z and N/x̄_θ,z (and 1/c·log c) are ~N/(1−α_t) and cancel when t is small."""
    n = logp.shape[-1]
    a32 = alpha.float()[..., None]
    log_xbar = torch.log(n * a32 * logp.exp() + (1 - a32))  # [b, l, N]
    s = log_xbar.sum(-1, dtype=torch.float64)
    a64 = alpha.double()
    pz = logp.gather(-1, z[..., None])[..., 0].double().exp()
    px0 = logp.gather(-1, x0[..., None])[..., 0].double().exp()
    xbar_theta_z = n * a64 * pz + (1 - a64)
    la = torch.log(xbar_theta_z)
    lb = torch.log(n * a64 * px0 + (1 - a64))
    c = (1 - a64) / (n * a64 + 1 - a64)
    same = x0 == z
    term2 = torch.where(
        same,
        -c * (s - n * la) + (n - 1) * c * torch.log(c),
        -(s - n * la) - n * a64 / (1 - a64) * (lb - la) - torch.log(c) / c,
    )
    xbar_z = torch.where(same, 1 - a64 + n * a64, 1 - a64)
    dalpha = -(1 - EPS)
    return dalpha / (n * a64) * (n / xbar_z - n / xbar_theta_z - term2)


def uniform_loss_fn(model, x0, mask_id, gen):
    """UDLM: noise every body token (uniform over all N ids w.p. 1 − α_t), NELBO per token."""
    b, l = x0.shape
    n = model.backbone.vocab_embed.embedding.shape[0]
    t = times(b, gen, x0.device)
    alpha = (1 - (1 - EPS) * t)[:, None]
    replace = torch.rand(b, l, generator=gen, device=x0.device) < (1 - alpha)
    replace[:, 0] = replace[:, -1] = False  # the frame is never noised, as infilling clamps it
    noise = torch.randint(0, n, (b, l), generator=gen, device=x0.device)
    z = torch.where(replace, noise, x0)
    sigma = -torch.log(alpha[:, 0])
    logp = model(z, sigma).float().log_softmax(-1)
    ell = uniform_nelbo(logp, x0, z, alpha)
    return ell[:, 1:-1].sum().float() / (b * (l - 2))


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
    ap.add_argument("--objective", choices=["mdlm", "udlm", "gaussian", "bits"], default="mdlm")
    ap.add_argument("--selfcond-rate", type=float, help="continuous families: rows self-conditioned (default ¼ gaussian, ½ bits)")
    ap.add_argument("--span-rows", type=float, default=0.5,
                    help="continuous families: rows that noise one span, the rest clean (DiffuSeq's partial noising); 0: unconditional")
    ap.add_argument("--dreamon-rows", type=float, default=0.0,
                    help="mdlm: share of each batch given DreamOn's length augmentation (dreamon.py); >0 renames <|pad|> to <|expand|>")
    ap.add_argument("--max-middle", type=int, default=24, help="DreamOn rows: the longest hole, in tokens")
    ap.add_argument("--max-delete", type=int, default=16, help="DreamOn rows: end tokens appended to a hole are U[0, this)")
    ap.add_argument("--merge-prob", type=float, default=0.5, help="DreamOn rows: the merge probability (DreamOn's merge_prob)")
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--export", help="write the exported model here at each validation improvement")
    ap.add_argument("--work", default=WORK, help="tokenizer.json, train.npy, val.npy; ckpt.pt and log.json go here")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    dev = torch.device(args.device)
    gen = torch.Generator(device=dev).manual_seed(args.seed)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    uniform = args.objective == "udlm"
    continuous = args.objective in ("gaussian", "bits")
    if continuous and args.selfcond_rate is None:
        args.selfcond_rate = 0.25 if args.objective == "gaussian" else 0.5
    if continuous:
        def loss_of(m, x, _mask_id, g):
            return continuous_loss_fn(m, x, args.selfcond_rate, g, args.span_rows)
    else:
        loss_of = uniform_loss_fn if uniform else loss_fn
    work = args.work
    from tokenizers import Tokenizer

    tok_path = os.path.join(work, "tokenizer.json")
    dreamon = args.dreamon_rows > 0
    if dreamon and (uniform or continuous):
        raise SystemExit("--dreamon-rows applies to the masked objective (mdlm) only")
    if dreamon:
        from dreamon import dreamon_batch, dreamon_loss, expand_tokenizer

        # the exported model's tokenizer names the expand token; the work folder's stays as it was
        src, tok_path = tok_path, os.path.join(work, "tokenizer-expand.json")
        expand_id = expand_tokenizer(src, tok_path)
    tok = Tokenizer.from_file(tok_path)
    vocab = tok.get_vocab_size()
    mask_id, eot = vocab - 1, tok.token_to_id("<|endoftext|>")
    train = np.load(os.path.join(work, "train.npy"))
    val = np.load(os.path.join(work, "val.npy"))
    if continuous:
        model = Continuous(args.objective, vocab, args.hidden, args.blocks, args.heads, args.cond, dropout=args.dropout)
    else:
        model = MDLM(vocab, args.hidden, args.blocks, args.heads, args.cond, time_conditioning=uniform, dropout=args.dropout)
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
            # a log exported mid-run (at a validation improvement) has no totals yet: take them
            # from its last logged step
            last = earlier["train"][-1] if earlier.get("train") else [0, 0, 0, 0]
            earlier.setdefault("steps", last[0])
            earlier.setdefault("tokens", last[1])
            earlier.setdefault("wall_s", last[3])
            earlier.setdefault("final_val", earlier["val"][-1][2] if earlier.get("val") else float("nan"))
        print(f"continuing from {args.init}" + (f" ({earlier['tokens']} tokens seen)" if earlier else ""), flush=True)
    model.to(dev)
    print(f"{n_params / 1e6:.2f} M parameters, objective {args.objective}, device {dev}", flush=True)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98), **({"fused": True} if dev.type == "cuda" else {}))
    lengths = [32, 64, args.len]
    val_rng = np.random.default_rng(1234)
    val_rows = 16 if dev.type == "cpu" else 64
    val_batches = [batch(val, val_rng, args.len, val_rows, eot).to(dev) for _ in range(8)]

    def evaluate():
        model.eval()
        g = torch.Generator(device=dev).manual_seed(99)
        with torch.no_grad(), autocast:
            v = float(np.mean([loss_of(model, xb, mask_id, g).item() for xb in val_batches]))
        model.train()
        return v

    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else None
    machine = f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores" + (f", {gpu}" if gpu else "")
    log = {"args": vars(args), "params": n_params, "machine": f"{machine}, torch {torch.__version__}", "train": [], "val": [], "earlier": earlier}
    best = float("inf")

    def save(final=False):
        nonlocal best
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        ck = {"model": state, "args": vars(args), "vocab": vocab, "mask_id": mask_id}
        torch.save(ck, os.path.join(work, "ckpt.pt"))
        with open(os.path.join(work, "log.json"), "w") as f:
            json.dump(log, f)
        v = log["val"][-1][2] if log["val"] else float("inf")
        if args.export and (v < best or final and not os.path.exists(os.path.join(args.export, "model.safetensors"))):
            from export import export

            best = min(best, v)
            log["exported"] = {"step": step, "tokens": tokens, "val": v}
            export(ck, log, tok_path, args.export)
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
        rows = args.tokens_per_step // length
        n_dreamon = int(round(rows * args.dreamon_rows)) if dreamon else 0
        xb = batch(train, rng, length, rows - n_dreamon, eot).to(dev, non_blocking=True)
        with autocast:
            loss = loss_of(model, xb, mask_id, gen) if rows > n_dreamon else torch.zeros((), device=dev)
            if n_dreamon:
                xd, yd = dreamon_batch(train, rng, length, n_dreamon, eot, mask_id, expand_id, args.max_middle,
                                       args.max_delete, args.merge_prob)
                d_loss = dreamon_loss(model, xd.to(dev), yd.to(dev), mask_id)
                loss = loss + d_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += rows * length
        if step % 10 == 0:
            log["train"].append([step, tokens, loss.item(), time.time() - start] + ([d_loss.item()] if n_dreamon else []))
        if step % args.eval_every == 0:
            v = evaluate()
            log["val"].append([step, tokens, v, time.time() - start])
            print(f"step {step} tokens {tokens} loss {loss.item():.3f} val {v:.3f} lr {lr:.2e} {time.time() - start:.0f}s", flush=True)
            save()
    log["wall_s"] = time.time() - start
    log["steps"], log["tokens"] = step, tokens
    log["final_val"] = evaluate()
    log["val"].append([step, tokens, log["final_val"], time.time() - start])
    save(final=True)
    print(f"done: {step} steps, {tokens} tokens, {log['wall_s']:.0f}s, final val {log['final_val']:.3f}", flush=True)


if __name__ == "__main__":
    main()
