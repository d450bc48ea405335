// The page's elements, looked up once, and its notice line. Every module reads the DOM
// through `ui`.

const $ = (id) => document.getElementById(id);

/**
 * Threads of the CPU path: all the cores (the package's "auto") on a cross-origin-isolated
 * page, which coi-sw.js makes of a static host from the second visit; else one.
 */
export const THREADS = globalThis.crossOriginIsolated ? "auto" : 1;

export const ui = {
  // the editor and the sampler
  template: $("template"),
  maskN: $("mask-n"),
  insertMask: $("insert-mask"),
  rewrite: $("rewrite"),
  examples: $("examples"),
  measure: $("measure"),
  strategy: $("strategy"),
  strategyHelp: $("strategy-help"),
  steps: $("steps"),
  temperature: $("temperature"),
  temperatureVal: $("temperature-val"),
  topP: $("top-p"),
  topPVal: $("top-p-val"),
  seed: $("seed"),
  reseed: $("reseed"),
  device: $("device"),
  fill: $("fill"),
  stop: $("stop"),
  figures: { step: $("f-step"), nfe: $("f-nfe"), ms: $("f-ms"), tps: $("f-tps") },
  // the canvas and its player
  canvas: $("canvas"),
  colour: $("colour"),
  legendBar: $("legend-bar"),
  replay: $("replay"),
  speed: $("speed"),
  scrubber: $("scrubber"),
  scrubVal: $("scrub-val"),
  // the candidates popover
  popover: $("candidates"),
  candTitle: $("cand-h"),
  candWhat: $("cand-what"),
  candBars: $("cand-bars"),
  candNote: $("cand-note"),
  candClose: $("cand-close"),
  candT: $("cand-t"),
  candTVal: $("cand-t-val"),
  candP: $("cand-p"),
  candPVal: $("cand-p-val"),
  // the forward process
  fwdText: $("fwd-text"),
  fwdT: $("fwd-t"),
  fwdTVal: $("fwd-t-val"),
  fwdSeed: $("fwd-seed"),
  families: $("families"),
  schedule: $("schedule"),
  // the race
  race: {
    mode: $("race-mode"),
    controls: $("race-controls"),
    lanes: $("lanes"),
    famA: $("race-fam-a"),
    famB: $("race-fam-b"),
    famAWrap: $("race-fam-a-wrap"),
    famBWrap: $("race-fam-b-wrap"),
    a: $("race-a"),
    b: $("race-b"),
    go: $("race-go"),
    laneA: $("lane-a"),
    laneB: $("lane-b"),
    statsA: $("lane-a-stats"),
    statsB: $("lane-b-stats"),
    nameA: $("lane-a-name"),
    nameB: $("lane-b-name"),
    measuredA: $("lane-a-measured"),
    measuredB: $("lane-b-measured"),
    scrubber: $("race-scrubber"),
    scrubVal: $("race-scrub-val"),
  },
  // the model
  notice: $("notice"),
  backend: $("backend"),
  modelName: $("model-name"),
  preset: $("preset"),
  presetHelp: $("preset-help"),
  custom: $("custom"),
  customWrap: $("custom-wrap"),
  load: $("load"),
  clearCache: $("clear-cache"),
  progress: $("progress"),
  progressText: $("progress-text"),
};

/** The notice under the header: `null` hides it. */
export function notice(text, kind = "info") {
  ui.notice.hidden = !text;
  ui.notice.textContent = text ?? "";
  ui.notice.className = kind === "error" ? "notice error" : "notice";
}

/** An error as the page says it: the package's `code` in words where it has some. */
export function describeError(e) {
  const what = {
    BadModel: "The model could not be read",
    ModelTooLarge: "This model is too large for this device",
    WebGPUUnavailable: "WebGPU is not available",
    DeviceLost: "The GPU device was lost",
    OutOfMemory: "Out of memory",
    Aborted: "Stopped",
  }[e?.code];
  // (the engine's message repeats the kind: "model too large: model.safetensors: …")
  const message = e?.code === "ModelTooLarge" ? String(e.message).replace(/^model too large: /, "") : e?.message;
  return what ? `${what}: ${message}` : `${e?.name ?? "Error"}: ${message ?? e}`;
}

/** Options of a `<select>`: `{ value (or id or text), name }` each. */
export function fillSelect(select, items, value) {
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
