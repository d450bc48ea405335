// The package's JS layer over the wasm-bindgen classes: where the files come from (the
// models shipped beside the .wasm, a folder URL, a hub id, or bytes in memory), progress
// events, AbortSignal checks, errors with stable names (protocol.js), and the same JSON shapes
// as the CLI. The platform entries (index.web.js, index.node.js) only say how to start the
// module and how to open a file as a stream of chunks. Every public function checks its
// arguments (args.js) before anything enters the module.
import * as args from "./args.js";
import { isNamed, namedError } from "./protocol.js";

/** @typedef {typeof import("./wasm/unmask_wasm.js")} Wasm the wasm-bindgen module */
/** @typedef {import("./index.js").Model} Model */
/** @typedef {import("./index.js").LoadOptions} LoadOptions */
/** @typedef {import("./index.js").InfillOptions} InfillOptions */
/** @typedef {import("./index.js").InfillResult} InfillResult */
/** @typedef {import("./index.js").FillEvent} FillEvent */
/** @typedef {import("./index.js").ThreadPlan} ThreadPlan */
/** @typedef {import("./index.js").ModelFiles} ModelFiles */
/** @typedef {import("./remote.js").RemoteUnmask} RemoteUnmask */

/**
 * A file's bytes as the module reads them, chunk by chunk (`null` at the end).
 * @typedef {object} ByteSource
 * @property {boolean} cached served from the Cache API rather than the network
 * @property {number} [size]
 * @property {() => Promise<Uint8Array | null>} next
 * @property {(why?: unknown) => Promise<void>} cancel
 * @property {() => Promise<void>} done
 */

/**
 * Where a model's files are: a folder URL or path, or `{ bundled }`, one of the models shipped
 * with the package (`default` in its model/ folder, the others in models/NAME/).
 * @typedef {string | { bundled: import("./index.js").BundledModel }} Where
 */

/**
 * The folder of a bundled model's files, relative to the package's root.
 * @param {import("./index.js").BundledModel} name
 */
export function bundledFolder(name) {
  return name === "default" ? "model/" : `models/${name}/`;
}

/**
 * What an entry point (index.web.js, index.node.js) gives `makeUnmask`; `where` says whose
 * files (`Where`).
 * @typedef {object} Platform
 * @property {(options: LoadOptions, quiet?: boolean) => Promise<{ wasm: Wasm, threads: ThreadPlan }>} init
 *   Starts the module once per realm (the first call decides); `quiet`: no console notice
 *   about threads (a call that loads no model).
 * @property {(where: Where, file: string, signal: AbortSignal | undefined, options: { cache?: boolean }) => Promise<number | null>} size
 * @property {(where: Where, file: string, signal: AbortSignal | undefined, options: { cache?: boolean }) => Promise<ByteSource>} open
 * @property {(source: string | URL | ModelFiles | undefined, options: LoadOptions) => Promise<RemoteUnmask>} [loadInWorker]
 */

// config and tokenizer first (small, needed to choose and check), the weights streamed last
const FILES = /** @type {const} */ ([
  { file: "config.json", key: "config" },
  { file: "tokenizer.json", key: "tokenizer" },
  { file: "model.safetensors", key: "weights" },
]);

/**
 * A hub id (`owner/name`) becomes the hub's resolve URLs; anything else is a folder.
 * @param {string} source
 * @returns {string}
 */
export function folderOf(source) {
  if (/^[\w.-]+\/[\w.-]+$/.test(source) && !source.startsWith(".")) {
    return `https://huggingface.co/${source}/resolve/main/`;
  }
  return source.endsWith("/") ? source : `${source}/`;
}

function disposedError() {
  return namedError("Disposed", "this model was disposed");
}

function abortError() {
  return namedError("Aborted", "the operation was aborted");
}

/** @param {AbortSignal | undefined} signal */
function checkSignal(signal) {
  if (signal?.aborted) throw abortError();
}

/**
 * Runs a call into the module. A Rust panic traps as WebAssembly's bare "unreachable"; it
 * becomes an `Error` named `InternalError` carrying the panic's own message instead. The
 * module's own errors already have their name and code (lib.rs `js_error`); anything else (an
 * exception thrown by `onStep` or `onProgress`) passes through untouched.
 * @template T
 * @param {Wasm} wasm
 * @param {() => T | Promise<T>} call
 * @returns {Promise<T>}
 */
async function guarded(wasm, call) {
  try {
    return await call();
  } catch (e) {
    if (typeof WebAssembly !== "undefined" && e instanceof WebAssembly.RuntimeError) {
      const why = wasm.lastPanic?.() ?? e.message;
      throw namedError("InternalError", `unmask failed inside its module: ${why} (this is a bug; load the model again)`);
    }
    throw e;
  }
}

/**
 * The package spells `nats_per_token` as `natsPerToken`, like its other fields; the old name
 * stays beside it (deprecated) for code written against it.
 * @template {object} T
 * @param {T} x an event or a result
 * @returns {T}
 */
function camelCased(x) {
  const lengths = /** @type {{ lengths?: unknown }} */ (x).lengths;
  if (Array.isArray(lengths)) for (const c of lengths) c.natsPerToken = c.nats_per_token;
  return x;
}

/**
 * One turn of the event loop, awaited before every step of a fill. Mostly a MessageChannel
 * message, which is not clamped to 4 ms the way nested timeouts are in browsers; every 8th turn
 * is a timeout, because message turns can starve timers (seen in Node), and an abort may come
 * from one. The channel is closed when the fill ends.
 */
function eventLoopTurns() {
  /** @returns {Promise<void>} */
  const timeout = () => new Promise((r) => setTimeout(r, 0));
  if (typeof MessageChannel === "undefined") return { pause: timeout, close() {} };
  const channel = new MessageChannel();
  /** @type {(() => void)[]} */
  const waiting = [];
  let turns = 0;
  channel.port1.onmessage = () => waiting.shift()?.();
  return {
    /** @returns {Promise<void>} */
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

/**
 * `model.steps()`: the events of one fill as an async iterable, each yielded as its step
 * happens. Leaving the loop early (`break`, an exception) stops the fill. The arguments are
 * checked at once, so a bad one throws from `steps()` itself, before any iteration.
 * @param {Model} model
 * @param {string} template
 * @param {InfillOptions} [options]
 * @returns {AsyncIterable<FillEvent>}
 */
export function stepsOf(model, template, options) {
  args.template("steps", template);
  return stepsOfChecked(model, template, args.infillOptions("steps", options));
}

/**
 * @param {Model} model
 * @param {string} template
 * @param {InfillOptions} options
 * @returns {AsyncGenerator<FillEvent>}
 */
async function* stepsOfChecked(model, template, options) {
  const { signal, onStep, ...rest } = options;
  const stop = new AbortController();
  const forward = () => stop.abort();
  if (signal?.aborted) stop.abort();
  signal?.addEventListener("abort", forward, { once: true });
  /** @type {FillEvent[]} */
  const queue = [];
  /** @type {(() => void) | null} */
  let wake = null;
  let finished = false;
  /** @type {unknown} */
  let failure = null;
  const run = model
    .infill(template, {
      ...rest,
      signal: stop.signal,
      onStep: (e) => {
        onStep?.(e);
        queue.push(e);
        /** @type {(() => void) | null} */ (wake)?.();
      },
    })
    .then(
      () => {
        finished = true;
        /** @type {(() => void) | null} */ (wake)?.();
      },
      (e) => {
        failure = e;
        finished = true;
        /** @type {(() => void) | null} */ (wake)?.();
      },
    );
  try {
    for (;;) {
      const next = queue.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (finished) {
        if (failure) throw failure;
        return;
      }
      await new Promise((r) => (wake = () => r(undefined)));
      wake = null;
    }
  } finally {
    signal?.removeEventListener("abort", forward);
    if (!finished) {
      stop.abort();
      await run;
    }
  }
}

/**
 * A byte source over bytes already in memory, in chunks (never one copy of the whole).
 * @param {string | Uint8Array} bytes
 * @returns {ByteSource}
 */
function memorySource(bytes) {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  const CHUNK = 1 << 20;
  let at = 0;
  return {
    cached: false,
    size: data.byteLength,
    async next() {
      if (at >= data.byteLength) return null;
      const part = data.subarray(at, at + CHUNK);
      at += part.byteLength;
      return part;
    },
    async cancel() {},
    async done() {},
  };
}

/**
 * A failure while reading `file`, as the package names errors: an abort stays `Aborted`, the
 * module's own errors keep their names, anything else (a dropped connection, a read error) is
 * `BadModel` naming the file.
 * @param {unknown} e
 * @param {string} file
 * @param {AbortSignal | undefined} signal
 * @returns {Error}
 */
function readFailure(e, file, signal) {
  if (signal?.aborted) return abortError();
  if (isNamed(e)) return e;
  return namedError("BadModel", `${file}: could not be read (${e instanceof Error ? e.message : String(e)})`);
}

/**
 * @param {Uint8Array[]} parts
 * @param {number} n their total length
 */
function concat(parts, n) {
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * The memory figures of a header's info, as the `memory` event and `need` give them.
 * @param {import("./index.js").CheckpointNeed} info
 * @returns {import("./index.js").CheckpointNeed}
 */
function memoryOf(info) {
  const { fileBytes, f32Bytes, tensors, wasmBytes, wasmPeakBytes, gpuBytes, toGpu, backend, refused } = info;
  return { fileBytes, f32Bytes, tensors, wasmBytes, wasmPeakBytes, gpuBytes, toGpu, backend, refused: refused ?? null };
}

/**
 * @param {ByteSource} source
 * @param {(n: number) => void} progress
 * @param {AbortSignal | undefined} signal
 * @returns {Promise<Uint8Array>}
 */
async function readWhole(source, progress, signal) {
  /** @type {Uint8Array[]} */
  const parts = [];
  let n = 0;
  for (let chunk; (chunk = await source.next()) !== null; ) {
    parts.push(chunk);
    n += chunk.byteLength;
    progress(n);
    checkSignal(signal);
  }
  await source.done();
  return concat(parts, n);
}

/**
 * The `Unmask` class of an entry point, over its platform.
 * @param {Platform} platform
 */
export function makeUnmask(platform) {
  /** @implements {Model} */
  class Unmask {
    /** @type {import("./wasm/unmask_wasm.js").Unmask} */
    #raw;
    /** @type {Wasm} */
    #wasm;
    /** @type {ThreadPlan} */
    #threads;
    #disposed = false;

    /** `Disposed` once `dispose` was called (a fill then in flight still finishes). */
    #live() {
      if (this.#disposed) throw disposedError();
    }

    /**
     * Made by `load`, not by hand.
     * @param {import("./wasm/unmask_wasm.js").Unmask} raw
     * @param {Wasm} wasm
     * @param {ThreadPlan} threads
     */
    constructor(raw, wasm, threads) {
      this.#raw = raw;
      this.#wasm = wasm;
      this.#threads = threads;
    }

    /**
     * Loads a model. `source`: nothing (the default model shipped with the package), a bundled
     * model's name (`"default"`, `"uniform"`, `"gaussian"`, `"bits"`, `"dreamon"`: these win over a folder of
     * that name, which is written `./uniform`), a folder URL or path in Hugging Face layout, a hub id, or
     * `{ config, weights, tokenizer }` bytes.
     * With `worker: true` the model runs in a module worker: a `RemoteUnmask`.
     * @overload
     * @param {string | URL | ModelFiles | null | undefined} source
     * @param {LoadOptions & { worker: true }} options
     * @returns {Promise<RemoteUnmask>}
     */
    /**
     * @overload
     * @param {string | URL | ModelFiles | null} [source]
     * @param {LoadOptions & { worker?: false }} [options]
     * @returns {Promise<Unmask>}
     */
    /**
     * @overload
     * @param {string | URL | ModelFiles | null} [source]
     * @param {LoadOptions} [options]
     * @returns {Promise<Unmask | RemoteUnmask>}
     */
    /**
     * @param {string | URL | ModelFiles | null} [source]
     * @param {LoadOptions} [options]
     * @returns {Promise<Unmask | RemoteUnmask>}
     */
    static async load(source, options) {
      const checked = args.loadOptions(options);
      const from = args.loadSource(source, checked);
      if (checked.worker) {
        if (!platform.loadInWorker) throw namedError("BadInput", "load: options.worker must be false here, not true: a worker needs a browser");
        return platform.loadInWorker(from.kind === "files" ? from.files : from.kind === "folder" ? from.where : from.name, checked);
      }
      const { device = "auto", weights: weightFormat, attention, onProgress, signal, cache } = checked;
      const { wasm, threads } = await platform.init(checked);
      checkSignal(signal);
      /** @param {import("./index.js").ProgressEvent} event */
      const emit = (event) => onProgress?.(event);
      const files = from.kind === "files" ? from.files : null;
      /** @type {Where} */
      const where = from.kind === "folder" ? folderOf(String(from.where)) : { bundled: from.kind === "bundled" ? from.name : "default" };
      // a checkpoint may ship without its tokenizer (kuleshov-group/mdlm-owt uses GPT-2's):
      // `tokenizer` names the folder or hub id that tokenizer.json is read from instead
      const tokenizerFrom = checked.tokenizer === undefined || checked.tokenizer === null ? null : folderOf(String(checked.tokenizer));
      /**
       * Each file, and where it comes from: bytes in memory, or a folder or bundled model.
       * @type {({ file: (typeof FILES)[number]["file"], bytes: string | Uint8Array } | { file: (typeof FILES)[number]["file"], bytes?: undefined, where: Where })[]}
       */
      const parts = FILES.map(({ file, key }) => {
        if (key === "tokenizer" && tokenizerFrom !== null) return { file, where: tokenizerFrom };
        // (args.loadSource made sure the tokenizer's bytes are there when no folder is named)
        if (files !== null) return { file, bytes: /** @type {string | Uint8Array} */ (files[key]) };
        return { file, where };
      });
      /** @param {(typeof parts)[number]} part */
      const open = (part) => (part.bytes !== undefined ? memorySource(part.bytes) : platform.open(part.where, part.file, signal, { cache }));
      /** @param {string | Uint8Array} b */
      const byteLength = (b) => (typeof b === "string" ? new TextEncoder().encode(b).byteLength : b.byteLength);
      // every file's size before the first byte, so the total progress is known from the start;
      // asked all at once, but a failure is reported in file order (config.json's first), not
      // in the order the answers happen to come back
      const asked = await Promise.allSettled(
        parts.map(async (part) => (part.bytes !== undefined ? byteLength(part.bytes) : platform.size(part.where, part.file, signal, { cache }))),
      );
      const sizes = asked.map((a) => {
        if (a.status === "rejected") throw a.reason;
        return a.value;
      });
      const totalBytes = sizes.every((s) => s !== null) ? sizes.reduce((a, b) => a + b, 0) : null;
      const loaded = parts.map(() => 0);
      /**
       * @param {number} i
       * @param {boolean} cached
       */
      const progress = (i, cached) => (/** @type {number} */ n) => {
        loaded[i] = n;
        emit({
          phase: "download",
          file: parts[i].file,
          loaded: n,
          total: sizes[i],
          totalLoaded: loaded.reduce((a, b) => a + b, 0),
          totalBytes,
          cached,
        });
      };
      /** @type {Uint8Array[]} */
      const small = [];
      for (const i of [0, 1]) {
        try {
          const src = await open(parts[i]);
          small.push(await readWhole(src, progress(i, src.cached), signal));
        } catch (e) {
          throw readFailure(e, parts[i].file, signal);
        }
      }
      const settings = { device, ...(weightFormat ? { weights: weightFormat } : {}), ...(attention ? { attention } : {}) };
      const loader = await guarded(wasm, () => wasm.Loader.create(new TextDecoder().decode(small[0]), small[1], settings));
      /** @type {import("./index.js").CheckpointNeed | null} */
      let header = null;
      let consumed = false;
      try {
        const src = await Promise.resolve(open(parts[2])).catch((e) => {
          throw readFailure(e, parts[2].file, signal);
        });
        const report = progress(2, src.cached);
        try {
          let n = 0;
          for (let chunk; (chunk = await src.next()) !== null; ) {
            // the push that completes the header checks that the model fits (ModelTooLarge),
            // so an oversized checkpoint stops after its first bytes
            const c = chunk;
            const info = await guarded(wasm, () => loader.push(c));
            if (info && !header) {
              header = info;
              // stated as soon as the header is in, before the weights come
              emit({ phase: "memory", ...memoryOf(info) });
            }
            n += chunk.byteLength;
            report(n);
            checkSignal(signal);
          }
        } catch (e) {
          await src.cancel(e);
          throw readFailure(e, parts[2].file, signal);
        }
        await src.done();
        const backend = loader.backend;
        emit({ phase: "compile", backend, parameters: header ? header.f32Bytes / 4 : null });
        consumed = true;
        const raw = await guarded(wasm, () => loader.finish((/** @type {"warmup"} */ phase) => emit({ phase, backend })));
        emit({ phase: "ready", backend: raw.backend });
        return new Unmask(raw, wasm, threads);
      } finally {
        if (!consumed) loader.free();
      }
    }

    /** `"webgpu"` or `"wasm"`. */
    get backend() {
      return this.#raw.backend;
    }

    /** The diffusion family the model was trained for; `strategies()` says which strategies fit it. */
    get family() {
      return this.#raw.family;
    }

    /**
     * Why that backend: `{ backend, adapter, reason: { kind }, threads: { count, reason } }`;
     * `threads` is the CPU path's pool and why it has that size.
     * @returns {import("./index.js").BackendReason}
     */
    get backendReason() {
      const r = this.#raw.backendReason;
      return { ...r, reason: /** @type {import("./index.js").BackendReason["reason"]} */ (r.reason), threads: this.#threads };
    }

    /** Threads of the CPU path (1 unless the page is cross-origin isolated and this runs in a worker). */
    get threads() {
      return this.#threads.count;
    }

    /** What the model holds: this module's wasm memory (its peak: it never shrinks) and the GPU's weight buffers. */
    get memory() {
      return { wasmBytes: this.#wasm.wasmMemoryBytes(), gpuBytes: this.#raw.gpuWeightBytes };
    }

    /** Bytes read back from the GPU since loading (0 on the CPU); live during a fill. */
    get readbackBytes() {
      return this.#raw.readbackBytes;
    }

    /**
     * Fills a template's holes. Resolves to `{ text, holes, steps, nfe, ms }`; `onStep` sees
     * each step as a `--trace` line does, then the `{ done: true, … }` event.
     * @param {string} template
     * @param {InfillOptions} [options]
     * @returns {Promise<InfillResult>}
     */
    async infill(template, options) {
      args.template("infill", template);
      const { onStep, signal, ...request } = args.infillOptions("infill", options);
      this.#live();
      checkSignal(signal);
      // a step event lists each committed position's most likely tokens, for teaching views
      if (onStep && request.candidates === undefined) request.candidates = 5;
      const turns = eventLoopTurns();
      try {
        const result = await guarded(this.#wasm, () =>
          this.#raw.infill({
            template,
            options: request,
            onStep: onStep && ((/** @type {FillEvent} */ e) => onStep(camelCased(e))),
            signal,
            pause: turns.pause,
          }),
        );
        return camelCased(/** @type {InfillResult} */ (result));
      } finally {
        turns.close();
      }
    }

    /**
     * `{ tokens, holes, maxTokens }`: how a template lays out on the canvas, without running it.
     * @param {string} template
     * @param {import("./index.js").LayoutOptions} [options]
     * @returns {Promise<import("./index.js").Measure>}
     */
    async measure(template, options) {
      args.template("measure", template);
      const checked = args.layoutOptions("measure", options);
      this.#live();
      return guarded(this.#wasm, () => this.#raw.measure(template, checked));
    }

    /**
     * `{ tokens, slots }`: the template on the canvas, for drawing it. Each slot is
     * `{ known }` (the user's text, verbatim) or `{ hole: [start, end], afterSpace, original? }`.
     * Holes of unknown length: on a model that grows them, the canvas the fill starts from
     * (`options.holeStart`), which its `expand` and `delete` events re-index; elsewhere only at
     * the `options.lengths` given.
     * @param {string} template
     * @param {import("./index.js").LayoutOptions} [options]
     * @returns {Promise<import("./index.js").Layout>}
     */
    async layout(template, options) {
      args.template("layout", template);
      const checked = args.layoutOptions("layout", options);
      this.#live();
      return guarded(this.#wasm, () => this.#raw.layout(template, checked));
    }

    /**
     * A diffusion family's forward (noising) process on `text` at time `t`, on this model's
     * vocabulary: `{ family, t, noise, tokens: [{ id, text, originalId, originalText, masked,
     * changed, valid }] }`. Works while a fill runs.
     * @param {string} text
     * @param {import("./index.js").CorruptOptions} [options]
     * @returns {Promise<import("./index.js").CorruptResult>}
     */
    async corrupt(text, options) {
      args.corruptText(text);
      const checked = args.corruptOptions(options);
      this.#live();
      return guarded(this.#wasm, () => this.#raw.corrupt(text, checked));
    }

    /**
     * `{ name, masked: [[t, 1 − α_t], …], continuous: [[t, 1 − ᾱ(t)], …] }` at `points` times in [0, 1].
     * @param {number} [points]
     * @returns {Promise<import("./index.js").NoiseSchedule>}
     */
    async schedule(points = 101) {
      args.schedulePoints(points);
      this.#live();
      return guarded(this.#wasm, () => this.#raw.schedule(Math.min(1000, Math.max(2, Math.round(points)))));
    }

    /**
     * The same events as `onStep`, as an async iterable, live as the fill runs.
     * @param {string} template
     * @param {InfillOptions} [options]
     * @returns {AsyncIterable<FillEvent>}
     */
    steps(template, options) {
      return stepsOf(this, template, options);
    }

    /** Frees the model now; every later call is `Disposed`. */
    dispose() {
      this.#disposed = true;
      this.#raw.dispose();
    }
  }
  return Unmask;
}

/**
 * The functions that need the module but no model (`strategies`, `reapply`), over an entry's
 * platform: the first call starts the module as a first `load` would (quietly).
 * @param {Platform} platform
 */
export function makeTools(platform) {
  const wasm = async () => (await platform.init({}, true)).wasm;
  return {
    /**
     * The memory a model will need where it would load with these options, before it
     * downloads: reads its config.json and the header at the front of model.safetensors (a few
     * kB), then stops the download.
     * @param {string | URL | ModelFiles | null} [source]
     * @param {LoadOptions} [options]
     * @returns {Promise<import("./index.js").CheckpointNeed>}
     */
    async need(source, options) {
      const checked = args.loadOptions(options);
      const from = args.loadSource(source, checked);
      const { device = "auto", weights, attention, signal, cache } = checked;
      const w = await wasm();
      checkSignal(signal);
      const files = from.kind === "files" ? from.files : null;
      /** @type {Where} */
      const where = from.kind === "folder" ? folderOf(String(from.where)) : { bundled: from.kind === "bundled" ? from.name : "default" };
      /** @param {"config.json" | "model.safetensors"} file */
      const open = async (file) => {
        try {
          if (files !== null) return memorySource(file === "config.json" ? files.config : files.weights);
          return await platform.open(where, file, signal, { cache });
        } catch (e) {
          throw readFailure(e, file, signal);
        }
      };
      const config = new TextDecoder().decode(await readWhole(await open("config.json"), () => {}, signal));
      const src = await open("model.safetensors");
      /** @type {Uint8Array[]} */
      const got = [];
      let n = 0;
      let want = 8;
      try {
        for (let chunk; n < want && (chunk = await src.next()) !== null; ) {
          got.push(chunk);
          n += chunk.byteLength;
          if (want === 8 && n >= 8) {
            const head = concat(got, n);
            const len = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
            // past the engine's bound the 8 bytes are enough for its error
            want = len > 100_000_000n ? 8 : 8 + Number(len);
          }
          checkSignal(signal);
        }
      } catch (e) {
        await src.cancel(e);
        throw readFailure(e, "model.safetensors", signal);
      }
      await src.cancel(undefined);
      const settings = { device, ...(weights ? { weights } : {}), ...(attention ? { attention } : {}) };
      const head = concat(got, n);
      const info = await guarded(w, () => w.checkpointNeed(config, head, settings));
      if (!info) throw namedError("BadModel", `model.safetensors: truncated: ${n} bytes, too short for the safetensors header it announces`);
      return memoryOf(info);
    },

    /**
     * Every unmasking strategy, from the engine's one list (`Strategy::ALL`).
     * @returns {Promise<import("./index.js").StrategyInfo[]>}
     */
    async strategies() {
      const w = await wasm();
      return /** @type {import("./index.js").StrategyInfo[]} */ (await guarded(w, () => w.strategies()));
    },

    /**
     * What a temperature, top-k and top-p make of a step's listed candidates, by the sampler's
     * own code: each candidate comes back with `{ tempered, kept, final }` added.
     * @template {{ p: number }} C
     * @param {readonly C[]} candidates
     * @param {import("./index.js").ReapplyOptions} [options]
     * @returns {Promise<(C & import("./index.js").Reweighed)[]>}
     */
    async reapply(candidates, options) {
      const probs = args.candidates(candidates);
      const checked = args.reapplyOptions(options);
      const w = await wasm();
      const out = await guarded(w, () => w.reapply(probs, checked));
      return candidates.map((c, i) => ({ ...c, ...out[i] }));
    },
  };
}
