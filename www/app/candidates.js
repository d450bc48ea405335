// The reverse process up close: a position's most likely tokens at one step, and what a
// different temperature or top-p would have made of that same cached distribution.
import { reapply } from "/unmask/index.web.js";

/**
 * Temperature `T` and nucleus `topP` re-applied to candidates whose `p` are the model's own
 * probabilities (temperature 1), by the library's sampler itself (the package's `reapply`, the
 * engine's `sampling_distribution` in the module). Only the listed candidates are known, so it
 * takes them as the whole distribution: `tempered ∝ p^(1/T)`, then the smallest set reaching
 * `topP` is `kept` and renormalised (`final`).
 */
export function reweigh(top, T, topP) {
  return top.length === 0 ? Promise.resolve([]) : reapply(top, { temperature: T, topP });
}

/** The token a draw with uniform `u` picks from the re-applied distribution. */
export function drawWith(rows, u) {
  let acc = 0;
  for (const r of rows) {
    acc += r.final;
    if (u < acc) return r;
  }
  return rows.filter((r) => r.kept).at(-1) ?? null;
}

/** A fixed uniform per (position, step): moving the sliders changes the distribution, not the dice. */
export function uniformFor(pos, step, seed) {
  let h = (Math.imul(pos + 1, 2654435761) ^ Math.imul(step + 7, 40503) ^ Math.imul(seed + 13, 9973)) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 2246822507) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 3266489909) >>> 0;
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

const fmt = (x) => (x >= 0.995 ? "100%" : x < 0.001 ? "<0.1%" : `${(x * 100).toFixed(1)}%`);
// a token as a bar's label (its leading space dropped), and quoted inside a sentence
const show = (text) => (text.trim() === "" ? JSON.stringify(text) : text.trimStart());
const quote = (text) => `“${show(text)}”`;

/**
 * Renders `info` (Recording.candidatesAt) into the popover elements `ui`, with `rows`, its
 * candidates re-weighed by the popover's own temperature and top-p (`reweigh`).
 */
export function renderCandidates(ui, pos, k, info, rows, seed) {
  ui.title.textContent = `Position ${pos} · step ${info.step}`;
  const listed = info.top.reduce((a, c) => a + c.p, 0);
  const where = {
    start: `Its starting token ${quote(info.text ?? "")}, set before the model's first pass: a uniform-state model starts every hole as uniform noise (or as the words being rewritten), and no step has changed it since.`,
    committed: `Committed at this step as ${quote(info.text ?? "")}. The model's most likely tokens here, seeing the canvas of step ${info.step} (t = ${(info.t ?? 0).toFixed(2)}):`,
    pending: `Still masked after this step: the model predicted it, but the strategy did not commit it yet. Its most likely tokens at step ${info.step} (t = ${(info.t ?? 0).toFixed(2)}):`,
    earlier: `Already committed as ${quote(info.text ?? "")} at step ${info.step}; its candidates as the model saw them then:`,
    absent: "Not on the canvas at this step: its hole had not grown to this cell yet, or had already shrunk past it.",
    unkept: "Still masked here. What still-masked positions would be is kept for templates of up to 128 holes; this one has more, so only committed positions show candidates.",
    none: k === 0 ? "Before the first step every hole is masked. Scrub to a step, or click after a fill." : "This strategy did not predict this position at this step (it predicts only the positions it commits).",
  }[info.kind];
  ui.what.textContent = where;
  const u = uniformFor(pos, info.step, seed);
  const pick = rows.length ? drawWith(rows, u) : null;
  ui.bars.replaceChildren(
    ...rows.map((r) => {
      const li = document.createElement("li");
      if (!r.kept) li.classList.add("out");
      if (pick && r.id === pick.id) li.classList.add("chosen");
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = show(r.text);
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.max(0.5, r.final * 100)}%`;
      bar.title = `model p ${fmt(r.p)}`;
      const num = document.createElement("span");
      num.className = "num";
      num.textContent = fmt(r.final);
      li.append(label, bar, num);
      li.setAttribute("aria-label", `${show(r.text)}: model ${fmt(r.p)}, re-applied ${fmt(r.final)}${r.kept ? "" : ", cut by top-p"}`);
      return li;
    }),
  );
  if (!rows.length) {
    ui.note.textContent = "";
    return;
  }
  let run = ".";
  if (info.chosen !== null) {
    const listedChosen = info.top.some((c) => c.id === info.chosen);
    const text = quote(info.text ?? "");
    run =
      pick && pick.id === info.chosen
        ? " — the same token the run committed."
        : listedChosen
          ? ` — the run committed ${text}.`
          : ` — the run committed ${text} (p ${fmt(info.p)}), a draw from outside these ${rows.length}.`;
  }
  ui.note.textContent =
    `Bars: the ${rows.length} most likely tokens (${fmt(listed)} of the model's probability at T = 1), re-weighted by the temperature and top-p above and renormalised over these ${rows.length}. ` +
    `▶ marks what a draw with u = ${u.toFixed(2)} picks${run}`;
}
