// The token canvas: the user's text exactly as typed, and one cell per hole position that shows
// a placeholder while masked and its token once committed, coloured by confidence or by step. On
// a uniform-state model's canvas every hole holds a token from step 0: its starting noise, drawn
// grey, then the model's tokens, each flashing at the step it changed, until the text condenses.

/** Background of a committed cell: low confidence warm, high confidence cool. */
export function confidenceColour(p) {
  const x = Math.max(0, Math.min(1, p));
  return `hsl(${Math.round(25 + 185 * x)} 80% ${Math.round(86 - 8 * x)}%)`;
}

/** Background by the fraction of the run at which the cell was committed. */
export function stepColour(f) {
  const x = Math.max(0, Math.min(1, f));
  return `hsl(${Math.round(275 - 230 * x)} 75% 84%)`;
}

export function legendGradient(mode) {
  const stops = [0, 0.25, 0.5, 0.75, 1].map((x) => (mode === "step" ? stepColour(x) : confidenceColour(x)));
  return `linear-gradient(90deg, ${stops.join(", ")})`;
}

/**
 * Builds the canvas for a layout into `el` and returns `update(state, options)`. `onPick(pos,
 * cell)` is called when a cell is clicked or activated from the keyboard; `family` is the
 * model's (`model.family`).
 */
export function buildCanvas(el, layout, onPick, family = "absorbing") {
  el.replaceChildren();
  el.dataset.family = family;
  const cells = new Map();
  const gaps = new Map();
  let hole = 0;
  for (const slot of layout.slots) {
    if ("known" in slot) {
      const span = document.createElement("span");
      span.className = "known";
      span.textContent = slot.known;
      el.append(span);
      continue;
    }
    hole += 1;
    const [start, end] = slot.hole;
    for (let pos = start; pos < end; pos++) {
      // a token's leading space is drawn before its cell, so the sentence reads naturally
      const gap = document.createElement("span");
      gap.className = "gap";
      const b = document.createElement("button");
      b.type = "button";
      b.className = "tok masked";
      b.dataset.pos = String(pos);
      b.dataset.hole = String(hole);
      // the first token of a hole carries the space the known text already has
      b.dataset.trim = String(pos === start && slot.afterSpace);
      b.setAttribute("aria-label", `position ${pos}: masked`);
      b.addEventListener("click", () => onPick?.(pos, b));
      el.append(gap, b);
      cells.set(pos, b);
      gaps.set(pos, gap);
    }
  }

  /**
   * Shows `state` (position -> commit). `fresh`: positions to animate; `changed`: those of them
   * whose token replaced another (flashed); `colour`: "confidence" or "step"; `steps`: the run's
   * step count, for step colours; `selected`: a position; `final`: the finished fill's last
   * step (a starting token still there is then the model's answer, not noise).
   */
  function update(state, { fresh = new Set(), changed = new Set(), colour = "confidence", steps = 1, selected = null, final = false } = {}) {
    for (const [pos, b] of cells) {
      const c = state.get(pos);
      b.classList.toggle("selected", pos === selected);
      if (!c) {
        if (!b.classList.contains("masked")) {
          b.className = pos === selected ? "tok masked selected" : "tok masked";
          b.textContent = "";
          gaps.get(pos).textContent = "";
          b.style.background = "";
          b.dataset.state = "masked";
          b.dataset.key = "";
          b.setAttribute("aria-label", `position ${pos}: masked`);
        }
        continue;
      }
      let text = c.text;
      const lead = text.match(/^\s*/)[0];
      text = text.slice(lead.length);
      if (text === "") text = "\u00a0";
      const key = `${c.id}@${c.k}`;
      if (b.dataset.key !== key) {
        b.dataset.key = key;
        b.textContent = text;
        gaps.get(pos).textContent = b.dataset.trim === "true" ? "" : lead;
        b.classList.remove("masked");
      }
      // a uniform-state model's starting token (noise, or the words being rewritten) until it
      // changes or the fill ends
      const noise = Boolean(c.start) && !final;
      if (b.dataset.state !== (noise ? "start" : "filled")) {
        b.classList.toggle("start", noise);
        b.classList.toggle("filled", !noise);
        b.dataset.state = noise ? "start" : "filled";
      }
      const label = `position ${pos}: ${c.text.trim() || "(space)"}, ${noise ? "starting token" : `p ${(c.p * 100).toFixed(0)}%, step ${c.step}`}`;
      if (b.getAttribute("aria-label") !== label) b.setAttribute("aria-label", label);
      b.style.background = noise ? "" : colour === "step" ? stepColour(steps > 1 ? (c.k - 1) / (steps - 1) : 1) : confidenceColour(c.p);
      b.classList.remove("fresh", "changed");
      if (fresh.has(pos)) {
        // restart the animation: a reflow between removing and adding the class
        void b.offsetWidth;
        b.classList.add("fresh");
        if (changed.has(pos)) b.classList.add("changed");
      }
    }
  }

  return { cells, update };
}
