"""Stage 1: train the byte-level BPE on the training books (validation books excluded).

    python3 train/tokenizer.py [--vocab 4096]
    python3 train/tokenizer.py --measure     # the 4096-vs-8192 comparison behind the choice

Writes train/work/tokenizer.json. Deterministic: the same corpus gives the same file.
The special tokens are <|endoftext|> (0), <|pad|> (1) and <|mask|> (the last id), so the mask id is
`vocab_size - 1` as in MDLM.
"""
import argparse
import json
import os

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from common import EOT, MASK, PAD, WORK, books, split


def train_bpe(train_text, vocab):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab - 1,  # the mask is appended last
        special_tokens=[EOT, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = (line for book in train_text for line in book.split("\n") if line.strip())
    tok.train_from_iterator(lines, trainer=trainer)
    tok.add_special_tokens([MASK])
    return tok


def measure(train_text, val_text):
    """Held-out tokens and embedding cost for the two ends of the allowed range."""
    rows = []
    for v in (4096, 8192):
        n = len(train_bpe(train_text, v).encode(val_text).ids)
        rows.append({"vocab": v, "heldout_tokens": n, "chars_per_token": len(val_text) / n, "embed_head_params_at_256": 2 * v * 256})
    with open(os.path.join(WORK, "vocab_choice.json"), "w") as f:
        json.dump(rows, f)
    print(json.dumps(rows))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--measure", action="store_true")
    args = ap.parse_args()
    manifest, parts = books()
    held = set(split(manifest))
    train_text = [p for i, p in enumerate(parts) if i not in held]
    os.makedirs(WORK, exist_ok=True)
    if args.measure:
        measure(train_text, "\n\n".join(parts[i] for i in sorted(held)))
        return
    tok = train_bpe(train_text, args.vocab)
    assert tok.get_vocab_size() == args.vocab, tok.get_vocab_size()
    assert tok.token_to_id(MASK) == args.vocab - 1
    tok.save(os.path.join(WORK, "tokenizer.json"))
    sample = train_text[0][:2000]
    n = len(tok.encode(sample).ids)
    print(f"vocab {tok.get_vocab_size()}, {len(sample) / n:.2f} chars per token on a sample")


if __name__ == "__main__":
    main()
