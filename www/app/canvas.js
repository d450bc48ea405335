// The token canvas: the user's text exactly as typed, and one cell per hole position that shows
// a placeholder while masked and its token once committed, coloured by confidence or by step. On
// a uniform-state model's canvas every hole holds a token from step 0: its starting noise, drawn
// grey, then the model's tokens, each flashing at the step it changed, until the text condenses.
// On a model whose holes grow (`dreamon`) the cells of a hole follow the recording's order: a
// cell that took `<|expand|>` flashes and a new masked cell slides in after it; the cell of an
// end token and the masked cells to its right collapse and leave.
// On a block-diffusion model (BD3LM) the cells carry their block of N positions: a divider where
// a block starts, alternate blocks underlined in two tones, and the block being decoded highlighted.

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

/** How long a leaving cell takes to collapse (style.css `.tok.gone`). */
const LEAVE_MS = 450;

const reducedMotion = () => typeof matchMedia === "function" && matchMedia("(prefers-reduced-motion: reduce)").matches;

/**
 * Builds the canvas for a layout into `el` and returns `update(state, options)`. `onPick(cell,
 * button)` is called when a cell is clicked or activated from the keyboard (a cell is its
 * position, unless a growing hole moved it: the Recording's cell id); `family` is the model's
 * (`model.family`).
 */
export function buildCanvas(el, layout, onPick, family = "absorbing") {
  el.replaceChildren();
  el.dataset.family = family;
  el.dataset.tokens = String(layout.tokens);
  const cells = new Map(); // cell id -> its button
  const gaps = new Map(); // cell id -> the span before it (its token's leading space)
  const boxes = []; // one span per hole, holding its cells
  let shown = layout; // the layout the cells follow now

  function makeCell(id, hole) {
    // a token's leading space is drawn before its cell, so the sentence reads naturally
    const gap = document.createElement("span");
    gap.className = "gap";
    const b = document.createElement("button");
    b.type = "button";
    b.className = "tok masked";
    b.dataset.cell = String(id);
    b.dataset.hole = String(hole);
    b.addEventListener("click", () => onPick?.(id, b));
    cells.set(id, b);
    gaps.set(id, gap);
    return [gap, b];
  }

  /** Where each cell sits now: its position, and the hole's leading space on the first. */
  function place(b, pos, first, afterSpace) {
    b.dataset.pos = String(pos);
    const trim = String(first && afterSpace);
    if (b.dataset.trim !== trim) {
      b.dataset.trim = trim;
      b.dataset.key = ""; // (its gap is drawn again)
    }
    if (b.classList.contains("masked")) b.setAttribute("aria-label", `position ${pos}: masked`);
  }

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
    const box = document.createElement("span");
    box.className = "hole";
    box.dataset.hole = String(hole);
    const [start, end] = slot.hole;
    for (let pos = start; pos < end; pos++) {
      const [gap, b] = makeCell(pos, hole);
      place(b, pos, pos === start, slot.afterSpace);
      box.append(gap, b);
    }
    boxes.push(box);
    el.append(box);
  }

  /** A cell leaves the canvas: at once, or (`animate`) collapsing first. */
  function leave(id, animate, end) {
    const b = cells.get(id);
    const gap = gaps.get(id);
    cells.delete(id);
    gaps.delete(id);
    gap.remove();
    if (!animate || reducedMotion()) {
      b.remove();
      return;
    }
    delete b.dataset.pos;
    b.dataset.gone = "true";
    b.disabled = true;
    b.classList.remove("fresh", "changed", "split", "grown", "selected");
    if (end) {
      // the end token that deleted itself and the masks to its right
      b.className = "tok gone end";
      b.textContent = "⌫";
    } else {
      b.classList.add("gone");
    }
    setTimeout(() => b.remove(), LEAVE_MS);
  }

  /**
   * The cells of each hole as `order` (position -> cell id) and `layout` say: a cell no longer
   * there leaves, a new one is made; `move` (the step's length move, when animated) says which
   * cell grew the hole (it flashes, the new one slides in) or which cells a deletion took.
   */
  function reconcile(next, order, move) {
    let h = 0;
    const animate = move !== null;
    for (const slot of next.slots) {
      if (!("hole" in slot)) continue;
      const box = boxes[h];
      h += 1;
      const [start, end] = slot.hole;
      const ids = order.slice(start, end);
      const keep = new Set(ids);
      for (const b of [...box.querySelectorAll(".tok:not([data-gone])")]) {
        const id = Number(b.dataset.cell);
        const deleted = animate && move.kind === "delete";
        if (!keep.has(id)) leave(id, deleted, deleted && move.cells[0] === id);
      }
      let ref = box.firstChild;
      for (const [i, id] of ids.entries()) {
        while (ref && ref.dataset?.gone) ref = ref.nextSibling;
        let b = cells.get(id);
        let gap = gaps.get(id);
        if (!b) {
          [gap, b] = makeCell(id, h);
          if (animate && move.kind === "expand" && move.added === id && !reducedMotion()) b.classList.add("grown");
        }
        if (ref === gap && gap.nextSibling === b) {
          ref = b.nextSibling;
        } else {
          box.insertBefore(gap, ref);
          box.insertBefore(b, ref);
        }
        place(b, start + i, i === 0, slot.afterSpace);
      }
    }
    if (animate && move.kind === "expand") {
      const b = cells.get(move.cell);
      if (b && !reducedMotion()) {
        b.classList.remove("split");
        void b.offsetWidth;
        b.classList.add("split");
      }
    }
    shown = next;
    el.dataset.tokens = String(next.tokens);
  }

  /**
   * Shows `state` (cell -> commit). `fresh`: cells to animate; `changed`: those of them whose
   * token replaced another (flashed); `colour`: "confidence" or "step"; `steps`: the run's step
   * count, for step colours; `selected`: a cell; `final`: the finished fill's last step (a
   * starting token still there is then the model's answer, not noise). With holes that grow:
   * `layout` and `order` (the Recording's `layoutAt(k)` and `order(k)`) place the cells, and
   * `move` (its `moveAt(k)`, when animated) animates the step's length move. Block diffusion:
   * `blockLength` (the model's N) and `block` (the Recording's `blockAt(k)`, `{ start, end }`).
   */
  function update(state, { fresh = new Set(), changed = new Set(), colour = "confidence", steps = 1, selected = null, final = false, layout: next = null, order = null, move = null, blockLength = null, block = null } = {}) {
    if (next && order && next !== shown) reconcile(next, order, move);
    for (const [cell, b] of cells) {
      const pos = Number(b.dataset.pos);
      const c = state.get(cell);
      b.classList.toggle("selected", cell === selected);
      if (!c) {
        if (!b.classList.contains("masked")) {
          b.className = cell === selected ? "tok masked selected" : "tok masked";
          b.textContent = "";
          gaps.get(cell).textContent = "";
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
        gaps.get(cell).textContent = b.dataset.trim === "true" ? "" : lead;
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
      if (fresh.has(cell)) {
        // restart the animation: a reflow between removing and adding the class
        void b.offsetWidth;
        b.classList.add("fresh");
        if (changed.has(cell)) b.classList.add("changed");
      }
    }
    // (after the cells: a cell masked again gets its class list anew)
    showBlocks(blockLength, block);
  }

  /**
   * Block diffusion: each cell's block of `n` positions (`data-block`), a divider before the
   * first cell of each block (`blk-start`), odd blocks underlined darker (`blk-odd`), and the
   * block being decoded highlighted (`blk-active`); the canvas says which (`data-block`: "start-end").
   */
  function showBlocks(n, block) {
    if (!n) {
      if (el.dataset.blockLength === undefined) return;
      delete el.dataset.blockLength;
      delete el.dataset.block;
      for (const b of cells.values()) {
        delete b.dataset.block;
        b.classList.remove("blk-start", "blk-odd", "blk-active");
      }
      return;
    }
    el.dataset.blockLength = String(n);
    if (block) el.dataset.block = `${block.start}-${block.end}`;
    else delete el.dataset.block;
    // in canvas order: a divider before the first cell of each block that has cells (the known
    // text between holes has no cells, so the block may start in the text before it)
    const placed = [...cells.values()].filter((b) => b.dataset.pos !== undefined).sort((x, y) => Number(x.dataset.pos) - Number(y.dataset.pos));
    let before = -1;
    for (const b of placed) {
      const pos = Number(b.dataset.pos);
      const i = Math.floor(pos / n);
      b.dataset.block = String(i);
      b.classList.toggle("blk-start", i !== before && (i > 0 || pos === 0));
      before = i;
      b.classList.toggle("blk-odd", i % 2 === 1);
      b.classList.toggle("blk-active", Boolean(block) && block.start <= pos && pos < block.end);
    }
  }

  return { cells, update };
}
