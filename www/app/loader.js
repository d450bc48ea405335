// The model: which one (the presets, a hub id or folder URL), its load in the package's worker
// (`worker: true`) with progress, the backend it got and why, and the browser's cache of it.
import { Unmask, isCached, clearCache, need } from "/unmask/index.web.js";
import { MODELS } from "./presets.js";
import { ui, notice, describeError, fillSelect, THREADS } from "./ui.js";

function mb(n) {
  return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} MB`;
}

/** What a model will take where it loads (the package's `need()` or the load's `memory` event). */
export function describeNeed(n) {
  if (n.refused) return `this device cannot hold it: ${n.refused}`;
  const where = n.backend === "webgpu" ? (n.toGpu ? `${mb(n.gpuBytes)} on the GPU (streamed straight there), ` : `${mb(n.gpuBytes)} on the GPU, `) : "";
  return `needs ${where}up to ${mb(n.wasmPeakBytes)} of WebAssembly memory`;
}

/** The progress line for one of `load`'s progress events. */
function showProgress(e) {
  if (e.phase === "download") {
    if (e.totalBytes) {
      ui.progress.max = e.totalBytes;
      ui.progress.value = e.totalLoaded;
    }
    ui.progressText.textContent = `${e.cached ? "from cache" : "downloading"} ${e.file}: ${mb(e.totalLoaded)}${e.totalBytes ? ` of ${mb(e.totalBytes)}` : ""}`;
  } else if (e.phase === "memory") {
    ui.progressText.title = describeNeed(e);
  } else if (e.phase === "compile") {
    ui.progressText.textContent = `building the model${e.parameters ? ` (${(e.parameters / 1e6).toFixed(1)} M parameters)` : ""} for ${e.backend === "webgpu" ? "WebGPU" : "the CPU"}…`;
  } else if (e.phase === "warmup") {
    ui.progressText.textContent = "warming up the shaders…";
  }
}

export class Loader {
  /**
   * `hooks.unloading()`: the current model is about to go (stop what uses it);
   * `hooks.ready(model)`: a new one is loaded.
   */
  constructor(hooks) {
    this.hooks = hooks;
    /** The loaded model (a RemoteUnmask: it runs in the package's worker), or null. */
    this.model = null;
    this.loading = null; // AbortController of the load in flight
    fillSelect(ui.preset, MODELS.map((m) => ({ id: m.id, name: m.name })), "default");
    ui.preset.addEventListener("change", () => {
      ui.customWrap.hidden = ui.preset.value !== "custom";
      // a preset with its own example (a general-English model) puts it in the editor
      const template = this.preset().template;
      if (template && ui.template.value !== template) {
        ui.template.value = template;
        ui.template.dispatchEvent(new Event("input"));
      }
      this.updateCacheStatus();
    });
    ui.load.addEventListener("click", () => this.load());
    ui.device.addEventListener("change", () => this.load());
    ui.clearCache.addEventListener("click", async () => {
      await clearCache();
      ui.progressText.textContent = "cache cleared";
      setTimeout(() => this.updateCacheStatus(), 800);
    });
  }

  preset() {
    return MODELS.find((m) => m.id === ui.preset.value) ?? MODELS[0];
  }

  /** The loaded model's block of positions when its preset loads it as block diffusion, else null. */
  blockLength() {
    const m = /^block:(\d+)$/.exec(this.loadedPreset?.attention ?? "");
    return m ? Number(m[1]) : null;
  }

  /** The preset's source; for "custom", what was typed (null when nothing was). */
  sourceOf(preset) {
    if (preset.id !== "custom") return preset.source;
    const s = ui.custom.value.trim();
    return s === "" ? null : s;
  }

  async updateCacheStatus() {
    const preset = this.preset();
    const source = this.sourceOf(preset);
    ui.presetHelp.textContent = preset.help;
    if (source === null) return;
    let line = "";
    try {
      const hit = await isCached(source, { tokenizer: preset.tokenizer });
      line = preset.bundled ? "served with the page" + (hit ? " · in this browser's cache" : "") : hit ? "in this browser's cache" : "not cached: it will be downloaded";
      ui.progressText.textContent = line;
    } catch {
      ui.progressText.textContent = "";
      return;
    }
    if (preset.bundled) return;
    // before any download: the memory it will take here, from its config and header (a few kB)
    try {
      const device = ui.device.value;
      const n = await need(source, { device, tokenizer: preset.tokenizer, ...(preset.weights ? { weights: preset.weights } : {}) });
      if (this.preset() !== preset) return;
      ui.progressText.textContent = `${line} (${mb(n.fileBytes)}) · ${describeNeed(n)}`;
      ui.progressText.dataset.need = JSON.stringify(n);
    } catch {
      // offline or a bad id: the load itself says what is wrong
    }
  }

  /** The backend pill, and a notice when the model runs on the CPU without having asked to. */
  showBackend() {
    const model = this.model;
    if (!model) return;
    const r = model.backendReason;
    const gpu = model.backend === "webgpu";
    ui.backend.textContent = gpu ? `WebGPU · ${r.adapter ?? "adapter"}` : `CPU · WebAssembly${model.threads > 1 ? ` · ${model.threads} threads` : ""}`;
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

  async load() {
    const preset = this.preset();
    const source = this.sourceOf(preset);
    if (source === null) {
      notice("Type a hub id (owner/name) or a folder URL first.", "error");
      ui.custom.focus();
      return;
    }
    this.loading?.abort();
    const controller = new AbortController();
    this.loading = controller;
    this.hooks.unloading();
    this.model?.dispose();
    this.model = null;
    this.loadedPreset = null;
    ui.backend.textContent = "loading…";
    ui.modelName.textContent = preset.id === "custom" ? source : preset.name.split(" — ")[0];
    ui.progress.value = 0;
    ui.progress.removeAttribute("max");
    ui.progress.dataset.state = "loading";
    delete ui.progressText.dataset.error;
    try {
      const m = await Unmask.load(source, {
        worker: true,
        device: ui.device.value,
        // every core where the page is cross-origin isolated (coi-sw.js), else one
        threads: THREADS,
        tokenizer: preset.tokenizer,
        // Qwen3 A2D: which attention the checkpoint was trained with, and its weights as q8
        ...(preset.attention ? { attention: preset.attention } : {}),
        ...(preset.weights ? { weights: preset.weights } : {}),
        signal: controller.signal,
        onProgress: showProgress,
      });
      if (this.loading !== controller) {
        m.dispose();
        return;
      }
      this.model = m;
      this.loadedPreset = preset;
      ui.progress.max = 1;
      ui.progress.value = 1;
      ui.progressText.textContent = "ready";
      ui.progress.dataset.state = "ready";
      this.showBackend();
      await this.hooks.ready(m);
      this.updateCacheStatus();
    } catch (e) {
      if (this.loading !== controller) return;
      ui.backend.textContent = "no model";
      ui.progress.max = 1;
      ui.progress.value = 0;
      ui.progress.dataset.state = "error";
      // a model this device cannot hold is refused with the reason (ModelTooLarge, from the
      // checkpoint's header, before the rest downloads): the status line says so, not only the notice
      ui.progressText.textContent = describeError(e);
      ui.progressText.dataset.error = e?.code ?? "Error";
      notice(describeError(e), "error");
    } finally {
      if (this.loading === controller) this.loading = null;
    }
  }
}
