// The canvas and its player: a fill recorded step by step (one Recording per fill feeds every
// view), played as its events arrive, replayed and scrubbed; and the candidates popover, which
// shows what the model considered at the position and step on screen.
import { Recording } from "./recording.js";
import { buildCanvas } from "./canvas.js";
import { renderCandidates, reweigh } from "./candidates.js";
import { ui, notice, describeError } from "./ui.js";

/** What still-masked positions would be is kept at every step for templates of up to this many holes. */
const PENDING_HOLES = 128;

/** Plays a recording's frames, following a live run as its events arrive (also sample.js's). */
export class Frames {
  constructor(draw) {
    this.draw = draw;
    this.k = 0;
    this.timer = null;
  }
  show(k, animate = false) {
    this.k = k;
    this.draw(k, animate);
  }
  /** From the current frame to `target()`, one frame per `ms()`, until `final()`; then `end()`. */
  play(target, final, ms, end) {
    this.stop();
    const tick = () => {
      if (this.k < target()) {
        this.show(this.k + 1, true);
        this.timer = setTimeout(tick, ms());
      } else if (final()) {
        this.timer = null;
        end?.();
      } else {
        this.timer = setTimeout(tick, 25);
      }
    };
    tick();
  }
  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }
  get playing() {
    return this.timer !== null;
  }
}

export class Player {
  /**
   * `page.model()`: the loaded model or null; `page.options()`: the sampler's fill options;
   * `page.filled(result)`: a fill ended; `page.moved(event)`: the frame on screen is now the
   * one after `event` (a replay ended, the scrubber moved); `page.started()`: a fill starts;
   * `page.blockLength()`: the loaded model's block of positions (block diffusion) or null.
   */
  constructor(page) {
    this.page = page;
    this.rec = null; // the Recording the canvas shows
    this.view = null; // the canvas's cells
    this.run = null; // { controller } of the fill in flight
    this.selected = null; // the position whose candidates are open
    this.lastRunMs = Infinity;
    this.candidatesShown = 0; // the latest candidates render asked for (an older one is dropped)
    this.frames = new Frames((k, animate) => this.drawFrame(k, animate));

    ui.fill.addEventListener("click", () => this.fill());
    ui.stop.addEventListener("click", () => this.stop());
    ui.replay.addEventListener("click", () => this.replay());
    ui.scrubber.addEventListener("input", () => this.scrubTo(Number(ui.scrubber.value)));
    ui.candClose.addEventListener("click", () => this.closeCandidates());
    ui.popover.addEventListener("keydown", (e) => {
      if (e.key === "Escape") this.closeCandidates();
    });
    for (const el of [ui.candT, ui.candP]) el.addEventListener("input", () => this.showCandidates());
  }

  get k() {
    return this.frames.k;
  }

  /** The recording shown, at the frame shown: what the forward view follows. */
  event() {
    return this.rec?.event(this.frames.k) ?? null;
  }

  /** A fill that ended in done and took under 3 s, with nothing running: worth re-running at once. */
  quick() {
    return Boolean(this.rec) && !this.run && !ui.fill.disabled && this.lastRunMs < 3000 && ui.canvas.dataset.state === "done";
  }

  /** Stops the fill in flight (a new model is loading). */
  abort() {
    this.run?.controller.abort();
  }

  drawFrame(k, animate) {
    const rec = this.rec;
    if (!rec || !this.view) return;
    this.view.update(rec.state(k), {
      fresh: animate ? rec.freshAt(k) : new Set(),
      changed: animate ? rec.changedAt(k) : new Set(),
      colour: ui.colour.value,
      steps: Math.max(1, rec.length),
      selected: this.selected,
      final: rec.isFinal(k),
      // a growing hole: the cells of step k, and its length move animated
      layout: rec.layoutAt(k),
      order: rec.order(k),
      move: animate ? rec.moveAt(k) : null,
      // block diffusion: the model's blocks, and the one being decoded at step k
      blockLength: rec.blockLength,
      block: rec.blockAt(k),
    });
    ui.canvas.dataset.step = String(k);
    ui.scrubber.value = String(k);
    ui.scrubVal.textContent = rec.event(k) ? `${k} (t=${rec.event(k).t.toFixed(2)})` : String(k);
    if (this.selected !== null) this.showCandidates();
  }

  /** Redraws the frame on screen (the colouring changed). */
  redraw() {
    this.drawFrame(this.frames.k, false);
  }

  setRunning(on) {
    const model = this.page.model();
    ui.fill.disabled = on || !model;
    ui.stop.disabled = !on;
    ui.replay.disabled = on || !this.rec || this.rec.length === 0;
    ui.scrubber.disabled = on || !this.rec || this.rec.length === 0;
    ui.race.go.disabled = on || !model;
  }

  /** The end state of the canvas once a fill or replay has played out. */
  settle() {
    // a uniform-state fill's last frame may have been drawn before its done event came: its
    // starting tokens that survived are the model's answer now
    if (this.rec?.family !== "absorbing" && this.rec?.isFinal(this.frames.k)) this.drawFrame(this.frames.k, false);
    ui.canvas.dataset.state = this.rec?.done ? "done" : "stopped";
  }

  async fill() {
    const model = this.page.model();
    if (!model || this.run) return;
    const template = ui.template.value;
    // the run starts now (a test or a second click sees it at once), before the layout is back
    const controller = new AbortController();
    this.run = { controller };
    // (the canvas on screen is the last fill's until this one's is built)
    delete ui.canvas.dataset.lengths;
    delete ui.canvas.dataset.tokens;
    const previous = ui.canvas.dataset.state;
    ui.canvas.dataset.state = "running";
    this.setRunning(true);
    let layout;
    try {
      layout = await model.layout(template);
    } catch (e) {
      // holes of unknown length on a model that ranks one fill per length: the canvas is known
      // only once the best fill is chosen, so its steps are recorded and then played
      if (e.code === "BadTemplate" && /once per length/.test(e.message)) {
        await this.fillRanked(model, template, controller, previous);
        return;
      }
      ui.measure.textContent = e.message;
      ui.canvas.dataset.state = previous;
      this.run = null;
      this.setRunning(false);
      ui.template.focus();
      return;
    }
    this.frames.stop();
    this.closeCandidates();
    const rec = new Recording(layout, this.page.options(), model.family, this.page.blockLength?.() ?? null);
    this.rec = rec;
    // what still-masked positions would be, at every step: up to 128 holes (MDLM-OWT's 1024-token
    // canvas would keep millions of candidates)
    const holes = layout.slots.reduce((n, x) => n + ("hole" in x ? x.hole[1] - x.hole[0] : 0), 0);
    rec.pendingKept = holes <= PENDING_HOLES;
    this.view = buildCanvas(ui.canvas, layout, (pos, cell) => this.pick(pos, cell), model.family);
    ui.canvas.dataset.state = "running";
    ui.canvas.dataset.step = "0";
    this.frames.show(0);
    this.setRunning(true);
    this.page.started();
    const started = performance.now();
    const figures = (e) => {
      const s = (performance.now() - started) / 1000;
      ui.figures.step.textContent = String(e.step);
      ui.figures.nfe.textContent = String(e.nfe);
      ui.figures.ms.textContent = e.step ? ((s * 1000) / e.step).toFixed(1) : "–";
      ui.figures.tps.textContent = s > 0 ? (rec.committedTokens / s).toFixed(0) : "–";
    };
    let finished = false;
    this.frames.play(
      () => rec.length,
      () => finished,
      () => this.frameMs(),
      () => {
        this.settle();
        this.setRunning(false);
        ui.scrubber.max = String(rec.length);
      },
    );
    try {
      const result = await model.infill(template, {
        ...rec.meta,
        candidates: 8,
        pending: rec.pendingKept,
        signal: controller.signal,
        onStep: (e) => {
          rec.push(e);
          if (!e.done) figures(e);
        },
      });
      this.lastRunMs = result.ms;
      // a growing hole's final lengths
      if (result.hole_lengths) ui.canvas.dataset.lengths = result.hole_lengths.join(",");
      ui.figures.ms.textContent = result.steps ? (result.ms / result.steps).toFixed(1) : "–";
      ui.figures.tps.textContent = result.ms > 0 ? ((rec.committedTokens * 1000) / result.ms).toFixed(0) : "–";
      ui.canvas.setAttribute("aria-label", `Filled: ${result.text}`);
      this.page.filled(result);
    } catch (e) {
      // Disposed: a new model was loaded meanwhile
      if (e.code !== "Aborted" && e.code !== "Disposed") notice(describeError(e), "error");
    } finally {
      finished = true;
      this.run = null;
      ui.scrubber.max = String(rec.length);
      if (!this.frames.playing) {
        this.settle();
        this.setRunning(false);
      }
    }
  }

  /**
   * A template with holes of unknown length on a model that fills one per length and keeps the
   * best (the `lengths` event): its steps (the chosen fill's) arrive at the end, so the canvas
   * is laid out at the chosen lengths (`layout(template, { lengths })`) and the steps played then.
   */
  async fillRanked(model, template, controller, previous) {
    this.frames.stop();
    this.closeCandidates();
    const meta = this.page.options();
    const events = [];
    ui.canvas.replaceChildren(Object.assign(document.createElement("p"), {
      className: "help",
      textContent: "This model fills a hole of unknown length once for each length and keeps the best by its bound; the chosen fill plays here when the ranking ends. (The dreamon model grows and shrinks the hole instead.)",
    }));
    ui.canvas.dataset.state = "ranking";
    this.page.started();
    let rec = null;
    try {
      const result = await model.infill(template, {
        ...meta,
        candidates: 8,
        pending: true,
        signal: controller.signal,
        onStep: (e) => {
          events.push(e);
          if (e.step !== undefined) {
            ui.figures.step.textContent = String(e.step);
            ui.figures.nfe.textContent = String(e.nfe);
          }
        },
      });
      const chosen = result.lengths?.find((c) => c.chosen)?.lengths ?? [];
      const layout = await model.layout(template, { lengths: chosen });
      rec = new Recording(layout, meta, model.family, this.page.blockLength?.() ?? null);
      for (const e of events) rec.push(e);
      this.rec = rec;
      this.lastRunMs = result.ms;
      this.view = buildCanvas(ui.canvas, layout, (pos, cell) => this.pick(pos, cell), model.family);
      ui.canvas.dataset.lengths = chosen.join(",");
      ui.figures.ms.textContent = result.steps ? (result.ms / result.steps).toFixed(1) : "–";
      ui.canvas.setAttribute("aria-label", `Filled: ${result.text}`);
      this.page.filled(result);
    } catch (e) {
      if (e.code !== "Aborted" && e.code !== "Disposed") notice(describeError(e), "error");
    }
    this.run = null;
    if (!rec) {
      ui.canvas.dataset.state = previous === "done" ? "stopped" : previous;
      this.setRunning(false);
      return;
    }
    ui.scrubber.max = String(rec.length);
    this.frames.show(0);
    ui.canvas.dataset.state = "running";
    this.frames.play(
      () => rec.length,
      () => true,
      () => this.frameMs(),
      () => {
        this.settle();
        this.setRunning(false);
      },
    );
  }

  /** Stop: ends the fill in flight, or an animation still catching up with a finished one. */
  stop() {
    if (this.run) {
      this.run.controller.abort();
    } else if (this.frames.playing && this.rec) {
      this.frames.stop();
      this.frames.show(this.rec.length);
      this.settle();
      this.setRunning(false);
    }
  }

  frameMs() {
    return Number(ui.speed.value);
  }

  replay() {
    if (!this.rec || this.run) return;
    this.frames.stop();
    this.frames.show(0);
    ui.canvas.dataset.state = "replaying";
    this.frames.play(
      () => this.rec.length,
      () => true,
      () => this.frameMs(),
      () => {
        this.settle();
        this.page.moved(this.event());
      },
    );
  }

  scrubTo(k) {
    this.frames.stop();
    this.frames.show(k);
    this.settle();
    this.page.moved(this.event());
  }

  // ---------- candidates ----------

  pick(pos, cell) {
    this.selected = pos;
    ui.popover.hidden = false;
    this.showCandidates();
    this.drawFrame(this.frames.k, false);
    ui.popover.dataset.pos = String(pos);
    cell?.setAttribute("aria-expanded", "true");
    ui.candClose.focus({ preventScroll: true });
  }

  async showCandidates() {
    const rec = this.rec;
    const cell = this.selected;
    if (!rec || cell === null) return;
    const k = this.frames.k;
    const info = rec.candidatesAt(cell, k);
    // the cell's position at this step (a growing hole moves the cells after it)
    const now = rec.positionOf(cell, k);
    const pos = !rec.moved ? cell : now >= 0 ? now : rec.positionOf(cell, Math.max(0, k - 1));
    const T = Number(ui.candT.value);
    const topP = Number(ui.candP.value);
    ui.candTVal.textContent = T.toFixed(2);
    ui.candPVal.textContent = topP.toFixed(2);
    const asked = ++this.candidatesShown;
    let rows;
    try {
      rows = await reweigh(info.top, T, topP);
    } catch (e) {
      notice(describeError(e), "error");
      return;
    }
    // a slider that moved, or another position picked, meanwhile: that render wins
    if (asked !== this.candidatesShown) return;
    renderCandidates(
      { title: ui.candTitle, what: ui.candWhat, bars: ui.candBars, note: ui.candNote },
      pos,
      k,
      info,
      rows,
      rec.meta.seed ?? 0,
    );
  }

  closeCandidates() {
    const had = this.selected;
    this.selected = null;
    ui.popover.hidden = true;
    if (had !== null && this.view) {
      const cell = this.view.cells.get(had);
      cell?.removeAttribute("aria-expanded");
      this.drawFrame(this.frames.k, false);
      cell?.focus({ preventScroll: true });
    }
  }
}
