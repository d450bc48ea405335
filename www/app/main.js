// The demo page: the npm package's model runs in its Web Worker (`worker: true`), this thread
// only draws. Its parts: the model (loader.js), the editor and sampler (controls.js), the canvas
// with its player and candidates (player.js), the forward process (forward.js) with the
// continuous families' samplers in their rows (sample.js), the race of strategies or families
// (race.js), and the other bundled models those two load (bundled.js); this module wires them
// together.
import { Loader } from "./loader.js";
import { Controls } from "./controls.js";
import { Player } from "./player.js";
import { FAMILIES, buildFamilies, drawSchedule } from "./forward.js";
import { Race } from "./race.js";
import { BundledModels } from "./bundled.js";
import { RowSampler } from "./sample.js";
import { legendGradient } from "./canvas.js";
import { ui, notice, describeError } from "./ui.js";

// Threads on a static host: coi-sw.js adds the isolation headers a thread pool needs, from the
// next visit on (see it for why); where it cannot register, the page stays on one thread
// (ui.js's THREADS).
if ("serviceWorker" in navigator && !globalThis.crossOriginIsolated) {
  navigator.serviceWorker.register("/coi-sw.js").catch(() => {});
}

const model = () => loader.model;

const loader = new Loader({
  unloading() {
    player.abort();
    ui.fill.disabled = true;
    ui.race.go.disabled = true;
  },
  async ready(m) {
    await listed;
    // only the strategies that sample this model's family
    controls.fitTo(m.family);
    race.fitTo(m.family);
    ui.modelName.dataset.family = m.family;
    ui.fill.disabled = false;
    ui.race.go.disabled = false;
    forward.schedule = await m.schedule(101).catch(() => null);
    controls.measure();
    refreshForward();
  },
});

const controls = new Controls({
  model,
  changed: rerun,
  fill: () => player.fill(),
});

const player = new Player({
  model,
  options: () => controls.options(),
  // block diffusion: the loaded preset's block of positions (the step events say it too)
  blockLength: () => loader.blockLength(),
  // a new fill clears an earlier error notice; the backend notice stays
  started: () => loader.showBackend(),
  filled(result) {
    if (ui.fwdText.dataset.touched !== "true") {
      ui.fwdText.value = result.text.split(/\s+/).slice(0, 14).join(" ");
      refreshForward();
    }
  },
  // the forward view follows the frame on screen: t becomes the time the model saw at that step
  moved(event) {
    if (!event) return;
    ui.fwdT.value = String(event.t);
    refreshForward();
  },
});

// ---------- the forward process ----------

// the bundled models other than the loaded one: the family race's lanes and the rows' samplers
const bundled = new BundledModels();
const showError = (e) => e.code !== "Disposed" && notice(describeError(e), "error");

// the continuous families' rows sample their own bundled model (the discrete ones' models are
// the page's presets and the family race's lanes)
const samplers = [];
const forward = {
  schedule: null,
  busy: false,
  again: false,
  show: buildFamilies(ui.families, (f, box) => {
    if (f.id !== "gaussian" && f.id !== "bits") return;
    samplers.push(
      new RowSampler(f, box, {
        bundled,
        device: () => ui.device.value,
        template: () => ui.template.value,
        seed: () => controls.options().seed,
        colour: () => ui.colour.value,
        frameMs: () => player.frameMs(),
        error: showError,
      }),
    );
  }),
};

async function refreshForward() {
  const t = Number(ui.fwdT.value);
  ui.fwdTVal.textContent = t.toFixed(2);
  drawSchedule(ui.schedule, forward.schedule, t);
  const m = model();
  if (!m) return;
  // one request in flight; a slider that moves meanwhile asks once more when it lands
  if (forward.busy) {
    forward.again = true;
    return;
  }
  forward.busy = true;
  try {
    const text = ui.fwdText.value;
    const seed = Math.max(0, Math.floor(Number(ui.fwdSeed.value) || 0));
    // each family on its own: a uniform-state model has no mask token, so its absorbing row
    // says so while the other three show
    const results = await Promise.allSettled(FAMILIES.map((f) => m.corrupt(text, { family: f.id, t, seed })));
    const busy = results.find((r) => r.status === "rejected" && r.reason?.code === "Busy");
    if (busy) throw busy.reason;
    forward.show(
      results.map((r, i) =>
        r.status === "fulfilled"
          ? r.value
          : {
              family: FAMILIES[i].id,
              error: /mask token/.test(r.reason?.message ?? "")
                ? "This model has no [MASK] token: a uniform-state model starts from noise, so it cannot show the absorbing process. Load the default model to see this row."
                : describeError(r.reason),
            },
      ),
    );
    ui.families.dataset.t = t.toFixed(2);
  } catch (e) {
    if (e.code !== "Busy") ui.families.textContent = describeError(e);
  } finally {
    forward.busy = false;
    if (forward.again) {
      forward.again = false;
      refreshForward();
    }
  }
}

// ---------- wiring ----------

const race = new Race(ui.race, {
  model,
  choices: () => controls.choices,
  bundled,
  device: () => ui.device.value,
  template: () => ui.template.value,
  options: () => controls.options(),
  colour: () => ui.colour.value,
  frameMs: () => player.frameMs(),
  busy: (on) => {
    ui.fill.disabled = on || !model();
    ui.race.go.disabled = on || !model();
  },
  error: showError,
});

/** Instant feedback: a sampler control that moves re-runs a fill that took under 3 s. */
let rerunTimer = null;
function rerun() {
  clearTimeout(rerunTimer);
  rerunTimer = setTimeout(() => {
    if (model() && player.quick()) player.fill();
  }, 250);
}

ui.legendBar.style.background = legendGradient(ui.colour.value);
ui.colour.addEventListener("change", () => {
  ui.legendBar.style.background = legendGradient(ui.colour.value);
  player.redraw();
  race.redraw();
  for (const r of samplers) r.redraw();
});
ui.fwdT.addEventListener("input", refreshForward);
ui.fwdSeed.addEventListener("change", refreshForward);
ui.fwdText.addEventListener("input", () => {
  ui.fwdText.dataset.touched = "true";
  refreshForward();
});
drawSchedule(ui.schedule, null, Number(ui.fwdT.value));
// the strategy lists come from the package (the engine's list), before the first fill
const listed = controls
  .listStrategies()
  .then(() => race.offer())
  .catch((e) => notice(describeError(e), "error"));
loader.load();
