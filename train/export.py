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


def export(ck, log, tokenizer, out):
    """Writes one trained checkpoint as a model folder the engine loads: the masked objective as
    mdlm-owt's layout, the uniform one as udlm-lm1b's (model_type "udlm", time-conditioned)."""
    a = ck["args"]
    objective = a.get("objective", "mdlm")
    uniform = objective == "udlm"
    os.makedirs(out, exist_ok=True)
    tensors = {k: v.to(torch.float16).contiguous() for k, v in ck["model"].items()}
    tmp = os.path.join(out, "model.safetensors.tmp")
    save_file(tensors, tmp, metadata={"format": "pt"})
    os.replace(tmp, os.path.join(out, "model.safetensors"))
    config = {
        "architectures": ["UDLM" if uniform else "MDLM"],
        "model_type": "udlm" if uniform else "mdlm",
        "vocab_size": ck["vocab"],
        "model_length": a["len"],
        "hidden_dim": a["hidden"],
        "cond_dim": a["cond"],
        "n_blocks": a["blocks"],
        "n_heads": a["heads"],
        "dropout": 0.0,
        "time_conditioning": uniform,
        "mask_token_id": ck["mask_id"],
        "torch_dtype": "float16",
    }
    if uniform:
        # UDLMConfig's own keys; a uniform model never uses the mask id as a state
        config.update({"cfg": False, "cfg_num_classes": -1, "diffusion": "uniform"})
    if objective in ("gaussian", "bits"):
        from continuous import BIT_SCALE, GAMMA_0, GAMMA_1

        # our own layout (no public checkpoint exists): the DiT's names plus the input path
        config.update({"architectures": ["Unmask" + objective.capitalize()], "model_type": f"unmask-{objective}",
                       "time_conditioning": True, "conditioning": "neg_log_snr", "self_conditioning": True,
                       "known_text": "clean"})
        if objective == "gaussian":
            config.update({"embed_dim": 16, "schedule": "linear_gamma", "gamma_min": GAMMA_0, "gamma_max": GAMMA_1,
                           "output_prior": True})
        else:
            config.update({"bits": 12, "bit_scale": BIT_SCALE, "schedule": "cosine"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    shutil.copy(tokenizer, os.path.join(out, "tokenizer.json"))
    # the log travels with the weights: report.py plots it, and train.py --init continues it
    with open(os.path.join(out, "training_log.json"), "w") as f:
        json.dump(log, f)
    size = os.path.getsize(os.path.join(out, "model.safetensors"))
    print(f"wrote {out}: model.safetensors {size / 1e6:.1f} MB", flush=True)


def main():
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    ck = torch.load(os.path.join(WORK, "ckpt.pt"), map_location="cpu")
    with open(os.path.join(WORK, "log.json")) as f:
        log = json.load(f)
    export(ck, log, os.path.join(WORK, "tokenizer.json"), args.out)


if __name__ == "__main__":
    main()
