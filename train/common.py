"""Shared paths, the corpus split and the deterministic hash the engine's `unmask eval` also uses."""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.environ.get("UNMASK_CORPUS", os.path.join(ROOT, "..", "shared", "corpus"))
WORK = os.path.join(HERE, "work")  # tokenizer, token arrays, checkpoints (git-ignored)
OUT = os.path.join(ROOT, "models", "default")
EOT = "<|endoftext|>"
PAD = "<|pad|>"
MASK = "<|mask|>"

MASK64 = (1 << 64) - 1


def splitmix64(x):
    """One step of SplitMix64: the same function as `diffusion::eval::splitmix64` in the engine."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def books():
    """The corpus split into books, in manifest order (books are joined by EOT)."""
    with open(os.path.join(CORPUS, "corpus.txt"), encoding="utf-8") as f:
        text = f.read()
    parts = [p.strip("\n") for p in text.split("\n\n" + EOT + "\n\n")]
    with open(os.path.join(CORPUS, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    assert len(parts) == len(manifest), (len(parts), len(manifest))
    return manifest, parts


def split(manifest):
    """Whole books held out for validation: every 16th book by manifest order, starting at 7."""
    return [i for i in range(len(manifest)) if i % 16 == 7]
