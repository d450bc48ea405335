// The editor and the sampler's controls: the template with its toolbar and live measure, the
// strategy list (the engine's own, from the package's `strategies()`, with the page's words for
// each, only those that fit the loaded model's family), temperature, top-p, steps and seed, and
// the fill options they make.
import { strategies } from "/unmask/index.web.js";
import { EXAMPLES, STRATEGY_NOTES } from "./presets.js";
import { ui, fillSelect } from "./ui.js";

/**
 * The strategies the page knows: the engine's list, in its order, each with the page's label,
 * value and help where `STRATEGY_NOTES` has them (the library's own help otherwise), and the
 * model families it samples (`families`) and is the default for (`defaultFor`).
 */
export async function strategyChoices() {
  const listed = await strategies();
  return listed.map((s) => {
    const note = STRATEGY_NOTES[s.name];
    return {
      value: note?.value ?? s.name,
      name: note?.label ?? s.name,
      help: note?.help ?? `${s.usage}: ${s.help}.`,
      families: s.families,
      defaultFor: s.defaultFor,
    };
  });
}

/** The choices that sample a `family` model (a fill with any other is refused), its default first. */
export function fitting(choices, family) {
  const fits = choices.filter((c) => c.families.includes(family));
  return [...fits.filter((c) => c.defaultFor.includes(family)), ...fits.filter((c) => !c.defaultFor.includes(family))];
}

export class Controls {
  /**
   * `page.model()`: the loaded model or null; `page.changed()`: a sampler control moved (the
   * page may re-run a quick fill); `page.fill()`: Ctrl+Enter in the template.
   */
  constructor(page) {
    this.page = page;
    this.choices = []; // every strategy (strategyChoices)
    this.offered = []; // the sampler's menu: the model default, then those that fit the model
    this.family = "absorbing";
    this.measureTimer = null;
    fillSelect(ui.examples, [{ name: "choose…", text: "" }, ...EXAMPLES.map((e) => ({ name: e.name, text: e.text }))]);
    this.showValues();

    ui.insertMask.addEventListener("click", () => {
      const n = Math.max(1, Math.min(64, Math.floor(Number(ui.maskN.value) || 1)));
      this.insertAtCursor(n === 1 ? "[MASK]" : `[MASK*${n}]`);
    });
    ui.rewrite.addEventListener("click", () => this.rewriteSelection());
    ui.examples.addEventListener("change", (e) => {
      if (!e.target.value) return;
      ui.template.value = e.target.value;
      e.target.value = "";
      this.measure();
    });
    ui.template.addEventListener("input", () => this.measure());
    ui.template.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        page.fill();
      }
    });
    ui.reseed.addEventListener("click", () => {
      ui.seed.value = String(Math.floor(Math.random() * 1e6));
      page.changed();
    });
    ui.strategy.addEventListener("change", () => {
      this.showHelp();
      page.changed();
    });
    ui.temperature.addEventListener("input", () => (ui.temperature.dataset.touched = "1"));
    for (const el of [ui.temperature, ui.topP]) {
      el.addEventListener("input", () => this.showValues());
      el.addEventListener("change", () => page.changed());
    }
    for (const el of [ui.steps, ui.seed]) el.addEventListener("change", () => page.changed());
  }

  /** Reads the engine's list of strategies, then offers those that fit the current family. */
  async listStrategies() {
    this.choices = await strategyChoices();
    this.fitTo(this.family);
  }

  /**
   * The sampler's menu for a `family` model: "model default" (naming the strategy it is), then
   * the strategies that fit, in the engine's order; a choice that still fits stays chosen.
   */
  fitTo(family) {
    this.family = family;
    if (!this.choices.length) return;
    const fits = this.choices.filter((c) => c.families.includes(family));
    const own = fits.find((c) => c.defaultFor.includes(family));
    this.offered = [{ value: "", name: own ? `model default: ${own.name}` : "model default", help: STRATEGY_NOTES.default.help }, ...fits];
    const keep = this.offered.some((c) => c.value === ui.strategy.value) ? ui.strategy.value : "";
    fillSelect(ui.strategy, this.offered, keep);
    ui.strategy.dataset.family = family;
    this.showHelp();
  }

  showHelp() {
    ui.strategyHelp.textContent = this.offered.find((s) => s.value === ui.strategy.value)?.help ?? "";
  }

  showValues() {
    ui.temperatureVal.textContent = ui.temperature.dataset.touched ? Number(ui.temperature.value).toFixed(2) : "default";
    ui.topPVal.textContent = Number(ui.topP.value).toFixed(2);
  }

  insertAtCursor(text) {
    const t = ui.template;
    const { selectionStart: a, selectionEnd: b, value } = t;
    t.value = value.slice(0, a) + text + value.slice(b);
    t.selectionStart = t.selectionEnd = a + text.length;
    t.focus();
    this.measure();
  }

  rewriteSelection() {
    const t = ui.template;
    const { selectionStart: a, selectionEnd: b, value } = t;
    if (a === b) {
      ui.measure.textContent = "Select some words in the template first, then press “Rewrite selection”.";
      t.focus();
      return;
    }
    const words = value.slice(a, b);
    const lead = words.match(/^\s*/)[0];
    const trail = words.match(/\s*$/)[0];
    const core = words.trim();
    const wrapped = `${lead}[[${core}]]${trail}`;
    t.value = value.slice(0, a) + wrapped + value.slice(b);
    t.selectionStart = a;
    t.selectionEnd = a + wrapped.length;
    t.focus();
    this.measure();
  }

  /** The template's holes and tokens under it, a moment after typing stops. */
  measure() {
    clearTimeout(this.measureTimer);
    this.measureTimer = setTimeout(async () => {
      const model = this.page.model();
      if (!model) return;
      try {
        const template = ui.template.value;
        const m = await model.measure(template);
        let line = `${m.holes} hole${m.holes === 1 ? "" : "s"} · ${m.tokens} of ${m.maxTokens} tokens`;
        // holes of unknown length: grown and shrunk by a model that has `<|expand|>` (its
        // layout is the canvas the fill starts from), else filled once per length
        if (/\[MASK\*(\?|\d+-\d+)\]/.test(template)) {
          const grows = await model.layout(template).then(
            () => true,
            () => false,
          );
          line += grows
            ? " (at the start: holes of unknown length grow and shrink while they fill)"
            : " at the longest (holes of unknown length: one fill per length, the best kept)";
        }
        ui.measure.textContent = line;
        ui.measure.classList.remove("bad");
      } catch (e) {
        if (e.code === "Busy") return;
        ui.measure.textContent = e.message;
      }
    }, 120);
  }

  /** The fill options the controls say. */
  options() {
    const o = {
      topP: Number(ui.topP.value),
      seed: Math.max(0, Math.floor(Number(ui.seed.value) || 0)),
    };
    if (ui.strategy.value) o.strategy = ui.strategy.value;
    // untouched, the slider leaves the temperature to the library's measured defaults
    if (ui.temperature.dataset.touched) o.temperature = Number(ui.temperature.value);
    const steps = Number(ui.steps.value);
    if (ui.steps.value !== "" && steps >= 1) o.steps = Math.floor(steps);
    return o;
  }
}
