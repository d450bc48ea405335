"""Stage 4: export the trained model in Hugging Face layout for the engine.

    python3 train/export.py

Writes models/default/{config.json, model.safetensors (F16), tokenizer.json, training_log.json}.
"""
import json
import os
import shutil

import torch
from safetensors.torch import save_file

from common import OUT, WORK


def main():
    ck = torch.load(os.path.join(WORK, "ckpt.pt"), map_location="cpu")
    a = ck["args"]
    os.makedirs(OUT, exist_ok=True)
    tensors = {k: v.to(torch.float16).contiguous() for k, v in ck["model"].items()}
    save_file(tensors, os.path.join(OUT, "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["MDLM"],
        "model_type": "mdlm",
        "vocab_size": ck["vocab"],
        "model_length": a["len"],
        "hidden_dim": a["hidden"],
        "cond_dim": a["cond"],
        "n_blocks": a["blocks"],
        "n_heads": a["heads"],
        "dropout": 0.0,
        "time_conditioning": False,
        "mask_token_id": ck["mask_id"],
        "torch_dtype": "float16",
    }
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    shutil.copy(os.path.join(WORK, "tokenizer.json"), os.path.join(OUT, "tokenizer.json"))
    # the log travels with the weights: report.py plots it, and train.py --init continues it
    shutil.copy(os.path.join(WORK, "log.json"), os.path.join(OUT, "training_log.json"))
    size = os.path.getsize(os.path.join(OUT, "model.safetensors"))
    print(f"wrote {OUT}: model.safetensors {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
