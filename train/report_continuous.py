"""Stage 6 for the continuous families: write models/{gaussian,bits}/REPORT.md and loss.png from
the training log, `unmask eval` (bound, one-shot accuracy) and `unmask eval --spans` at 8, 32
and 128 steps, and ten fills by the engine (the same ten templates as report.py's, fixed before
any output was seen).

    python3 train/report_continuous.py --name gaussian --eval FILE --spans FILE [--unmask BIN]

`--spans` holds one `unmask eval --spans` JSON line per run (any order).
"""
import argparse
import json
import os
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from report import TEMPLATES  # noqa: E402

WHAT = {
    "gaussian": (
        "Gaussian diffusion on learned token embeddings (Plaid's design at our size, families-reference §3.6)",
        [
            "- VP Gaussian noise on learned unit-norm 16-dimensional embeddings; Plaid's fixed linear γ(t) = −3 + 9t",
            "  (α² = sigmoid(−γ), σ² = sigmoid(γ)); the network sees z/√(α²/16 + σ²) and is conditioned (adaLN) on γ = −log SNR.",
            "- The output is logits over the 4096 ids plus Plaid's output prior (α/σ²)·z·Eᵀ; x̂0 = softmax·E; trained with",
            "  cross-entropy on x0 (CDCD's score interpolation, Plaid's categorical reparameterisation).",
            "- Self-conditioning on a quarter of the rows (a no-grad first pass; `selfcond_linear` zero-initialised).",
        ],
        "x0 cross-entropy per noised token (nats)",
    ),
    "bits": (
        "Analog Bits (Chen, Zhang and Hinton, 2022) for text",
        [
            "- Each id written as 12 bits, most significant first, at ±0.5; VP Gaussian noise on the bits with Analog Bits'",
            "  cosine schedule ᾱ(t) = cos(((t + 2e-4)/(1 + 2.5e-4))·π/2)²; conditioned (adaLN) on γ = −log SNR.",
            "- The head gives 12 per-bit logits, trained with the per-bit sigmoid cross-entropy (`x_sigmoid_xent`);",
            "  x̂0 = (2σ(ℓ) − 1)·0.5. With 4096 = 2¹² ids every bit pattern is a token.",
            "- Self-conditioning on half the rows (Analog Bits' rate).",
        ],
        "Σ per-bit cross-entropy per noised token (nats)",
    ),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True, choices=sorted(WHAT))
    ap.add_argument("--eval", required=True)
    ap.add_argument("--spans", required=True)
    ap.add_argument("--unmask", default="target/release/unmask")
    args = ap.parse_args()
    out_dir = os.path.join("models", args.name)
    log = json.load(open(os.path.join(out_dir, "training_log.json")))
    title, objective, loss_name = WHAT[args.name]
    ev = json.loads(open(args.eval).read().strip().splitlines()[-1])
    spans = [json.loads(l) for l in open(args.spans) if l.strip()]
    spans.sort(key=lambda r: (r["strategy"], r["steps"]))

    tr, va = log["train"], log["val"]
    plt.figure(figsize=(7, 4))
    plt.plot([r[1] / 1e6 for r in tr], [r[2] for r in tr], lw=0.6, alpha=0.6, label="train (batch)")
    plt.plot([r[1] / 1e6 for r in va], [r[2] for r in va], "o-", ms=3, label="held-out books")
    plt.xlabel("tokens seen (M)")
    plt.ylabel(loss_name)
    plt.grid(alpha=0.3)
    plt.legend()
    plt.title(f"{args.name} model")
    plt.tight_layout()
    plt.savefig(os.path.join(out_dir, "loss.png"), dpi=110)

    fills = []
    for t in TEMPLATES:
        out = subprocess.run([args.unmask, "infill", t, "--model", args.name, "--seed", "0", "--backend", "cpu"],
                             capture_output=True, text=True, check=True)
        fills.append((t, out.stdout.strip()))

    a = log["args"]
    size = os.path.getsize(os.path.join(out_dir, "model.safetensors"))
    lines = [
        f"# The `{args.name}` model: {title}",
        "",
        f"Trained by this project beside the default (masked) and uniform-state models, on the same public-domain books,",
        f"tokenizer (4096-entry byte-level BPE) and DiT shape, so the four families of text diffusion can be compared in",
        f"one engine. Bundled in the `unmask` binary and the npm package: `--model {args.name}`, `Unmask.load(\"{args.name}\")`.",
        "It is much weaker than the masked model at this size and budget; the figures below say by how much.",
        "",
        "## Data",
        "Public-domain children's books from `../shared/corpus/`, split by book (`train/data.py`; held-out books in",
        "`train/work/heldout.txt`, the same split as every model here); rows of 128 tokens framed by `<|endoftext|>`.",
        "",
        "## Objective (`train/continuous.py`)",
        *objective,
        "- Known text is never noised (DiffuSeq's partial noising): half the rows noise one random span and are scored on it,",
        "  the other half noise every body token; the frame is never noised. The sampler clamps known positions to their",
        "  clean vectors after every update, which is the same condition the model trained under.",
        "",
        "## Training",
        f"- {a['blocks']} blocks, width {a['hidden']}, {a['heads']} heads, cond {a['cond']}, context {a['len']};",
        f"  {log['params'] / 1e6:.2f} M parameters, {size / 1e6:.1f} MB in F16.",
        f"- AdamW, peak lr {a['lr']}, {a['warmup']} warm-up steps, cosine decay over a {a['minutes']:.0f}-minute budget:",
        f"  {log['steps']} steps of {a['tokens_per_step']} tokens, {log['tokens'] / 1e6:.2f} M tokens, {log['wall_s'] / 60:.0f} min on {log['machine']}, one thread,",
        f"  side by side with the other continuous model (equal time). Final held-out {loss_name}: {log['final_val']:.3f}.",
        "  The masked default model saw far more (see its REPORT.md); no GPU was lent to retrain these at more tokens.",
        "",
        "![loss](loss.png)",
        "",
        "## Evaluation on the held-out books (`unmask eval`, CPU, seed 0)",
        "",
        "| bound per token (nats) | perplexity bound | one-shot token accuracy (15% noised) | its cross-entropy | tokens |",
        "|---|---|---|---|---|",
        f"| {ev['nelbo_per_token']:.3f} | {ev['ppl_bound']:.0f} | {ev['accuracy'] * 100:.2f}% | {ev['masked_ce']:.3f} | {ev['tokens']:,} |",
        "",
        "- The bound is the continuous-time VP diffusion bound (VDM; Plaid's `nll`): reconstruction at t = 0 from the",
        "  model's own output, ½γ'(t)e^{−γ(t)}‖x − x̂0‖² at one low-discrepancy t per chunk, and the prior's KL; for bits the",
        "  reconstruction is the product of the 12 per-bit Bernoullis, a distribution over all 4096 ids, so it bounds the",
        "  tokens' likelihood like the others. x̂0 comes from one pass without self-conditioning.",
        "- The accuracy pass replaces the same 15% of tokens as the masked model's with pure noise (t = 1), the rest clean,",
        "  and reads one pass out as the sampler does.",
        "",
        f"Span fills: {spans[0]['spans']} held-out two-word spans, seed 0, CPU, one thread (`unmask eval --spans --model {args.name}",
        "--text train/work/heldout.txt --count 200 --steps N --strategy S`):",
        "",
        "| strategy | steps | exact | token acc. | word acc. | NFE / hole token |",
        "|---|---|---|---|---|---|",
    ]
    for r in spans:
        lines.append(f"| {r['strategy']} | {r['steps']} | {r['exact'] * 100:.1f}% | {r['token_accuracy'] * 100:.1f}% | "
                     f"{r['word_accuracy'] * 100:.1f}% | {r['nfe_per_hole']:.2f} |")
    lines += [
        "",
        f"## Ten fills (`unmask infill TEMPLATE --model {args.name} --seed 0`: DDIM, 32 steps)",
        "",
        "The templates were fixed before any output was seen.",
        "",
    ]
    for t, o in fills:
        lines += [f"- `{t}`", f"  → {o}"]
    lines.append("")
    open(os.path.join(out_dir, "REPORT.md"), "w").write("\n".join(lines))
    print(f"wrote {out_dir}/REPORT.md")


if __name__ == "__main__":
    main()
