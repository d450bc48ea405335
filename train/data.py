"""Stage 2: tokenise the corpus and hold out whole books for validation.

    python3 train/data.py

Writes train/work/{train,val}.npy (uint16 token streams, books joined by <|endoftext|>) and
train/work/heldout.txt (the held-out books' paragraphs, blank-line separated: the file both
`unmask eval` and `train/eval.py` score).
"""
import json
import os

import numpy as np
from tokenizers import Tokenizer

from common import EOT, WORK, books, split


def main():
    tok = Tokenizer.from_file(os.path.join(WORK, "tokenizer.json"))
    eot = tok.token_to_id(EOT)
    manifest, parts = books()
    held = set(split(manifest))
    streams = {"train": [], "val": []}
    for i, book in enumerate(parts):
        ids = tok.encode(book).ids
        streams["val" if i in held else "train"].extend(ids + [eot])
    for name, ids in streams.items():
        np.save(os.path.join(WORK, f"{name}.npy"), np.array(ids, dtype=np.uint16))
    with open(os.path.join(WORK, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write("\n\n".join(parts[i] for i in sorted(held)) + "\n")
    n_train, n_val = len(streams["train"]), len(streams["val"])
    info = {
        "train_tokens": n_train,
        "val_tokens": n_val,
        "val_fraction": n_val / (n_train + n_val),
        "val_books": [manifest[i]["title"] for i in sorted(held)],
    }
    with open(os.path.join(WORK, "split.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps({k: v for k, v in info.items() if k != "val_books"}), len(held), "held-out books")


if __name__ == "__main__":
    main()
