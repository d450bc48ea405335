// The forward process: one sentence corrupted at time t by the four families of discrete
// diffusion, each computed in the worker on the loaded model's own vocabulary and embeddings.
// Each family is also a model shipped with the page (`model`: its bundled name; `lane` and
// `choice`: how the family race names it), and each states its measured bound and accuracy
// (`measured`, from `source`): the one place the page keeps those
// figures (the forward rows and the family race's lanes show them).

/** Where the `measured` figures come from. */
export const MEASURED_SOURCE = "docs/quality.md";

export const FAMILIES = [
  {
    id: "absorbing",
    name: "Absorbing state",
    tag: "D3PM-absorbing · MDLM · LLaDA — our default model samples it",
    ours: true,
    model: "default",
    lane: "default · masked",
    choice: "absorbing (masked)",
    measured: "MDLM NELBO 4.088 nats/token · 49.90% token accuracy at 15% masked",
    source: MEASURED_SOURCE,
    caption: [
      "Each token is replaced by [MASK] with probability 1 − α_t; a masked token stays masked.",
      "Trade-off: the model always knows which tokens are noise, so denoising is filling blanks — but a committed token is never revised (unless a sampler such as ReMDM re-masks it).",
    ],
  },
  {
    id: "uniform",
    name: "Uniform",
    tag: "D3PM-uniform · UDLM · Duo — our uniform model samples it",
    ours: true,
    model: "uniform",
    lane: "uniform · uniform-state",
    choice: "uniform-state",
    measured: "UDLM bound 4.234 nats/token · 45.68% accuracy (of noise tokens, 15% noised)",
    source: MEASURED_SOURCE,
    caption: [
      "Each token is replaced by a token drawn uniformly from the vocabulary with probability 1 − α_t.",
      "Trade-off: every position stays editable until the end (a fill can revise itself at every step), but the model must also find which tokens are wrong; it usually trains to worse likelihood.",
    ],
  },
  {
    id: "gaussian",
    name: "Continuous embeddings",
    tag: "Diffusion-LM · DiffuSeq · Plaid — our gaussian model samples it",
    ours: true,
    model: "gaussian",
    lane: "gaussian · continuous embeddings",
    choice: "Gaussian embeddings",
    measured: "VDM bound 5.123 nats/token · 6.13% one-shot accuracy (15% noised)",
    source: MEASURED_SOURCE,
    caption: [
      "Token embeddings get Gaussian noise, x_t = √ᾱ·e + √(1−ᾱ)·ε; shown here rounded to the nearest token's embedding.",
      "Trade-off: reuses image-diffusion machinery and smooth guidance, but needs a rounding step back to words and many steps. In hundreds of dimensions the nearest embedding survives much noise: tokens flip only late in t.",
    ],
  },
  {
    id: "bits",
    name: "Analog Bits",
    tag: "Chen et al. 2022 — our bits model samples it",
    ours: true,
    model: "bits",
    lane: "bits · Analog Bits",
    choice: "Analog Bits",
    measured: "VDM bound 6.356 nats/token · 2.65% one-shot accuracy (15% noised)",
    source: MEASURED_SOURCE,
    caption: [
      "Each token id is written as ±1 bits, bits get Gaussian noise and are thresholded back to an id (∅: no such token).",
      "Trade-off: any discrete data becomes continuous without embeddings, but a single flipped bit jumps to an unrelated token.",
    ],
  },
];

/** A family by its id. */
export function familyOf(id) {
  return FAMILIES.find((f) => f.id === id) ?? null;
}

/** The line that states a family's measured figures, e.g. "measured: … (docs/quality.md)". */
export function measuredLine(f) {
  return `measured: ${f.measured} (${f.source})`;
}

/** Draws the schedule curves into `svg` with t marked; `schedule` from `model.schedule()`. */
export function drawSchedule(svg, schedule, t) {
  const W = 320;
  const H = 120;
  const L = 34;
  const B = 22;
  const x = (v) => L + v * (W - L - 10);
  const y = (v) => H - B - v * (H - B - 10);
  const path = (pts) => pts.map(([a, b], i) => `${i ? "L" : "M"}${x(a).toFixed(1)},${y(b).toFixed(1)}`).join("");
  const ns = "http://www.w3.org/2000/svg";
  const el = (name, attrs, text) => {
    const e = document.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const kids = [
    el("line", { x1: L, y1: y(0), x2: W - 10, y2: y(0), stroke: "currentColor", "stroke-opacity": 0.3 }),
    el("line", { x1: L, y1: y(0), x2: L, y2: y(1), stroke: "currentColor", "stroke-opacity": 0.3 }),
    el("text", { x: L - 4, y: y(1) + 4, "text-anchor": "end", "font-size": 10, fill: "currentColor" }, "1"),
    el("text", { x: L - 4, y: y(0) + 4, "text-anchor": "end", "font-size": 10, fill: "currentColor" }, "0"),
    el("text", { x: x(0), y: H - 6, "text-anchor": "middle", "font-size": 10, fill: "currentColor" }, "t=0"),
    el("text", { x: x(1), y: H - 6, "text-anchor": "end", "font-size": 10, fill: "currentColor" }, "t=1"),
  ];
  if (schedule) {
    kids.push(el("path", { d: path(schedule.continuous), fill: "none", stroke: "#e0782b", "stroke-width": 2, "stroke-dasharray": "4 3" }));
    kids.push(el("path", { d: path(schedule.masked), fill: "none", stroke: "#3d6bff", "stroke-width": 2.5 }));
  }
  kids.push(el("line", { x1: x(t), y1: y(0), x2: x(t), y2: y(1), stroke: "#ff9d00", "stroke-width": 2 }));
  kids.push(el("text", { x: Math.min(x(t) + 4, W - 40), y: y(1) + 10, "font-size": 10, fill: "currentColor" }, `t=${t.toFixed(2)}`));
  svg.replaceChildren(...kids);
  svg.style.color = "var(--muted)";
}

/**
 * Builds the four family panels once; returns `show(results)`. `extend(family, box)`, when
 * given, adds what a panel holds beyond the forward process (a sampler, main.js).
 */
export function buildFamilies(root, extend) {
  const panels = new Map();
  root.replaceChildren(
    ...FAMILIES.map((f) => {
      const box = document.createElement("article");
      box.className = "family";
      box.dataset.family = f.id;
      const h = document.createElement("h3");
      const name = document.createElement("span");
      name.textContent = f.name;
      const tag = document.createElement("span");
      tag.className = f.ours ? "tag ours" : "tag";
      tag.textContent = f.tag;
      h.append(name, tag);
      const toks = document.createElement("div");
      toks.className = "toks";
      toks.setAttribute("aria-live", "off");
      const level = document.createElement("p");
      const c1 = document.createElement("p");
      c1.textContent = f.caption[0];
      const c2 = document.createElement("p");
      c2.textContent = f.caption[1];
      const measured = document.createElement("p");
      measured.className = "measured";
      measured.dataset.testid = `measured-${f.id}`;
      measured.textContent = measuredLine(f);
      box.append(h, measured, toks, level, c1, c2);
      extend?.(f, box);
      panels.set(f.id, { toks, level });
      return box;
    }),
  );
  /** `results`: `model.corrupt`'s answers, or `{ family, error }` for a family it refused. */
  return function show(results) {
    for (const r of results) {
      const p = panels.get(r.family);
      if (!p) continue;
      p.level.parentElement.dataset.error = r.error ? "true" : "false";
      if (r.error) {
        p.level.textContent = r.error;
        p.toks.replaceChildren();
        continue;
      }
      const changed = r.tokens.filter((x) => x.changed || x.masked).length;
      p.level.textContent = `noise ${(r.noise * 100).toFixed(0)}% · ${changed} of ${r.tokens.length} tokens corrupted`;
      p.toks.replaceChildren(
        ...r.tokens.map((x) => {
          const s = document.createElement("span");
          s.className = "chip" + (x.masked ? " masked" : !x.valid ? " invalid" : x.changed ? " changed" : "");
          s.textContent = x.masked ? "[MASK]" : x.text.replace(/^\s+/, "") || "␣";
          s.title = x.changed || x.masked ? `was ${JSON.stringify(x.originalText)}` : "unchanged";
          return s;
        }),
      );
    }
  };
}
