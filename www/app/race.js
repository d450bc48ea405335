// Two fills of one template and seed, side by side: two strategies on the loaded model, or two
// families of diffusion, each lane the bundled model of the family chosen for it (absorbing:
// default, uniform, gaussian, bits; forward.js FAMILIES) with a strategy that fits it (those
// models are loaded the first time a lane asks for them, each in its own worker: the page's
// BundledModels). The fills run one after the other (their NFE and steps do not depend on
// timing); the lanes then replay step-aligned.
import { Recording } from "./recording.js";
import { buildCanvas } from "./canvas.js";
import { fitting } from "./controls.js";
import { FAMILIES, familyOf, measuredLine } from "./forward.js";
import { deviceFor } from "./bundled.js";
import { fillSelect } from "./ui.js";

/** The family race's lanes when the page opens: A then B. */
export const FAMILY_DEFAULTS = ["absorbing", "gaussian"];

export class Race {
  /**
   * `page.model()`: the loaded model or null; `page.choices()`: every strategy (the controls'
   * `choices`); `page.bundled`: the page's BundledModels; `page.device()`: the backend asked
   * for; `page.template()`, `page.options()`, `page.colour()`, `page.frameMs()`,
   * `page.busy(on)`, `page.error(e)`.
   */
  constructor(ui, page) {
    this.ui = ui;
    this.page = page;
    this.lanes = [];
    this.k = 0;
    this.timer = null;
    this.family = "absorbing"; // the loaded model's: what the strategy race's menus offer
    for (const [i, select] of [ui.famA, ui.famB].entries()) {
      fillSelect(select, FAMILIES.map((f) => ({ value: f.id, name: f.choice })), FAMILY_DEFAULTS[i]);
      select.addEventListener("change", () => this.offer());
    }
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

  /** The families the family race's lanes sample, A then B. */
  laneFamilies() {
    return [familyOf(this.ui.famA.value) ?? FAMILIES[0], familyOf(this.ui.famB.value) ?? FAMILIES[0]];
  }

  /**
   * Each lane's menu: the strategies that fit the loaded model (a strategy race), or each the
   * family chosen for its lane (a family race), the family's default first; a choice that still
   * fits stays. A strategy race starts as the loaded family's second strategy against its
   * default. A family race shows each lane's family select, and its model and figures.
   */
  offer() {
    const families = this.families ? this.laneFamilies() : null;
    this.ui.controls.dataset.mode = this.families ? "families" : "strategies";
    for (const el of [this.ui.famAWrap, this.ui.famBWrap]) el.hidden = !this.families;
    const names = [this.ui.nameA, this.ui.nameB];
    const measured = [this.ui.measuredA, this.ui.measuredB];
    for (const i of [0, 1]) {
      names[i].textContent = families ? families[i].lane : "";
      measured[i].textContent = families ? measuredLine(families[i]) : "";
      measured[i].hidden = !families;
    }
    const choices = this.page.choices();
    if (!choices.length) return;
    const ids = families ? families.map((f) => f.id) : [this.family, this.family];
    for (const [i, select] of [this.ui.a, this.ui.b].entries()) {
      const list = fitting(choices, ids[i]);
      const first = this.families || i === 1 ? list[0] : (list[1] ?? list[0]);
      // (a choice stays while the lane's family and the race's kind do; either changing starts
      // the lane at its default again)
      const key = `${this.ui.mode.value}:${ids[i]}`;
      fillSelect(select, list, list.some((c) => c.value === select.value) && select.dataset.key === key ? select.value : first?.value);
      select.dataset.family = ids[i];
      select.dataset.key = key;
    }
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
    const families = this.families ? this.laneFamilies() : null;
    const specs = [
      { select: this.ui.a, name: this.ui.nameA, el: this.ui.laneA, stats: this.ui.statsA, lane: families?.[0] ?? null },
      { select: this.ui.b, name: this.ui.nameB, el: this.ui.laneB, stats: this.ui.statsB, lane: families?.[1] ?? null },
    ].map((s) => ({ ...s, strategy: s.select.value, label: s.select.selectedOptions[0]?.textContent ?? "" }));
    this.lanes = [];
    this.ui.lanes.dataset.mode = families ? "families" : "strategies";
    try {
      for (const s of specs) {
        s.name.textContent = s.lane ? `${s.lane.lane} · ${s.label}` : s.label;
        s.el.dataset.state = "running";
        s.el.replaceChildren();
        s.stats.textContent = s.lane ? `loading the ${s.lane.model} model…` : "running…";
      }
      for (const s of specs) {
        const run = async (model) => {
          s.stats.textContent = "running…";
          // each model its own canvas: a uniform-state model's is not framed as the masked one's
          const layout = await model.layout(template);
          const rec = new Recording(layout, { ...base, strategy: s.strategy }, model.family);
          const view = buildCanvas(s.el, layout, null, model.family);
          const result = await model.infill(template, { ...rec.meta, onStep: (e) => rec.push(e) });
          this.lanes.push({ ...s, rec, view, result });
          s.stats.textContent = `${rec.length} steps · NFE ${result.nfe} · ${result.ms.toFixed(0)} ms`;
          s.stats.title = result.text;
        };
        if (s.lane) {
          // a family's own bundled model, in its worker (its turn, if a row sampler has it)
          const device = deviceFor(s.lane.id, this.page.device());
          if (!this.page.bundled.has(s.lane.model, device)) s.stats.textContent = `loading the ${s.lane.model} model…`;
          await this.page.bundled.use(s.lane.model, device, run);
        } else {
          await run(this.page.model());
        }
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
        layout: l.rec.layoutAt(at),
        order: l.rec.order(at),
        move: fresh ? l.rec.moveAt(at) : null,
      });
      const done = at === l.rec.length;
      const e = l.rec.event(at);
      const continuous = l.rec.family === "gaussian" || l.rec.family === "bits";
      const where = !e
        ? ""
        : l.rec.family === "absorbing"
          ? `, ${e.masked} masked`
          : e.nfe === 0
            ? ", noise drawn"
            : continuous && at === 1
              ? ", read out of the noise"
              : `, ${l.rec.changedAt(at).size} changed`;
      l.stats.textContent = `${l.rec.length} steps · NFE ${l.result.nfe} · ${l.result.ms.toFixed(0)} ms` + (done ? " · finished" : ` · step ${at}${where}`);
      l.el.setAttribute("aria-label", `${l.lane ? `${l.lane.model} model, ` : ""}${l.strategy}: ${done ? l.result.text : `step ${at}`}`);
      l.el.dataset.text = l.result.text;
    }
  }

  redraw() {
    if (this.lanes.length) this.show(this.k, false);
  }
}
