// A forward row's own sampler, for the families whose model ships with the page but is not the
// one loaded (the continuous ones: gaussian, bits): a button that loads the bundled model (once,
// in its own worker: the page's BundledModels, shared with the family race), fills the page's
// current template with DDIM, and plays the fill step by step in a compact lane inside the row
// as its events arrive; a scrubber then goes back to any step.
import { Recording } from "./recording.js";
import { buildCanvas } from "./canvas.js";
import { Frames } from "./player.js";
import { deviceFor } from "./bundled.js";
import { describeError } from "./ui.js";

/** The strategy a row samples with: the continuous families' default. */
const STRATEGY = "ddim";

export class RowSampler {
  /**
   * `family`: a forward.js FAMILIES entry with a `model`; `box`: its row; `page.bundled`: the
   * page's BundledModels; `page.device()`, `page.template()`, `page.seed()`, `page.colour()`,
   * `page.frameMs()`, `page.error(e)`.
   */
  constructor(family, box, page) {
    this.family = family;
    this.page = page;
    this.rec = null;
    this.view = null;
    this.result = null;
    this.running = false;
    this.frames = new Frames((k, animate) => this.draw(k, animate));

    const wrap = document.createElement("div");
    wrap.className = "sample";
    const head = document.createElement("div");
    head.className = "sample-head";
    this.button = document.createElement("button");
    this.button.type = "button";
    this.button.dataset.testid = `sample-${family.id}`;
    this.button.textContent = `Sample with the ${family.model} model`;
    this.button.title = `Fill the template above with the bundled ${family.model} model (${STRATEGY}), step by step`;
    this.stats = document.createElement("p");
    this.stats.className = "stats";
    this.stats.setAttribute("aria-live", "polite");
    head.append(this.button, this.stats);
    this.lane = document.createElement("div");
    this.lane.className = "canvas small";
    this.lane.dataset.testid = `sample-lane-${family.id}`;
    this.lane.dataset.state = "idle";
    this.lane.setAttribute("role", "group");
    this.lane.setAttribute("aria-label", `The ${family.model} model's fill`);
    this.lane.hidden = true;
    const scrub = document.createElement("label");
    scrub.className = "scrub";
    scrub.hidden = true;
    this.scrubVal = document.createElement("b");
    this.scrubVal.textContent = "0";
    this.scrubber = document.createElement("input");
    this.scrubber.type = "range";
    this.scrubber.min = "0";
    this.scrubber.max = "0";
    this.scrubber.value = "0";
    this.scrubber.disabled = true;
    this.scrubber.dataset.testid = `sample-scrubber-${family.id}`;
    this.scrubber.setAttribute("aria-label", `Step of the ${family.model} model's fill`);
    scrub.append("step ", this.scrubVal, this.scrubber);
    this.scrub = scrub;
    wrap.append(head, this.lane, scrub);
    box.append(wrap);

    this.button.addEventListener("click", () => this.sample());
    this.scrubber.addEventListener("input", () => {
      this.frames.stop();
      this.frames.show(Number(this.scrubber.value), false);
    });
  }

  /** Loads the model if need be and fills the page's template, playing each step as it comes. */
  async sample() {
    if (this.running) return;
    this.running = true;
    this.button.disabled = true;
    this.frames.stop();
    const f = this.family;
    const device = deviceFor(f.id, this.page.device());
    const template = this.page.template();
    const meta = { strategy: STRATEGY, seed: this.page.seed() };
    this.lane.dataset.state = "running";
    this.stats.textContent = this.page.bundled.has(f.model, device) ? "running…" : `loading the ${f.model} model…`;
    let finished = false;
    try {
      await this.page.bundled.use(f.model, device, async (model) => {
        this.stats.textContent = "running…";
        const layout = await model.layout(template);
        const rec = new Recording(layout, meta, model.family);
        this.rec = rec;
        this.result = null;
        this.view = buildCanvas(this.lane, layout, null, model.family);
        this.lane.hidden = false;
        this.scrub.hidden = false;
        this.scrubber.disabled = true;
        this.frames.show(0);
        this.frames.play(
          () => rec.length,
          () => finished,
          () => this.page.frameMs(),
          () => this.settle(),
        );
        try {
          this.result = await model.infill(template, { ...meta, onStep: (e) => rec.push(e) });
        } finally {
          finished = true;
        }
        this.lane.setAttribute("aria-label", `The ${f.model} model's fill: ${this.result.text}`);
        this.lane.dataset.text = this.result.text;
        if (!this.frames.playing) this.settle();
      });
    } catch (e) {
      finished = true;
      this.frames.stop();
      this.lane.dataset.state = "error";
      this.stats.textContent = describeError(e);
      this.page.error(e);
    } finally {
      this.running = false;
      this.button.disabled = false;
    }
  }

  /** The fill has played out: the last frame, the scrubber over every step. */
  settle() {
    if (!this.rec || this.lane.dataset.state === "error") return;
    this.scrubber.max = String(this.rec.length);
    this.scrubber.disabled = false;
    this.frames.show(this.rec.length, false);
    this.lane.dataset.state = this.result ? "done" : "stopped";
  }

  draw(k, animate) {
    const rec = this.rec;
    if (!rec || !this.view) return;
    this.view.update(rec.state(k), {
      fresh: animate ? rec.freshAt(k) : new Set(),
      changed: animate ? rec.changedAt(k) : new Set(),
      colour: this.page.colour(),
      steps: Math.max(1, rec.length),
      final: rec.isFinal(k),
    });
    this.lane.dataset.step = String(k);
    this.scrubber.value = String(k);
    const e = rec.event(k);
    this.scrubVal.textContent = e ? `${k} (t=${e.t.toFixed(2)})` : String(k);
    const done = rec.isFinal(k) && this.result;
    const where = !e ? "noise" : k === 1 ? "read out of the noise" : `${rec.changedAt(k).size} changed`;
    const figures = this.result ? ` · NFE ${this.result.nfe} · ${this.result.ms.toFixed(0)} ms` : "";
    this.stats.textContent = `${STRATEGY} · ${rec.length} steps${figures}` + (done ? " · finished" : ` · step ${k}: ${where}`);
  }

  redraw() {
    if (this.rec) this.frames.show(this.frames.k, false);
  }
}
