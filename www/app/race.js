// Two strategies on the same template and seed. Both fills run in the same worker one after
// the other (their NFE and steps do not depend on timing); the lanes then replay step-aligned.
import { Recording } from "./recording.js";
import { buildCanvas } from "./canvas.js";

export class Race {
  constructor(ui, page) {
    this.ui = ui;
    this.page = page;
    this.lanes = [];
    this.k = 0;
    this.timer = null;
    ui.go.addEventListener("click", () => this.go());
    ui.scrubber.addEventListener("input", () => {
      this.stop();
      this.show(Number(ui.scrubber.value), false);
    });
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  async go() {
    const model = this.page.model();
    if (!model) return;
    const template = this.page.template();
    const base = this.page.options();
    this.stop();
    this.page.busy(true);
    this.ui.scrubber.disabled = true;
    const specs = [
      { strategy: this.ui.a.value, label: this.ui.a.selectedOptions[0]?.textContent ?? "", name: this.ui.nameA, el: this.ui.laneA, stats: this.ui.statsA },
      { strategy: this.ui.b.value, label: this.ui.b.selectedOptions[0]?.textContent ?? "", name: this.ui.nameB, el: this.ui.laneB, stats: this.ui.statsB },
    ];
    this.lanes = [];
    try {
      const layout = await model.layout(template);
      for (const s of specs) {
        s.name.textContent = s.label;
        s.el.dataset.state = "running";
        s.stats.textContent = "running…";
        const rec = new Recording(layout, { ...base, strategy: s.strategy });
        const view = buildCanvas(s.el, layout, null);
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
      l.view.update(l.rec.state(at), {
        fresh: animate && k <= l.rec.length ? l.rec.freshAt(at) : new Set(),
        colour: this.page.colour(),
        steps: Math.max(1, l.rec.length),
      });
      const done = at === l.rec.length;
      const e = l.rec.event(at);
      l.stats.textContent =
        `${l.rec.length} steps · NFE ${l.result.nfe} · ${l.result.ms.toFixed(0)} ms` +
        (done ? " · finished" : ` · step ${at}${e ? `, ${e.masked} masked` : ""}`);
      l.el.setAttribute("aria-label", `${l.strategy}: ${done ? l.result.text : `step ${at}`}`);
    }
  }

  redraw() {
    if (this.lanes.length) this.show(this.k, false);
  }
}
