"""Stage 6: write a model's REPORT.md and loss curve from its training log, the evaluations and
ten infills by the engine.

    python3 train/report.py --engine-eval FILE [--torch-eval FILE] [--unmask target/release/unmask]
        [--spans FILE --spans-before FILE] [--model models/uniform --name uniform]

`--model` is the folder written (its training_log.json is the log); `--name` is how the engine
addresses it (`--model NAME`). The uniform-state model has no PyTorch evaluation (train/eval.py
scores the MDLM objective), so `--torch-eval` is optional.

The ten templates below were fixed before any output of the model was seen.
"""
import argparse
import json
import os
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common import OUT, WORK  # noqa: E402

TEMPLATES = [
    "Peter [MASK*2] ran into the [MASK] Forest.",
    "Once upon a time there was a little [MASK] who lived in a [MASK*2].",
    "The old [MASK] sat by the fire and [MASK*4].",
    '"Where are you going?" asked the [MASK].',
    "Mother Bear put the [MASK*2] on the table, and the three bears sat down to [MASK].",
    "The little girl was so [MASK] that she began to [MASK*2].",
    "Reddy Fox crept along the edge of the [MASK*2], looking for [MASK*3].",
    "It was a cold winter [MASK], and the snow [MASK*3].",
    "The king had three [MASK*2], and the youngest was the most [MASK].",
    "[MASK*6] and they lived happily ever after.",
]

# for a model that grows holes (trained with --dreamon-rows), fixed before any of its output was seen
GROWING = [
    "Peter [MASK*?] into the Forest.",
    "Once upon a time there was a [MASK*?] who lived in a little house.",
    "The old owl [MASK*?] and flew away.",
    "[MASK*?] and they lived happily ever after.",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine-eval", required=True)
    ap.add_argument("--torch-eval")
    ap.add_argument("--model", default=OUT)
    ap.add_argument("--name", default="default")
    ap.add_argument("--unmask", default="target/release/unmask")
    ap.add_argument("--spans", help="`unmask eval --spans --compare … --json` lines for this model")
    ap.add_argument("--spans-before", help="the same for the model this one replaces")
    ap.add_argument("--lengths", help="scripts/eval-lengths lines: holes of unknown length, grown and ranked")
    args = ap.parse_args()
    out_dir = args.model
    log = json.load(open(os.path.join(out_dir, "training_log.json")))
    uniform = log["args"].get("objective", "mdlm") == "udlm"
    split = json.load(open(os.path.join(WORK, "split.json")))
    engine = json.loads(open(args.engine_eval).read().strip().splitlines()[-1])
    tmodel = unigram = None
    if args.torch_eval:
        torch_rows = [json.loads(l) for l in open(args.torch_eval).read().strip().splitlines()]
        tmodel, unigram = torch_rows[0], torch_rows[1]

    vc = json.load(open(os.path.join(WORK, "vocab_choice.json")))
    vocab_note = "; ".join(
        f"{r['vocab']} entries give {r['heldout_tokens']:,} held-out tokens ({r['chars_per_token']:.2f} chars/token) for "
        f"{r['embed_head_params_at_256'] / 1e6:.1f} M embedding + head parameters at width 256"
        for r in vc
    ) + ". 8192 shortens sequences by 7% but its 2.1 M extra parameters (4.2 MB) would push six blocks past the 20 MB budget"

    # the stages the weights went through, oldest first (train.py --init carries the earlier log)
    stages = [log]
    while stages[0].get("earlier"):
        stages.insert(0, stages[0]["earlier"])
    offsets = [sum(st["tokens"] for st in stages[:i]) for i in range(len(stages))]
    tr = [[r[0], r[1] + off, *r[2:]] for st, off in zip(stages, offsets) for r in st["train"]]
    va = [[r[0], r[1] + off, *r[2:]] for st, off in zip(stages, offsets) for r in st["val"]]
    plt.figure(figsize=(7, 4))
    plt.plot([r[1] / 1e6 for r in tr], [r[2] for r in tr], lw=0.6, alpha=0.6, label="train (batch)")
    plt.plot([r[1] / 1e6 for r in va], [r[2] for r in va], "o-", ms=3, label="held-out books")
    for off in offsets[1:]:
        plt.axvline(off / 1e6, color="grey", ls=":", lw=1)
    plt.xlabel("tokens seen (M)")
    plt.ylabel(("uniform-state" if uniform else "MDLM") + " NELBO per token (nats)")
    plt.ylim(top=min(8.5, max(r[2] for r in tr)))
    plt.grid(alpha=0.3)
    plt.legend()
    plt.title(f"{args.name} model: " + ("UDLM (uniform-state) objective" if uniform else "MDLM objective"))
    plt.tight_layout()
    plt.savefig(os.path.join(out_dir, "loss.png"), dpi=110)

    growing = log["args"].get("dreamon_rows", 0) > 0
    examples = []
    for t in TEMPLATES + (GROWING if growing else []):
        out = subprocess.run([args.unmask, "infill", t, "--model", args.name, "--seed", "0", "--backend", "cpu"], capture_output=True, text=True, check=True)
        examples.append((t, out.stdout.strip()))

    a = log["args"]
    size = os.path.getsize(os.path.join(out_dir, "model.safetensors"))
    total_tokens = sum(st["tokens"] for st in stages)
    total_wall = sum(st["wall_s"] for st in stages)
    stage_lines = []
    for i, st in enumerate(stages):
        sa = st["args"]
        how = "from random weights" if i == 0 else "continued from the exported weights of the stage before (`--init`), lr warmed up again"
        stage_lines.append(
            f"  {i + 1}. {how}: peak lr {sa['lr']}, {sa['warmup']} warm-up steps, cosine decay to 10% "
            f"over the time budget, {st['steps']} steps, {st['tokens'] / 1e6:.1f} M tokens, {st['wall_s'] / 60:.0f} min on {st['machine']}."
        )
    spans_table = []
    if args.spans:
        rows = [json.loads(l) for l in open(args.spans) if l.strip()]
        before = {}
        key = lambda r: (r["strategy"], r["temperature"], r.get("steps"))  # noqa: E731
        if args.spans_before:
            before = {key(r): r for r in (json.loads(l) for l in open(args.spans_before) if l.strip())}
        spans_table = [
            f"{rows[0]['spans']} held-out two-word spans, seed {rows[0]['seed']}, CPU (`unmask eval --spans --model {args.name} "
            f"--text train/work/heldout.txt --count {rows[0]['spans']} --compare STRATEGY/STEPS,…`"
            + ("; the replaced model's figures in brackets):" if before else "):"),
            "",
            "| strategy | steps | temperature | exact | token acc. | word acc. | NFE / hole |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            b = before.get(key(r))
            f = lambda k, pct=True: (f"{r[k] * 100:.1f}%" if pct else f"{r[k]:.2f}") + (  # noqa: E731
                f" ({b[k] * 100:.1f}%)" if b and pct else (f" ({b[k]:.2f})" if b else "")
            )
            steps = r.get("steps") or ("one per hole + 1" if uniform else "one per hole")
            spans_table.append(
                f"| {r['strategy']} | {steps} | {r['temperature']:g} | {f('exact')} | {f('token_accuracy')} | {f('word_accuracy')} | {f('nfe_per_hole', False)} |"
            )
        spans_table.append("")
    rel = lambda x, y: abs(x - y) / abs(y) * 100  # noqa: E731
    gpu_note = "on one GPU" if "H200" in log["machine"] or "NVIDIA" in log["machine"] else "on the 2-core development VM"
    intro = (
        ["A small uniform-state diffusion model (UDLM objective: every hole holds a token, and noise replaces tokens with",
         "uniform draws) trained by this project beside the default masked model, on the same books, tokenizer, shape and",
         "training time, so the two families can be compared. Bundled in the `unmask` binary: `--model uniform`."]
        if uniform else
        ["A small MDLM (masked diffusion language model) trained by this project on public-domain children's books,",
         "embedded in the `unmask` binary so `unmask infill` works offline ("
         + ("`--model default`, or no `--model`)." if args.name == "default" else f"`--model {args.name}`).")]
    )
    dreamon = (
        [f"- The last stage gives {a['dreamon_rows'] * 100:.0f}% of each batch DreamOn's length augmentation (`train/dreamon.py`, `--dreamon-rows`):",
         f"  a hole of 1 to {a['max_middle']} tokens gets U[0, {a['max_delete']}) masked `<|endoftext|>` appended (labelled so: it deletes",
         f"  the rest of the hole), its tokens masked with probability r ~ U(0,1), and adjacent masked pairs merged with",
         f"  probability {a['merge_prob']}·(1 − masked share) or {a['merge_prob']} (half the rows each), the left labelled `<|expand|>` (it",
         "  becomes two masks) and the right dropped; DreamOn's loss, the end-token terms averaged on their own. `<|expand|>` is",
         "  the tokenizer's `<|pad|>` id (1), renamed. The other rows keep the plain loss, and validation is the plain loss."]
        if growing else []
    )
    objective = (
        ["- Objective: UDLM continuous time (families-reference §1.7, Duo's O(V) form): a token is kept with probability",
         "  α_t = 1 − (1 − 10⁻³)·t, else replaced by a uniform draw over all 4096 ids; the model sees σ = −log α_t",
         "  (`time_conditioning: true`); low-discrepancy t across each batch; canvases of 32, 64 or 128 tokens framed by",
         "  `<|endoftext|>` (never noised)."]
        if uniform else
        ["- Objective: MDLM continuous time, loglinear schedule (mask probability t), subs parameterisation, weight 1/t,",
         "  low-discrepancy t across each batch; canvases of 32, 64 or 128 tokens framed by `<|endoftext|>`."]
    )
    layout = (
        f"- UDLM DiT, the layout of `kuleshov-group/udlm-lm1b` (model_type `udlm`): {a['blocks']} blocks × {a['hidden']} wide, {a['heads']} heads,"
        if uniform else
        f"- MDLM DiT, exactly the layout the engine loads for `kuleshov-group/mdlm-owt`: {a['blocks']} blocks × {a['hidden']} wide, {a['heads']} heads,"
    )
    lines = [
        f"# The {args.name} model",
        "",
        *intro,
        "Train it again with the commands in `train/README.md`.",
        "",
        "## Data",
        f"- `shared/corpus/corpus.txt`: 181 public-domain children's books (30.6 MB). {len(split['val_books'])} whole books held out",
        f"  for validation (every 16th in manifest order, from the 8th): {split['val_tokens']:,} tokens = {split['val_fraction'] * 100:.1f}% of all tokens;",
        f"  {split['train_tokens']:,} training tokens.",
        f"- Held-out books: {', '.join(split['val_books'])}.",
        "- Tokenizer: byte-level BPE, 4096 entries (4093 learned + `<|endoftext|>`, `<|pad|>`, `<|mask|>` = 4095), trained on the",
        "  training books only. The choice was measured (`train/tokenizer.py --measure`): " + vocab_note + ".",
        "",
        "## Model and training",
        layout,
        f"  cond {a['cond']}, context {a['len']}, `time_conditioning: {'true' if uniform else 'false'}`; {log['params'] / 1e6:.2f} M parameters, {size / 1e6:.1f} MB in F16.",
        *objective,
        *dreamon,
        f"- AdamW (β 0.9/0.98, weight decay 0.01), grad clip 1, dropout {a.get('dropout', 0.0)}, {a['tokens_per_step']} tokens per step, seed {a['seed']}"
        + (", bf16 autocast" if a.get("device", "cpu") == "cuda" else "") + f"; {len(stages)} stage{'s' if len(stages) > 1 else ''}:",
        *stage_lines,
        f"- {total_tokens / 1e6:.1f} M tokens seen in all ({total_tokens / split['train_tokens']:.2f} epochs), {total_wall / 60:.1f} min of training {gpu_note}",
        "  (`train/gpu.sh`: the default and the uniform model side by side on one H200, the same wall time each)."
        if "NVIDIA" in log["machine"] else "  (no GPU machine was lent to these sessions).",
        f"- Final validation loss (NELBO per token on the held-out batches used during training): {log['final_val']:.3f} nats;",
        f"  the weights are those of the best validation ({log.get('exported', {}).get('val', log['final_val']):.3f}).",
        "",
        "![loss curve](loss.png)",
        "",
        "## Evaluation on the held-out books",
        "Masks, noise and times are SplitMix64 hashes of (seed, chunk, position), so every run scores exactly the same",
        "tokens" + ("; the PyTorch side (`train/eval.py`) scores the same ones." if tmodel else
                    ". The accuracy pass " + ("replaces 15% of the tokens with uniform noise (the uniform model's corruption) and"
                                              if uniform else "masks 15% of the tokens and")
        ) + ("" if tmodel else "\nasks for each token back; the bound is the family's own ("
             + ("the uniform closed-form NELBO)." if uniform else "MDLM's NELBO).")),
        "",
        f"| | {'corrupted' if uniform else 'masked'}-token top-1 accuracy (15%) | NELBO per token (nats) | perplexity bound |",
        "|---|---|---|---|",
        f"| engine (`unmask eval --model {args.name}`, CPU, f32 compute on F16 weights) | {engine['accuracy'] * 100:.2f}% | {engine['nelbo_per_token']:.4f} | {engine['ppl_bound']:.2f} |",
        *([f"| PyTorch (`train/eval.py`, same weights) | {tmodel['accuracy'] * 100:.2f}% | {tmodel['nelbo_per_token']:.4f} | {tmodel['ppl_bound']:.2f} |",
           f"| unigram baseline (training frequencies) | {unigram['accuracy'] * 100:.2f}% | {unigram['nelbo_per_token']:.4f} | {unigram['ppl_bound']:.2f} |"] if tmodel else []),
        "",
        *([f"Engine vs PyTorch: accuracy differs by {rel(engine['accuracy'], tmodel['accuracy']):.1e}%, the NELBO by",
           f"{rel(engine['nelbo_per_token'], tmodel['nelbo_per_token']):.1e}% (relative; the requirement is 1%); {engine['tokens']:,} tokens, {engine['masked']:,} masked for accuracy,",
           f"{engine['chunks']} chunks of up to {a['len'] - 2} tokens.", ""] if tmodel else
          [f"{engine['tokens']:,} tokens, {engine['masked']:,} corrupted for accuracy, {engine['chunks']} chunks of up to {a['len'] - 2} tokens.", ""]),
        *(["## Fill quality", *spans_table] if spans_table else []),
        *(lengths_section(args.lengths, args.name) if args.lengths else []),
        "## Ten infills",
        f"Templates chosen before looking at any output; `unmask infill TEMPLATE --model {args.name} --seed 0` (the default: "
        + ("the uniform posterior, one step per hole, a greedy last step)." if uniform else "greedy top-prob, one token per step)."),
        "",
    ]
    for t, o in examples:
        lines += [f"- `{t}`", f"  → {o}"]
    lines.append("")
    with open(os.path.join(out_dir, "REPORT.md"), "w") as f:
        f.write("\n".join(lines))
    print("wrote", os.path.join(out_dir, "REPORT.md"))


def lengths_section(path, name):
    """The table of scripts/eval-lengths lines: how often the hole ends at the true length, word
    accuracy with the length unknown, given, or the hole started at half or twice the truth."""
    rows = [json.loads(l) for l in open(path) if l.strip()]
    out = ["## Holes of unknown length",
           f"`scripts/eval-lengths {name}` on the held-out books ({rows[0]['spans']} spans a setting, seed {rows[0]['seed']}, CPU):",
           "",
           "| run | length right | chance | most common length | length ratio | word acc. | NFE / hole |",
           "|---|---|---|---|---|---|---|"]
    pct = lambda r, k: f"{r[k] * 100:.1f}%" if r.get(k) is not None else ""  # noqa: E731
    for r in rows:
        ratio = f"{r['length_ratio']:.2f}" if r.get("length_ratio") is not None else ""
        out.append(f"| {r['run']} | {pct(r, 'length_right')} | {pct(r, 'length_chance')} | {pct(r, 'length_most_common')} | "
                   f"{ratio} | {pct(r, 'word_accuracy')} | {r['nfe_per_hole']:.2f} |")
    return out + [""]


if __name__ == "__main__":
    main()
