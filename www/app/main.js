// The demo page: the npm package's model runs in its Web Worker (`worker: true`), this thread
// only draws. One Recording per fill feeds every view; the scrubber picks the step they show.
import { Unmask, isCached, clearCache } from "/unmask/index.web.js";
import { EXAMPLES, STRATEGIES, MODELS } from "./presets.js";
import { Recording } from "./recording.js";
import { buildCanvas, legendGradient } from "./canvas.js";
import { renderCandidates } from "./candidates.js";
import { FAMILIES, buildFamilies, drawSchedule } from "./forward.js";
import { Race } from "./race.js";

const $ = (id) => document.getElementById(id);
const ui = {
  template: $("template"),
  maskN: $("mask-n"),
  measure: $("measure"),
  strategy: $("strategy"),
  strategyHelp: $("strategy-help"),
  steps: $("steps"),
  temperature: $("temperature"),
  topP: $("top-p"),
  seed: $("seed"),
  device: $("device"),
  fill: $("fill"),
  stop: $("stop"),
  canvas: $("canvas"),
  colour: $("colour"),
  replay: $("replay"),
  speed: $("speed"),
  scrubber: $("scrubber"),
  notice: $("notice"),
  backend: $("backend"),
  modelName: $("model-name"),
  preset: $("preset"),
  custom: $("custom"),
  progress: $("progress"),
  progressText: $("progress-text"),
  popover: $("candidates"),
  candT: $("cand-t"),
  candP: $("cand-p"),
  fwdText: $("fwd-text"),
  fwdT: $("fwd-t"),
  fwdSeed: $("fwd-seed"),
};

let model = null;
let loading = null; // AbortController of the load in flight
let schedule = null;
let rec = null; // the Recording the main canvas shows
let canvasUi = null;
let run = null; // { controller } of the fill in flight
let selected = null; // the position whose candidates are open
let lastRunMs = Infinity;
let race = null;
const PENDING_HOLES = 128;

// ---------- notices and status ----------

function notice(text, kind = "info") {
  ui.notice.hidden = !text;
  ui.notice.textContent = text ?? "";
  ui.notice.className = kind === "error" ? "notice error" : "notice";
}

function describeError(e) {
  const what = {
    BadModel: "The model could not be read",
    ModelTooLarge: "This model is too large for this device",
    WebGPUUnavailable: "WebGPU is not available",
    DeviceLost: "The GPU device was lost",
    OutOfMemory: "Out of memory",
    Aborted: "Stopped",
  }[e?.name];
  return what ? `${what}: ${e.message}` : `${e?.name ?? "Error"}: ${e?.message ?? e}`;
}

function showBackend() {
  if (!model) return;
  const r = model.backendReason;
  const gpu = model.backend === "webgpu";
  ui.backend.textContent = gpu ? `WebGPU · ${r.adapter ?? "adapter"}` : "CPU · WebAssembly";
  ui.backend.className = gpu ? "pill" : "pill cpu";
  const why = {
    requested: gpu ? "asked for WebGPU" : "asked for the CPU",
    "hardware-adapter": "a hardware GPU adapter",
    "software-adapter-skipped": `only a software GPU adapter (${r.adapter ?? "?"}), slower than the CPU path`,
    "no-adapter": "this browser offers no WebGPU adapter",
    "not-built": "this build has no GPU backend",
  }[r.reason?.kind] ?? r.reason?.kind;
  ui.backend.title = `runs on ${gpu ? "the GPU through WebGPU" : "the CPU in WebAssembly"}: ${why}`;
  if (!gpu && ui.device.value !== "wasm") {
    notice(`No WebGPU here: ${why}. The model runs on the CPU in WebAssembly instead, in a worker, so the page stays responsive.`);
  } else {
    notice(null);
  }
}

// ---------- the model ----------

function currentPreset() {
  return MODELS.find((m) => m.id === ui.preset.value) ?? MODELS[0];
}

function sourceOf(preset) {
  if (preset.id !== "custom") return preset.source;
  const s = ui.custom.value.trim();
  return s === "" ? null : s;
}

async function updateCacheStatus() {
  const preset = currentPreset();
  const source = sourceOf(preset);
  $("preset-help").textContent = preset.help;
  if (source === null) return;
  try {
    const hit = await isCached(source, { tokenizer: preset.tokenizer });
    ui.progressText.textContent = preset.id === "default" ? "served with the page" + (hit ? " · in this browser's cache" : "") : hit ? "in this browser's cache" : "not cached: it will be downloaded";
  } catch {
    ui.progressText.textContent = "";
  }
}

function mb(n) {
  return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} MB`;
}

async function loadModel() {
  const preset = currentPreset();
  const source = sourceOf(preset);
  if (source === null) {
    notice("Type a hub id (owner/name) or a folder URL first.", "error");
    ui.custom.focus();
    return;
  }
  loading?.abort();
  run?.controller.abort();
  const controller = new AbortController();
  loading = controller;
  ui.fill.disabled = true;
  $("race-go").disabled = true;
  model?.dispose();
  model = null;
  ui.backend.textContent = "loading…";
  ui.modelName.textContent = preset.id === "custom" ? source : preset.name.split(" — ")[0];
  ui.progress.value = 0;
  ui.progress.removeAttribute("max");
  ui.progress.dataset.state = "loading";
  try {
    const m = await Unmask.load(source, {
      worker: true,
      device: ui.device.value,
      // the demo ships the single-thread module only (see ARCHITECTURE.md)
      threads: 1,
      tokenizer: preset.tokenizer,
      signal: controller.signal,
      onProgress: (e) => {
        if (e.phase === "download") {
          if (e.totalBytes) {
            ui.progress.max = e.totalBytes;
            ui.progress.value = e.totalLoaded;
          }
          ui.progressText.textContent = `${e.cached ? "from cache" : "downloading"} ${e.file}: ${mb(e.totalLoaded)}${e.totalBytes ? ` of ${mb(e.totalBytes)}` : ""}`;
        } else if (e.phase === "compile") {
          ui.progressText.textContent = `building the model${e.parameters ? ` (${(e.parameters / 1e6).toFixed(1)} M parameters)` : ""} for ${e.backend === "webgpu" ? "WebGPU" : "the CPU"}…`;
        } else if (e.phase === "warmup") {
          ui.progressText.textContent = "warming up the shaders…";
        }
      },
    });
    if (loading !== controller) {
      m.dispose();
      return;
    }
    model = m;
    ui.progress.max = 1;
    ui.progress.value = 1;
    ui.progressText.textContent = "ready";
    ui.progress.dataset.state = "ready";
    showBackend();
    ui.fill.disabled = false;
    $("race-go").disabled = false;
    schedule = await model.schedule(101).catch(() => null);
    measureTemplate();
    refreshForward();
    updateCacheStatus();
  } catch (e) {
    if (loading !== controller) return;
    ui.backend.textContent = "no model";
    ui.progress.max = 1;
    ui.progress.value = 0;
    ui.progress.dataset.state = "error";
    ui.progressText.textContent = "";
    notice(describeError(e), "error");
  } finally {
    if (loading === controller) loading = null;
  }
}

// ---------- the editor ----------

function insertAtCursor(text) {
  const t = ui.template;
  const { selectionStart: a, selectionEnd: b, value } = t;
  t.value = value.slice(0, a) + text + value.slice(b);
  t.selectionStart = t.selectionEnd = a + text.length;
  t.focus();
  measureTemplate();
}

function rewriteSelection() {
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
  measureTemplate();
}

let measureTimer = null;
function measureTemplate() {
  clearTimeout(measureTimer);
  measureTimer = setTimeout(async () => {
    if (!model) return;
    try {
      const m = await model.measure(ui.template.value);
      ui.measure.textContent = `${m.holes} hole${m.holes === 1 ? "" : "s"} · ${m.tokens} of ${m.maxTokens} tokens`;
      ui.measure.classList.remove("bad");
    } catch (e) {
      if (e.name === "Busy") return;
      ui.measure.textContent = e.message;
    }
  }, 120);
}

function options() {
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

// ---------- the canvas and its player ----------

/** Plays a recording's frames, following a live run as its events arrive. */
class Player {
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

const player = new Player(drawFrame);

function drawFrame(k, animate) {
  if (!rec || !canvasUi) return;
  canvasUi.update(rec.state(k), {
    fresh: animate ? rec.freshAt(k) : new Set(),
    colour: ui.colour.value,
    steps: Math.max(1, rec.length),
    selected,
  });
  ui.canvas.dataset.step = String(k);
  ui.scrubber.value = String(k);
  $("scrub-val").textContent = rec.event(k) ? `${k} (t=${rec.event(k).t.toFixed(2)})` : String(k);
  if (selected !== null) showCandidates();
}

function frameMs() {
  return Number(ui.speed.value);
}

function setRunning(on) {
  ui.fill.disabled = on || !model;
  ui.stop.disabled = !on;
  ui.replay.disabled = on || !rec || rec.length === 0;
  ui.scrubber.disabled = on || !rec || rec.length === 0;
  $("race-go").disabled = on || !model;
}

async function fill() {
  if (!model || run) return;
  const template = ui.template.value;
  // the run starts now (a test or a second click sees it at once), before the layout is back
  const controller = new AbortController();
  run = { controller };
  const previous = ui.canvas.dataset.state;
  ui.canvas.dataset.state = "running";
  setRunning(true);
  let layout;
  try {
    layout = await model.layout(template);
  } catch (e) {
    ui.measure.textContent = e.message;
    ui.canvas.dataset.state = previous;
    run = null;
    setRunning(false);
    ui.template.focus();
    return;
  }
  player.stop();
  closeCandidates();
  rec = new Recording(layout, options());
  // what still-masked positions would be, at every step: up to 128 holes (MDLM-OWT's 1024-token
  // canvas would keep millions of candidates)
  const holes = layout.slots.reduce((n, x) => n + ("hole" in x ? x.hole[1] - x.hole[0] : 0), 0);
  rec.pendingKept = holes <= PENDING_HOLES;
  canvasUi = buildCanvas(ui.canvas, layout, pick);
  ui.canvas.dataset.state = "running";
  ui.canvas.dataset.step = "0";
  player.show(0);
  setRunning(true);
  // a new fill clears an earlier error notice; the backend notice stays
  showBackend();
  const started = performance.now();
  const figures = (e) => {
    const s = (performance.now() - started) / 1000;
    $("f-step").textContent = String(e.step);
    $("f-nfe").textContent = String(e.nfe);
    $("f-ms").textContent = e.step ? ((s * 1000) / e.step).toFixed(1) : "–";
    $("f-tps").textContent = s > 0 ? (rec.committedTokens / s).toFixed(0) : "–";
  };
  let finished = false;
  player.play(
    () => rec.length,
    () => finished,
    frameMs,
    () => {
      ui.canvas.dataset.state = rec.done ? "done" : "stopped";
      setRunning(false);
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
    lastRunMs = result.ms;
    $("f-ms").textContent = result.steps ? (result.ms / result.steps).toFixed(1) : "–";
    $("f-tps").textContent = result.ms > 0 ? ((rec.committedTokens * 1000) / result.ms).toFixed(0) : "–";
    ui.canvas.setAttribute("aria-label", `Filled: ${result.text}`);
    const words = result.text.split(/\s+/).slice(0, 14).join(" ");
    if (ui.fwdText.dataset.touched !== "true") {
      ui.fwdText.value = words;
      refreshForward();
    }
  } catch (e) {
    // Disposed: a new model was loaded meanwhile
    if (e.name !== "Aborted" && e.name !== "Disposed") notice(describeError(e), "error");
  } finally {
    finished = true;
    run = null;
    ui.scrubber.max = String(rec.length);
    if (!player.playing) {
      ui.canvas.dataset.state = rec.done ? "done" : "stopped";
      setRunning(false);
    }
  }
}

function replay() {
  if (!rec || run) return;
  player.stop();
  player.show(0);
  ui.canvas.dataset.state = "replaying";
  player.play(
    () => rec.length,
    () => true,
    frameMs,
    () => {
      ui.canvas.dataset.state = rec.done ? "done" : "stopped";
      syncForward();
    },
  );
}

function scrubTo(k) {
  player.stop();
  player.show(k);
  ui.canvas.dataset.state = rec?.done ? "done" : "stopped";
  syncForward();
}

// ---------- candidates ----------

function pick(pos, cell) {
  selected = pos;
  ui.popover.hidden = false;
  showCandidates();
  drawFrame(player.k, false);
  ui.popover.dataset.pos = String(pos);
  cell?.setAttribute("aria-expanded", "true");
  $("cand-close").focus({ preventScroll: true });
}

function showCandidates() {
  if (!rec || selected === null) return;
  const info = rec.candidatesAt(selected, player.k);
  $("cand-t-val").textContent = Number(ui.candT.value).toFixed(2);
  $("cand-p-val").textContent = Number(ui.candP.value).toFixed(2);
  renderCandidates(
    { title: $("cand-h"), what: $("cand-what"), bars: $("cand-bars"), note: $("cand-note") },
    selected,
    player.k,
    info,
    { T: Number(ui.candT.value), topP: Number(ui.candP.value), seed: rec.meta.seed ?? 0 },
  );
}

function closeCandidates() {
  const had = selected;
  selected = null;
  ui.popover.hidden = true;
  if (had !== null && canvasUi) {
    const cell = canvasUi.cells.get(had);
    cell?.removeAttribute("aria-expanded");
    drawFrame(player.k, false);
    cell?.focus({ preventScroll: true });
  }
}

// ---------- the forward process ----------

const showFamilies = buildFamilies($("families"));
let fwdBusy = false;
let fwdAgain = false;

async function refreshForward() {
  const t = Number(ui.fwdT.value);
  $("fwd-t-val").textContent = t.toFixed(2);
  drawSchedule($("schedule"), schedule, t);
  if (!model) return;
  // one request in flight; a slider that moves meanwhile asks once more when it lands
  if (fwdBusy) {
    fwdAgain = true;
    return;
  }
  fwdBusy = true;
  try {
    const text = ui.fwdText.value;
    const seed = Math.max(0, Math.floor(Number(ui.fwdSeed.value) || 0));
    const results = await Promise.all(FAMILIES.map((f) => model.corrupt(text, { family: f.id, t, seed })));
    showFamilies(results);
    $("families").dataset.t = t.toFixed(2);
  } catch (e) {
    if (e.name !== "Busy") $("families").textContent = describeError(e);
  } finally {
    fwdBusy = false;
    if (fwdAgain) {
      fwdAgain = false;
      refreshForward();
    }
  }
}

/** The forward view follows the scrubber: t becomes the time the model saw at that step. */
function syncForward() {
  const e = rec?.event(player.k);
  if (!e) return;
  ui.fwdT.value = String(e.t);
  refreshForward();
}

// ---------- wiring ----------

function fillSelect(select, items, value) {
  select.replaceChildren(
    ...items.map((x) => {
      const o = document.createElement("option");
      o.value = x.value ?? x.id ?? x.text;
      o.textContent = x.name;
      return o;
    }),
  );
  if (value !== undefined) select.value = value;
}

function init() {
  fillSelect(ui.strategy, STRATEGIES, "");
  fillSelect($("examples"), [{ name: "choose…", text: "" }, ...EXAMPLES.map((e) => ({ name: e.name, text: e.text }))]);
  fillSelect($("race-a"), STRATEGIES.slice(1), "ancestral");
  fillSelect($("race-b"), STRATEGIES.slice(1), "top-prob");
  fillSelect(ui.preset, MODELS.map((m) => ({ id: m.id, name: m.name })), "default");
  const help = () => (ui.strategyHelp.textContent = STRATEGIES.find((s) => s.value === ui.strategy.value)?.help ?? "");
  help();
  const vals = () => {
    $("temperature-val").textContent = ui.temperature.dataset.touched
      ? Number(ui.temperature.value).toFixed(2)
      : "default";
    $("top-p-val").textContent = Number(ui.topP.value).toFixed(2);
  };
  vals();
  $("legend-bar").style.background = legendGradient(ui.colour.value);

  $("insert-mask").addEventListener("click", () => {
    const n = Math.max(1, Math.min(64, Math.floor(Number(ui.maskN.value) || 1)));
    insertAtCursor(n === 1 ? "[MASK]" : `[MASK*${n}]`);
  });
  $("rewrite").addEventListener("click", rewriteSelection);
  $("examples").addEventListener("change", (e) => {
    if (!e.target.value) return;
    ui.template.value = e.target.value;
    e.target.value = "";
    measureTemplate();
  });
  ui.template.addEventListener("input", measureTemplate);
  ui.template.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      fill();
    }
  });
  ui.fill.addEventListener("click", fill);
  ui.stop.addEventListener("click", () => {
    if (run) {
      run.controller.abort();
    } else if (player.playing && rec) {
      // the fill is done and the animation is catching up: jump to its end
      player.stop();
      player.show(rec.length);
      ui.canvas.dataset.state = rec.done ? "done" : "stopped";
      setRunning(false);
    }
  });
  $("reseed").addEventListener("click", () => {
    ui.seed.value = String(Math.floor(Math.random() * 1e6));
    rerun();
  });
  ui.strategy.addEventListener("change", () => {
    help();
    rerun();
  });
  ui.temperature.addEventListener("input", () => (ui.temperature.dataset.touched = "1"));
  for (const el of [ui.temperature, ui.topP]) {
    el.addEventListener("input", vals);
    el.addEventListener("change", rerun);
  }
  for (const el of [ui.steps, ui.seed]) el.addEventListener("change", rerun);
  ui.device.addEventListener("change", loadModel);

  ui.colour.addEventListener("change", () => {
    $("legend-bar").style.background = legendGradient(ui.colour.value);
    drawFrame(player.k, false);
    race?.redraw();
  });
  ui.replay.addEventListener("click", replay);
  ui.scrubber.addEventListener("input", () => scrubTo(Number(ui.scrubber.value)));

  $("cand-close").addEventListener("click", closeCandidates);
  ui.popover.addEventListener("keydown", (e) => {
    if (e.key === "Escape") closeCandidates();
  });
  for (const el of [ui.candT, ui.candP]) el.addEventListener("input", showCandidates);

  ui.fwdT.addEventListener("input", refreshForward);
  ui.fwdSeed.addEventListener("change", refreshForward);
  ui.fwdText.addEventListener("input", () => {
    ui.fwdText.dataset.touched = "true";
    refreshForward();
  });

  ui.preset.addEventListener("change", () => {
    $("custom-wrap").hidden = ui.preset.value !== "custom";
    updateCacheStatus();
  });
  $("load").addEventListener("click", loadModel);
  $("clear-cache").addEventListener("click", async () => {
    await clearCache();
    ui.progressText.textContent = "cache cleared";
    setTimeout(updateCacheStatus, 800);
  });

  race = new Race(
    { a: $("race-a"), b: $("race-b"), go: $("race-go"), laneA: $("lane-a"), laneB: $("lane-b"), statsA: $("lane-a-stats"), statsB: $("lane-b-stats"), nameA: $("lane-a-name"), nameB: $("lane-b-name"), scrubber: $("race-scrubber"), scrubVal: $("race-scrub-val") },
    {
      model: () => model,
      template: () => ui.template.value,
      options,
      colour: () => ui.colour.value,
      frameMs,
      busy: (on) => {
        ui.fill.disabled = on || !model;
        $("race-go").disabled = on || !model;
      },
      error: (e) => e.name !== "Disposed" && notice(describeError(e), "error"),
    },
  );

  drawSchedule($("schedule"), null, Number(ui.fwdT.value));
  loadModel();
}

/** Instant feedback: a sampler control that moves re-runs a fill that took under 3 s. */
let rerunTimer = null;
function rerun() {
  clearTimeout(rerunTimer);
  rerunTimer = setTimeout(() => {
    if (model && rec && !run && !ui.fill.disabled && lastRunMs < 3000 && ui.canvas.dataset.state === "done") fill();
  }, 250);
}

init();
