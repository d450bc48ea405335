// One fill as the page keeps it: the template's layout and every step event, with the canvas
// state after each step precomputed so that scrubbing is instant. A masked model's steps commit
// each hole once; a uniform-state model's step 0 commits every hole with its starting token
// (uniform noise, or the words of a `[[words]]` hole) and each later step the holes whose token
// changed, so a position may be committed many times.
//
// On a model whose holes grow (the bundled `dreamon`), a hole of unknown length starts at the
// layout's length and each `expand` or `delete` event after a step moves the canvas positions:
// so the recording keys every cell by a stable id (its position at the start, or a new number
// for a cell an expansion added) and keeps, for each step, the order of the cells on the canvas
// (`order(k)`: position -> cell id), the layout (`layoutAt(k)`) and the length move the step
// made (`moveAt(k)`). Without moves a cell's id is its position.
//
// On a block-diffusion model (attention `block:N`, BD3LM) each step event names the block of
// canvas positions it decodes (`block: { start, end }`); `blockAt(k)` is the block on screen at
// frame k and `blockLength` the model's N (given by the page, or read from the events).

/** The tokens whose commit moves a growing hole: an `expand` or `delete` event follows the step. */
const MOVE_TOKENS = new Set(["<|expand|>", "<|endoftext|>"]);

/**
 * A layout after a length move (`{ expand: pos }` or `{ delete: [positions] }`, the trace's
 * events): the hole holding `pos` one longer and every later position one to the right; or the
 * positions gone and every later one moved left by the number removed before it.
 */
export function moveLayout(layout, e) {
  if ("expand" in e) {
    const pos = e.expand;
    const slots = layout.slots.map((s) => {
      if (!("hole" in s)) return s;
      const [a, b] = s.hole;
      if (a <= pos && pos < b) return { ...s, hole: [a, b + 1] };
      if (a > pos) return { ...s, hole: [a + 1, b + 1] };
      return s;
    });
    return { ...layout, tokens: layout.tokens + 1, slots };
  }
  const gone = e.delete;
  const before = (p) => gone.filter((g) => g < p).length;
  const slots = layout.slots.map((s) => {
    if (!("hole" in s)) return s;
    const [a, b] = s.hole;
    const len = b - a - gone.filter((g) => g >= a && g < b).length;
    const start = a - before(a);
    return { ...s, hole: [start, start + len] };
  });
  return { ...layout, tokens: layout.tokens - gone.length, slots };
}

export class Recording {
  /**
   * `layout`: `model.layout(template)`; `meta`: the fill options the run was asked (strategy,
   * seed …: sent as they are); `family`: the model's (`model.family`).
   */
  constructor(layout, meta = {}, family = "absorbing", blockLength = null) {
    this.layout = layout;
    // block diffusion: the model's block of positions (null: no blocks, or not known yet)
    this.blockLength = blockLength;
    this.meta = meta;
    this.family = family;
    this.events = [];
    // states[k]: position -> { id, text, p, step, top, k, start } after k recorded steps; `start`:
    // the hole's starting token, committed before any pass (a uniform-state model's step 0)
    this.states = [new Map()];
    this.done = null;
    this.committedTokens = 0;
    // whether the run listed the candidates of positions left masked (`pending`)
    this.pendingKept = true;
    // growing holes: after k steps, position -> cell id, the layout, and step k's length move
    this.orders = [Array.from({ length: layout.tokens }, (_, i) => i)];
    this.layouts = [layout];
    this.moves = [null];
    this.nextCell = layout.tokens;
    // the last step committed a length move whose event has not come yet: its frame waits
    this.awaitingMove = false;
  }

  push(e) {
    if (e.done) {
      this.done = e;
      this.awaitingMove = false;
      return;
    }
    if (e.lengths) {
      // holes of unknown length: every fill tried (the steps recorded are the chosen one's)
      this.lengths = e.lengths;
      return;
    }
    if ("expand" in e || "delete" in e) {
      this.applyMove(e);
      return;
    }
    const k = this.events.length + 1;
    // (a block cut at the canvas's end is shorter than N: the longest seen is N)
    if (e.block) this.blockLength = Math.max(this.blockLength ?? 0, e.block.end - e.block.start);
    const order = this.orders[this.orders.length - 1];
    const s = new Map(this.states[this.states.length - 1]);
    for (const pos of e.remasked ?? []) s.delete(order[pos]);
    const start = e.step === 0 && e.nfe === 0;
    for (const c of e.committed) s.set(order[c.pos], { ...c, step: e.step, k, start });
    this.committedTokens += e.committed.length;
    this.events.push(e);
    this.states.push(s);
    this.orders.push(order);
    this.layouts.push(this.layouts[this.layouts.length - 1]);
    this.moves.push(null);
    this.awaitingMove = e.committed.some((c) => MOVE_TOKENS.has(c.text));
  }

  /**
   * An `expand` or `delete` event: part of the frame of the step just recorded. An expansion
   * leaves the cell that took `<|expand|>` masked and adds a new masked cell after it; a
   * deletion takes away the cell of the end token and the masked cells to its right.
   */
  applyMove(e) {
    const k = this.events.length;
    const order = [...this.orders[k]];
    const s = this.states[k];
    if ("expand" in e) {
      const cell = order[e.expand];
      const added = this.nextCell++;
      order.splice(e.expand + 1, 0, added);
      s.delete(cell);
      this.moves[k] = { kind: "expand", cell, added, hole: e.hole, length: e.length };
    } else {
      const cells = e.delete.map((p) => order[p]);
      for (const p of [...e.delete].reverse()) order.splice(p, 1);
      for (const c of cells) s.delete(c);
      this.moves[k] = { kind: "delete", cells, hole: e.hole, length: e.length };
    }
    this.orders[k] = order;
    this.layouts[k] = moveLayout(this.layouts[k], e);
    this.awaitingMove = false;
  }

  /** Steps recorded so far (a step whose length move is still to come is not one yet). */
  get length() {
    return this.events.length - (this.awaitingMove ? 1 : 0);
  }

  /** After k steps: canvas position -> cell id (the identity without length moves). */
  order(k) {
    return this.orders[Math.max(0, Math.min(k, this.orders.length - 1))];
  }

  /** The layout after k steps (the starting one until a hole grows or shrinks). */
  layoutAt(k) {
    return this.layouts[Math.max(0, Math.min(k, this.layouts.length - 1))];
  }

  /** The length move step k made: `{ kind: "expand", cell, added }`, `{ kind: "delete", cells }`, or null. */
  moveAt(k) {
    return k >= 1 ? this.moves[k] ?? null : null;
  }

  /** The canvas position of `cell` after k steps, or -1 when it is not on the canvas then. */
  positionOf(cell, k) {
    return this.order(k).indexOf(cell);
  }

  /** Whether any hole grew or shrank in this fill. */
  get moved() {
    return this.moves.some((m) => m !== null);
  }

  state(k) {
    return this.states[Math.max(0, Math.min(k, this.states.length - 1))];
  }

  /** The event of recorded step k (1-based), or null for the start. */
  event(k) {
    return k >= 1 ? this.events[k - 1] ?? null : null;
  }

  /**
   * Block diffusion: the block of positions `{ start, end }` at frame k: the one step k decoded,
   * the first one before any step, and the last one once the fill is over; null on other models.
   */
  blockAt(k) {
    if (this.events.length === 0) return null;
    const i = Math.max(1, Math.min(k, this.events.length));
    return this.events[i - 1].block ?? null;
  }

  /** Cells committed exactly at step k (for the pop-in transition). */
  freshAt(k) {
    const e = this.event(k);
    const order = this.order(k - 1);
    return new Set(e ? e.committed.map((c) => order[c.pos]) : []);
  }

  /** Cells whose token changed at step k: committed there over a token they already held. */
  changedAt(k) {
    const e = this.event(k);
    const before = this.state(k - 1);
    const order = this.order(k - 1);
    return new Set(e ? e.committed.map((c) => order[c.pos]).filter((cell) => before.has(cell)) : []);
  }

  /** The last step of a finished fill: every token on the canvas is the model's answer. */
  isFinal(k) {
    return Boolean(this.done) && k >= this.events.length;
  }

  /**
   * What the model said about cell `pos` (its position, without length moves) at step k:
   * committed there, predicted but left masked, committed earlier (its candidates from then),
   * or not predicted at this step; `absent` when a growing hole does not hold it then.
   */
  candidatesAt(pos, k) {
    const e = this.event(k);
    if (this.positionOf(pos, k) < 0 && !(e && this.moveAt(k)?.cells?.includes(pos))) {
      return { kind: "absent", step: e?.step ?? 0, t: e?.t ?? 1, chosen: null, top: [] };
    }
    if (e) {
      // the step's positions are as the canvas was before its length move
      const order = this.order(k - 1);
      const c = e.committed.find((x) => order[x.pos] === pos);
      if (c && e.step === 0 && e.nfe === 0) return { kind: "start", step: e.step, t: e.t, chosen: c.id, text: c.text, p: c.p, top: [] };
      if (c) return { kind: "committed", step: e.step, t: e.t, chosen: c.id, text: c.text, p: c.p, top: c.top ?? [] };
      const p = e.pending?.find((x) => order[x.pos] === pos);
      if (p) return { kind: "pending", step: e.step, t: e.t, chosen: null, top: p.top };
    }
    const s = this.state(k).get(pos);
    if (s?.start) return { kind: "start", step: s.step, t: this.event(s.k)?.t, chosen: s.id, text: s.text, p: s.p, top: [] };
    if (s) return { kind: "earlier", step: s.step, t: this.event(s.k)?.t, chosen: s.id, text: s.text, p: s.p, top: s.top ?? [] };
    return { kind: this.pendingKept ? "none" : "unkept", step: e?.step ?? 0, t: e?.t ?? 1, chosen: null, top: [] };
  }
}
