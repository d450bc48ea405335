// The package's JS layer over the wasm-bindgen class: where the files come from (the default
// model shipped beside the .wasm, a folder URL, a hub id, or bytes in memory), progress
// events, AbortSignal checks, and the same JSON shapes as the CLI. The platform entries
// (index.web.js, index.node.js) only say how to read a file and start the module.

import { Unmask as Raw } from "./wasm/unmask_wasm.js";

const FILES = ["config.json", "model.safetensors", "tokenizer.json"];

/** A hub id (`owner/name`) becomes the hub's resolve URLs; anything else is a folder. */
export function folderOf(source) {
  if (/^[\w.-]+\/[\w.-]+$/.test(source) && !source.startsWith(".")) {
    return `https://huggingface.co/${source}/resolve/main/`;
  }
  return source.endsWith("/") ? source : `${source}/`;
}

function abortError() {
  const e = new Error("the operation was aborted");
  e.name = "Aborted";
  return e;
}

function checkSignal(signal) {
  if (signal?.aborted) throw abortError();
}

/**
 * One turn of the event loop, awaited before every step of a fill. Mostly a MessageChannel
 * message, which is not clamped to 4 ms the way nested timeouts are in browsers; every 8th turn
 * is a timeout, because message turns can starve timers (seen in Node), and an abort may come
 * from one. The channel is closed when the fill ends.
 */
function eventLoopTurns() {
  const timeout = () => new Promise((r) => setTimeout(r, 0));
  if (typeof MessageChannel === "undefined") return { pause: timeout, close() {} };
  const channel = new MessageChannel();
  const waiting = [];
  let turns = 0;
  channel.port1.onmessage = () => waiting.shift()?.();
  return {
    pause() {
      turns += 1;
      if (turns % 8 === 0) return timeout();
      return new Promise((r) => {
        waiting.push(r);
        channel.port2.postMessage(0);
      });
    },
    close() {
      channel.port1.close();
      channel.port2.close();
    },
  };
}

/** `model.steps()`: the events of one fill, as an async iterable (after the fill has run). */
export async function* stepsOf(model, template, options = {}) {
  const events = [];
  await model.infill(template, { ...options, onStep: (e) => events.push(e) });
  yield* events;
}

export function makeUnmask(platform) {
  return class Unmask {
    #raw;

    constructor(raw) {
      this.#raw = raw;
    }

    /**
     * Loads a model. `source`: nothing (the default model shipped with the package), a folder
     * URL or path in Hugging Face layout, a hub id, or `{ config, weights, tokenizer }` bytes.
     */
    static async load(source, options = {}) {
      if (options.worker) {
        if (!platform.loadInWorker) throw Object.assign(new Error("worker: true needs a browser"), { name: "BadInput" });
        return platform.loadInWorker(source, options);
      }
      const { device = "auto", weights: weightFormat, onProgress, signal, cache } = options;
      await platform.init(options.wasmUrl);
      checkSignal(signal);
      let files;
      if (source && typeof source === "object" && "weights" in source) {
        files = source;
      } else {
        const where = source === undefined || source === null ? null : folderOf(String(source));
        const sizes = await Promise.all(FILES.map((f) => platform.size(where, f, signal, { cache })));
        const total = sizes.every((s) => s !== null) ? sizes.reduce((a, b) => a + b, 0) : null;
        const loaded = new Array(FILES.length).fill(0);
        const bytes = [];
        for (const [i, file] of FILES.entries()) {
          bytes.push(
            await platform.read(where, file, signal, { cache }, (n) => {
              loaded[i] = n;
              onProgress?.({
                phase: "download",
                file,
                loaded: n,
                total: sizes[i],
                totalLoaded: loaded.reduce((a, b) => a + b, 0),
                totalBytes: total,
              });
            }),
          );
          checkSignal(signal);
        }
        files = {
          config: new TextDecoder().decode(bytes[0]),
          weights: bytes[1],
          tokenizer: bytes[2],
        };
      }
      onProgress?.({ phase: "compile" });
      const config = typeof files.config === "string" ? files.config : new TextDecoder().decode(files.config);
      const raw = await Raw.fromFiles(config, files.weights, files.tokenizer, {
        device,
        ...(weightFormat ? { weights: weightFormat } : {}),
      });
      onProgress?.({ phase: "ready", backend: raw.backend });
      return new Unmask(raw);
    }

    /** `"webgpu"` or `"wasm"`. */
    get backend() {
      return this.#raw.backend;
    }

    /** Why that backend: `{ backend, adapter, reason: { kind } }`. */
    get backendReason() {
      return this.#raw.backendReason;
    }

    /**
     * Fills a template's holes. Resolves to `{ text, holes, steps, nfe, ms }`; `onStep` sees
     * each step as a `--trace` line does, then the `{ done: true, … }` event.
     */
    async infill(template, options = {}) {
      const { onStep, signal, ...request } = options;
      checkSignal(signal);
      // a step event lists each committed position's most likely tokens, for teaching views
      if (onStep && request.candidates === undefined) request.candidates = 5;
      const turns = eventLoopTurns();
      try {
        return await this.#raw.infill(template, request, onStep ?? undefined, signal ?? undefined, turns.pause);
      } finally {
        turns.close();
      }
    }

    /** The same events as `onStep`, as an async iterable (after the fill has run). */
    steps(template, options = {}) {
      return stepsOf(this, template, options);
    }

    /** Frees the model now. */
    dispose() {
      this.#raw.dispose();
    }
  };
}
