// One fill as the page keeps it: the template's layout and every step event, with the canvas
// state after each step precomputed so that scrubbing is instant. A masked model's steps commit
// each hole once; a uniform-state model's step 0 commits every hole with its starting token
// (uniform noise, or the words of a `[[words]]` hole) and each later step the holes whose token
// changed, so a position may be committed many times.

export class Recording {
  /**
   * `layout`: `model.layout(template)`; `meta`: the fill options the run was asked (strategy,
   * seed …: sent as they are); `family`: the model's (`model.family`).
   */
  constructor(layout, meta = {}, family = "absorbing") {
    this.layout = layout;
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
  }

  push(e) {
    if (e.done) {
      this.done = e;
      return;
    }
    if (e.lengths) {
      // holes of unknown length: every fill tried (the steps recorded are the chosen one's)
      this.lengths = e.lengths;
      return;
    }
    const k = this.events.length + 1;
    const s = new Map(this.states[this.states.length - 1]);
    for (const pos of e.remasked ?? []) s.delete(pos);
    const start = e.step === 0 && e.nfe === 0;
    for (const c of e.committed) s.set(c.pos, { ...c, step: e.step, k, start });
    this.committedTokens += e.committed.length;
    this.events.push(e);
    this.states.push(s);
  }

  /** Steps recorded so far. */
  get length() {
    return this.events.length;
  }

  state(k) {
    return this.states[Math.max(0, Math.min(k, this.states.length - 1))];
  }

  /** The event of recorded step k (1-based), or null for the start. */
  event(k) {
    return k >= 1 ? this.events[k - 1] ?? null : null;
  }

  /** Positions committed exactly at step k (for the pop-in transition). */
  freshAt(k) {
    const e = this.event(k);
    return new Set(e ? e.committed.map((c) => c.pos) : []);
  }

  /** Positions whose token changed at step k: committed there over a token they already held. */
  changedAt(k) {
    const e = this.event(k);
    const before = this.state(k - 1);
    return new Set(e ? e.committed.filter((c) => before.has(c.pos)).map((c) => c.pos) : []);
  }

  /** The last step of a finished fill: every token on the canvas is the model's answer. */
  isFinal(k) {
    return Boolean(this.done) && k >= this.events.length;
  }

  /**
   * What the model said about `pos` at step k: committed there, predicted but left masked,
   * committed earlier (its candidates from then), or not predicted at this step.
   */
  candidatesAt(pos, k) {
    const e = this.event(k);
    if (e) {
      const c = e.committed.find((x) => x.pos === pos);
      if (c && e.step === 0 && e.nfe === 0) return { kind: "start", step: e.step, t: e.t, chosen: c.id, text: c.text, p: c.p, top: [] };
      if (c) return { kind: "committed", step: e.step, t: e.t, chosen: c.id, text: c.text, p: c.p, top: c.top ?? [] };
      const p = e.pending?.find((x) => x.pos === pos);
      if (p) return { kind: "pending", step: e.step, t: e.t, chosen: null, top: p.top };
    }
    const s = this.state(k).get(pos);
    if (s?.start) return { kind: "start", step: s.step, t: this.event(s.k)?.t, chosen: s.id, text: s.text, p: s.p, top: [] };
    if (s) return { kind: "earlier", step: s.step, t: this.event(s.k)?.t, chosen: s.id, text: s.text, p: s.p, top: s.top ?? [] };
    return { kind: this.pendingKept ? "none" : "unkept", step: e?.step ?? 0, t: e?.t ?? 1, chosen: null, top: [] };
  }
}
