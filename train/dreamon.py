"""DreamOn's length augmentation for the masked default model (families-reference §6(e);
DreamOn `src/trainer/sft_expand_dataset.py`), so the engine can grow and shrink holes.

Each augmented row is `[eot] prefix middle suffix [eot]`, the same frame as the plain rows:
- the middle (1 to `max_middle` tokens) gets `eos_count ~ U[0, max_delete)` end tokens appended;
  each is masked and labelled `<|endoftext|>`, which at inference deletes itself and the rest of
  its hole;
- each middle token is masked with probability r ~ U(0, 1);
- scanning the real middle tokens left to right, a pair of adjacent masks is merged with
  probability p: the left one is labelled `<|expand|>` (at inference it becomes two masks) and the
  right one is dropped. DreamOn hides it with the attention mask and recomputes the positions from
  that mask, which for a rotary model is the same as removing it. p is `merge_prob · (1 − masked
  share of the hole)` (DreamOn's `dynamic_inverse`), or `merge_prob` itself on half the rows
  (`use_uniform_merge_prob` 0.5).

The loss is cross-entropy on the masked positions, every label counted once. Two departures from
DreamOn, both measured or reasoned here:
- DreamOn averages the end-token losses on their own, `(Σ non-end + mean end) / (#non-end + 1)`
  (`weight_eos`), against its up to 64 appended end tokens. Applied over a batch of 16–128 of our
  rows that gives all the end tokens the weight of one token: a first run (6.5 M tokens) never put
  `<|endoftext|>` among the top 4 at a hole's last position, so its holes only grew. Our appended
  end tokens are fewer (U[0, 16), against a 1–24-token middle), so they are counted as any label.
- DreamOn weights each row by 1 − r (its `time_reweighting=linear`); we weight every row alike,
  since at inference our holes start fully masked (r = 1), the rows that weight would ignore.

`<|expand|>` is the tokenizer's `<|pad|>` id (1), renamed: the plain model never reads or
predicts it, so its embedding row is free, and the vocabulary keeps its 4096 entries.
"""
import json

import numpy as np
import torch

from model import subs_log_probs

EXPAND = "<|expand|>"


def expand_tokenizer(src, dst, old="<|pad|>"):
    """Writes `src` with the added token `old` renamed to `<|expand|>`; returns its id."""
    with open(src, encoding="utf-8") as f:
        tok = json.load(f)
    hit = [t for t in tok["added_tokens"] if t["content"] in (old, EXPAND)]
    if not hit:
        raise SystemExit(f"{src}: no added token {old!r} to rename to {EXPAND!r}")
    hit[0]["content"] = EXPAND
    vocab = tok["model"].get("vocab", {})
    if old in vocab:
        vocab[EXPAND] = vocab.pop(old)
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    return hit[0]["id"]


def dreamon_batch(stream, rng, length, rows, eot, mask_id, expand_id, max_middle=24, max_delete=16,
                  merge_prob=0.5, uniform_merge=0.5):
    """`rows` augmented rows of exactly `length` tokens: (input ids, labels with −100 where no
    loss is taken), both [rows, length] int64."""
    xs = np.empty((rows, length), dtype=np.int64)
    ys = np.full((rows, length), -100, dtype=np.int64)
    body = length - 2
    for i in range(rows):
        m = int(rng.integers(1, min(max_middle, body) + 1))
        e = min(int(rng.integers(0, max_delete)), body - m)
        r = float(rng.uniform(0.0, 1.0))
        masked = rng.random(m) < r
        inp, lab = [], []
        n_masked = int(masked.sum()) + e
        p = merge_prob if rng.random() < uniform_merge else merge_prob * (1 - n_masked / (m + e))
        a_max = body - (m + e)
        a = int(rng.integers(0, a_max + 1))
        # the middle's own tokens are drawn with the rest below; first decide its shape
        plan = []  # (index into the middle, kind): kind 0 clean, 1 masked, 2 expand (merged pair)
        j = 0
        while j < m:
            if j + 1 < m and masked[j] and masked[j + 1] and rng.random() < p:
                plan.append((j, 2))
                j += 2
            else:
                plan.append((j, 1 if masked[j] else 0))
                j += 1
        kept = len(plan) + e
        s = body - a - kept
        start = int(rng.integers(0, len(stream) - (a + m + s)))
        toks = stream[start : start + a + m + s].astype(np.int64)
        prefix, middle, suffix = toks[:a], toks[a : a + m], toks[a + m :]
        inp = [eot, *prefix.tolist()]
        lab = [-100] * len(inp)
        for j, kind in plan:
            if kind == 0:
                inp.append(int(middle[j]))
                lab.append(-100)
            else:
                inp.append(mask_id)
                lab.append(int(middle[j]) if kind == 1 else expand_id)
        inp += [mask_id] * e
        lab += [eot] * e
        inp += suffix.tolist() + [eot]
        lab += [-100] * (len(suffix) + 1)
        assert len(inp) == length, (len(inp), length)
        xs[i], ys[i] = inp, lab
    return torch.from_numpy(xs), torch.from_numpy(ys)


def dreamon_loss(model, x, y, mask_id):
    """The loss on augmented rows: mean cross-entropy over the labelled positions (module
    docstring)."""
    logp = subs_log_probs(model(x), x, mask_id)
    has = y >= 0
    nll = -logp.gather(-1, y.clamp(min=0)[..., None])[..., 0]
    return (nll * has).sum() / has.sum().clamp(min=1)
