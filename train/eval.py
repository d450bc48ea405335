"""Stage 5: the PyTorch side of the evaluation, on exactly the tokens and masks `unmask eval`
uses (same paragraphs, chunks, SplitMix64 masks and times; see src/diffusion/eval.rs), with the
exported F16 weights. Also a unigram baseline scored the same way.

    python3 train/eval.py [--text train/work/heldout.txt] [--mask-rate 0.15] [--seed 0]

Prints one JSON line per model: the trained model (torch) and the unigram baseline.
"""
import argparse
import json
import math
import os

import numpy as np
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

from common import OUT, WORK, splitmix64
from model import MDLM

EPS = 1e-3
TWO64 = float(2**64)


def hash3(seed, a, b):
    return splitmix64(splitmix64(splitmix64(seed) ^ a) ^ b)


def chunks_of(text, tok, room):
    # any newline convention, as src/diffusion/eval.rs reads it
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    out = []
    for p in paragraphs:
        ids = tok.encode(p).ids
        out.extend(ids[i : i + room] for i in range(0, len(ids), room))
    return paragraphs, out


def masks(seed, chunks, rate):
    k = len(chunks)
    u0 = hash3(seed, k, 0) / TWO64
    acc, obj = [], []
    for c, ch in enumerate(chunks):
        n = len(ch)
        m = min(max(int(math.floor(rate * n + 0.5)), 1), n)
        order = sorted((hash3(seed, c, 2 * i), i) for i in range(n))
        acc.append(sorted(i for _, i in order[:m]))
        t = EPS + (1 - EPS) * ((u0 + c / k) % 1.0)
        obj.append((t, [i for i in range(n) if hash3(seed, c, 2 * i + 1) / TWO64 < t]))
    return acc, obj


def score(logprob_fn, chunks, acc, obj):
    tokens = sum(len(c) for c in chunks)
    correct = masked = 0
    ce = nelbo = 0.0
    for c, ch in enumerate(chunks):
        lp = logprob_fn(ch, acc[c])
        for j, i in enumerate(acc[c]):
            ce -= lp[j, ch[i]].item()
            correct += int(lp[j].argmax().item() == ch[i])
        masked += len(acc[c])
        t, rows = obj[c]
        if rows:
            lp = logprob_fn(ch, rows)
            nelbo += sum(-lp[j, ch[i]].item() for j, i in enumerate(rows)) / t
    return {"tokens": tokens, "masked": masked, "accuracy": correct / masked, "masked_ce": ce / masked,
            "nelbo_per_token": nelbo / tokens, "ppl_bound": math.exp(nelbo / tokens), "nelbo_sum": nelbo}


def load_exported(model_dir):
    """The exported model as the engine runs it: config, tokenizer, the MDLM with its F16
    weights in f32, and the tokens the engine may propose (never the special ones)."""
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    vocab = cfg["vocab_size"]
    allowed = torch.ones(vocab, dtype=torch.bool)
    # a DreamOn-trained model names id 1 `<|expand|>` instead of `<|pad|>`
    for t in ["<|endoftext|>", "<|pad|>", "<|expand|>", "<|mask|>"]:
        if tok.token_to_id(t) is not None:
            allowed[tok.token_to_id(t)] = False
    model = MDLM(vocab, cfg["hidden_dim"], cfg["n_blocks"], cfg["n_heads"], cfg["cond_dim"])
    state = {k: v.float() for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()}
    model.load_state_dict(state)
    model.eval()
    return cfg, tok, model, allowed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", default=os.path.join(WORK, "heldout.txt"))
    ap.add_argument("--model", default=OUT)
    ap.add_argument("--mask-rate", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg, tok, model, allowed = load_exported(args.model)
    vocab, mask_id = cfg["vocab_size"], cfg["mask_token_id"]
    eot = tok.token_to_id("<|endoftext|>")
    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    paragraphs, chunks = chunks_of(text, tok, cfg["model_length"] - 2)
    acc, obj = masks(args.seed, chunks, args.mask_rate)

    def model_lp(ch, rows):
        x = torch.tensor([[eot] + ch + [eot]])
        for i in rows:
            x[0, i + 1] = mask_id
        with torch.no_grad():
            logits = model(x)[0, [i + 1 for i in rows]].double()
        logits[:, ~allowed] = -math.inf
        return logits.log_softmax(-1)

    r = score(model_lp, chunks, acc, obj)
    r.update({"model": "default (torch, f16 weights)", "paragraphs": len(paragraphs), "chunks": len(chunks), "seed": args.seed, "mask_rate": args.mask_rate})
    print(json.dumps(r), flush=True)

    train = np.load(os.path.join(WORK, "train.npy"))
    counts = np.bincount(train, minlength=vocab).astype(np.float64) + 1.0  # add-one smoothing
    counts[~allowed.numpy()] = 0.0
    with np.errstate(divide="ignore"):  # the suppressed specials get log 0 = −inf
        uni = torch.tensor(np.log(counts / counts.sum()))

    def unigram_lp(ch, rows):
        return uni[None].expand(len(rows), -1)

    u = score(unigram_lp, chunks, acc, obj)
    u.update({"model": "unigram baseline (training-set frequencies, add-one)", "seed": args.seed, "mask_rate": args.mask_rate})
    print(json.dumps(u), flush=True)


if __name__ == "__main__":
    main()
