"""The PyTorch side of `unmask eval --spans` (issue 13): the same span cases, cut by the rule
src/diffusion/spans.rs documents, filled greedily most-confident-first (`top-prob`, one token a
step, the engine's default) with the exported F16 weights, and scored the same way.

    python3 train/spans.py [--text train/work/heldout.txt] [--words 2 | --tokens N] [--count 500] [--seed 0]

Prints one JSON line with the figures `unmask eval --spans --strategy top-prob` prints, so the
two can be compared on the same spans.
"""
import argparse
import json
import math
import os

import torch

from common import OUT, WORK
from eval import hash3, load_exported

MIN_WORDS, MAX_WORDS = 6, 40


def sentences(text):
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for para in text.split("\n\n"):
        cur = []
        for w in para.split():
            cur.append(w)
            if w.rstrip("\"')\u201d\u2019").endswith((".", "!", "?")):
                out.append(" ".join(cur))
                cur = []
        if cur:
            out.append(" ".join(cur))
    return out


def is_word(w):
    return (
        all(c.isalpha() or c in "'-" for c in w)
        and w[:1].isalpha()
        and w[-1:].isalpha()
    )


def pick(text, tok, words, tokens, count, seed, max_tokens):
    """words: a span of that many words; tokens (when set): whole words making that many tokens."""
    ranked = []
    for j, s in enumerate(sentences(text)):
        ws = s.split(" ")
        if MIN_WORDS <= len(ws) <= MAX_WORDS:
            ranked.append((hash3(seed, j, 0), j, ws))
    ranked.sort(key=lambda r: r[0])

    def runs(ws):
        inner = len(ws) - 1
        plain = lambda a, l: all(is_word(w) for w in ws[a : a + l])
        if tokens is None:
            return [(a, words) for a in range(1, max(inner - words + 1, 1)) if plain(a, words)]
        out = []
        for a in range(1, inner):
            for l in range(1, min(tokens, inner - a) + 1):
                if not plain(a, l):
                    break
                n = len(tok.encode(" " + " ".join(ws[a : a + l])).ids)
                if n == tokens:
                    out.append((a, l))
                if n >= tokens:
                    break
        return out

    cases = []
    for _, j, ws in ranked:
        if len(cases) == count:
            break
        rs = runs(ws)
        if not rs:
            continue
        a, l = rs[hash3(seed, j, 1) % len(rs)]
        if len(tok.encode(" ".join(ws)).ids) > max_tokens:
            continue
        left, span, right = " ".join(ws[:a]), " ".join(ws[a : a + l]), " " + " ".join(ws[a + l :])
        cases.append((left, span, right))
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", default=os.path.join(WORK, "heldout.txt"))
    ap.add_argument("--model", default=OUT)
    ap.add_argument("--words", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=None, help="spans of whole words making this many tokens")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg, tok, model, allowed = load_exported(args.model)
    mask_id = cfg["mask_token_id"]
    eot = tok.token_to_id("<|endoftext|>")

    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    cases = pick(text, tok, args.words, args.tokens, args.count, args.seed, cfg["model_length"] - 2)
    exact = tok_ok = word_ok = words = tokens = nfe = 0
    for left, span, right in cases:
        truth = tok.encode(" " + span).ids
        # the known text is tokenised piece by piece, the space before the hole left to it
        x = [eot] + tok.encode(left).ids + [mask_id] * len(truth) + tok.encode(right).ids + [eot]
        start = 1 + len(tok.encode(left).ids)
        holes = list(range(start, start + len(truth)))
        x = torch.tensor([x])
        masked = list(holes)
        while masked:
            with torch.no_grad():
                logits = model(x)[0, masked].double()
            nfe += 1
            logits[:, ~allowed] = -math.inf
            p = logits.softmax(-1)
            best_p, best_id = p.max(-1)
            # the most confident position; ties to the earlier one
            k = max(range(len(masked)), key=lambda i: (best_p[i].item(), -i))
            x[0, masked[k]] = best_id[k]
            masked.pop(k)
        got_ids = [x[0, h].item() for h in holes]
        got = tok.decode(got_ids).split()
        want = span.split(" ")
        exact += got == want
        word_ok += sum(a == b for a, b in zip(want, got))
        words += len(want)
        tok_ok += sum(a == b for a, b in zip(got_ids, truth))
        tokens += len(truth)
    print(json.dumps({
        "model": "default (torch, f16 weights)", "strategy": "top-prob",
        "span_words": None if args.tokens else args.words, "span_tokens": args.tokens,
        "spans": len(cases), "exact": exact / len(cases), "token_accuracy": tok_ok / tokens,
        "word_accuracy": word_ok / words, "nfe_per_hole": nfe / tokens, "hole_tokens": tokens,
        "seed": args.seed,
    }), flush=True)


if __name__ == "__main__":
    main()
