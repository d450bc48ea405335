// Two fills of one template and seed, side by side: two strategies on the loaded model, or two
// families of diffusion, the bundled masked model against the bundled uniform-state one, each
// with a strategy that fits it (those models are loaded here, each in its own worker, the first
// time a family race runs). The fills run one after the other (their NFE and steps do not
// depend on timing); the lanes then replay step-aligned.
import { Unmask } from "/unmask/index.web.js";
import { Recording } from "./recording.js";
import { buildCanvas } from "./canvas.js";
import { fitting } from "./controls.js";
import { fillSelect } from "./ui.js";

/** The family race's lanes: a bundled model each (`Unmask.load(name)`), A then B. */
export const FAMILY_LANES = [
  { model: "default", family: "absorbing", label: "default · masked" },
  { model: "uniform", family: "uniform", label: "uniform · uniform-state" },
];

export class Race {
  /**
   * `page.model()`: the loaded model or null; `page.choices()`: every strategy (the controls'
   * `choices`); `page.device()`: the backend asked for; `page.template()`, `page.options()`,
   * `page.colour()`, `page.frameMs()`, `page.busy(on)`, `page.error(e)`.
   */
  constructor(ui, page) {
    this.ui = ui;
    this.page = page;
    this.lanes = [];
    this.k = 0;
    this.timer = null;
    this.family = "absorbing"; // the loaded model's: what the strategy race's menus offer
    this.own = new Map(); // bundled name -> { device, model }: the family race's models
    ui.go.addEventListener("click", () => this.go());
    ui.mode.addEventListener("change", () => this.offer());
    ui.scrubber.addEventListener("input", () => {
      this.stop();
      this.show(Number(ui.scrubber.value), false);
    });
  }

  get families() {
    return this.ui.mode.value === "families";
  }

  /** The loaded model is a `family` one now. */
  fitTo(family) {
    this.family = family;
    this.offer();
  }

  /**
   * Each lane's menu: the strategies that fit the loaded model (a strategy race), or each its
   * own lane's model (a family race), the family's default first; a choice that still fits
   * stays. A strategy race starts as the loaded family's second strategy against its default.
   */
  offer() {
    const choices = this.page.choices();
    if (!choices.length) return;
    const families = this.families ? FAMILY_LANES.map((l) => l.family) : [this.family, this.family];
    for (const [i, select] of [this.ui.a, this.ui.b].entries()) {
      const list = fitting(choices, families[i]);
      const first = this.families || i === 1 ? list[0] : (list[1] ?? list[0]);
      fillSelect(select, list, list.some((c) => c.value === select.value) && select.dataset.family === families[i] ? select.value : first?.value);
      select.dataset.family = families[i];
    }
    this.ui.nameA.textContent = this.families ? FAMILY_LANES[0].label : "";
    this.ui.nameB.textContent = this.families ? FAMILY_LANES[1].label : "";
  }

  /** A bundled model of the family race, loaded once per backend choice, in its own worker. */
  bundled(name) {
    const device = this.page.device();
    let m = this.own.get(name);
    if (m && m.device !== device) {
      m.model.then((x) => x.dispose()).catch(() => {});
      m = null;
    }
    if (!m) {
      const entry = { device, model: Unmask.load(name, { worker: true, device, threads: 1 }) };
      entry.model.catch(() => this.own.get(name) === entry && this.own.delete(name));
      this.own.set(name, entry);
      m = entry;
    }
    return m.model;
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  async go() {
    if (!this.page.model()) return;
    const template = this.page.template();
    const base = this.page.options();
    // the sampler's strategy is the lanes' to choose
    delete base.strategy;
    this.stop();
    this.page.busy(true);
    this.ui.scrubber.disabled = true;
    const families = this.families;
    const specs = [
      { select: this.ui.a, name: this.ui.nameA, el: this.ui.laneA, stats: this.ui.statsA, lane: families ? FAMILY_LANES[0] : null },
      { select: this.ui.b, name: this.ui.nameB, el: this.ui.laneB, stats: this.ui.statsB, lane: families ? FAMILY_LANES[1] : null },
    ].map((s) => ({ ...s, strategy: s.select.value, label: s.select.selectedOptions[0]?.textContent ?? "" }));
    this.lanes = [];
    this.ui.lanes.dataset.mode = families ? "families" : "strategies";
    try {
      for (const s of specs) {
        s.name.textContent = s.lane ? `${s.lane.label} · ${s.label}` : s.label;
        s.el.dataset.state = "running";
        s.el.replaceChildren();
        s.stats.textContent = s.lane ? `loading the ${s.lane.model} model…` : "running…";
      }
      for (const s of specs) {
        const model = s.lane ? await this.bundled(s.lane.model) : this.page.model();
        s.stats.textContent = "running…";
        // each model its own canvas: a uniform-state model's is not framed as the masked one's
        const layout = await model.layout(template);
        const rec = new Recording(layout, { ...base, strategy: s.strategy }, model.family);
        const view = buildCanvas(s.el, layout, null, model.family);
        const result = await model.infill(template, { ...rec.meta, onStep: (e) => rec.push(e) });
        this.lanes.push({ ...s, rec, view, result });
        s.stats.textContent = `${rec.length} steps · NFE ${result.nfe} · ${result.ms.toFixed(0)} ms`;
        s.stats.title = result.text;
      }
      const longest = Math.max(...this.lanes.map((l) => l.rec.length));
      this.ui.scrubber.max = String(longest);
      this.show(0, false);
      this.play(longest);
    } catch (e) {
      for (const s of specs) s.el.dataset.state = "idle";
      this.page.error(e);
      this.page.busy(false);
    }
  }

  play(longest) {
    const tick = () => {
      if (this.k < longest) {
        this.show(this.k + 1, true);
        this.timer = setTimeout(tick, this.page.frameMs());
      } else {
        this.timer = null;
        for (const l of this.lanes) l.el.dataset.state = "done";
        this.ui.scrubber.disabled = false;
        this.page.busy(false);
      }
    };
    this.timer = setTimeout(tick, this.page.frameMs());
  }

  show(k, animate) {
    this.k = k;
    this.ui.scrubber.value = String(k);
    this.ui.scrubVal.textContent = String(k);
    for (const l of this.lanes) {
      const at = Math.min(k, l.rec.length);
      const fresh = animate && k <= l.rec.length;
      l.view.update(l.rec.state(at), {
        fresh: fresh ? l.rec.freshAt(at) : new Set(),
        changed: fresh ? l.rec.changedAt(at) : new Set(),
        colour: this.page.colour(),
        steps: Math.max(1, l.rec.length),
        final: l.rec.isFinal(at),
      });
      const done = at === l.rec.length;
      const e = l.rec.event(at);
      const where = !e ? "" : l.rec.family === "absorbing" ? `, ${e.masked} masked` : e.nfe === 0 ? ", noise drawn" : `, ${l.rec.changedAt(at).size} changed`;
      l.stats.textContent = `${l.rec.length} steps · NFE ${l.result.nfe} · ${l.result.ms.toFixed(0)} ms` + (done ? " · finished" : ` · step ${at}${where}`);
      l.el.setAttribute("aria-label", `${l.lane ? `${l.lane.model} model, ` : ""}${l.strategy}: ${done ? l.result.text : `step ${at}`}`);
    }
  }

  redraw() {
    if (this.lanes.length) this.show(this.k, false);
  }
}
