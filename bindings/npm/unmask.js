// The package's JS layer over the wasm-bindgen classes: where the files come from (the
// default model shipped beside the .wasm, a folder URL, a hub id, or bytes in memory), progress
// events, AbortSignal checks, errors with stable names, and the same JSON shapes as the CLI.
// The platform entries (index.web.js, index.node.js) only say how to start the module and how
// to open a file as a stream of chunks. Every public function checks its arguments (args.js)
// before anything enters the module.
import * as args from "./args.js";
import { namedError } from "./args.js";

export { namedError };

// config and tokenizer first (small, needed to choose and check), the weights streamed last
const FILES = ["config.json", "tokenizer.json", "model.safetensors"];
const KEYS = ["config", "tokenizer", "weights"];

/** A hub id (`owner/name`) becomes the hub's resolve URLs; anything else is a folder. */
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

function checkSignal(signal) {
  if (signal?.aborted) throw abortError();
}

/**
 * Runs a call into the module. A Rust panic traps as WebAssembly's bare "unreachable"; it
 * becomes an `Error` named `InternalError` carrying the panic's own message instead.
 */
async function guarded(wasm, call) {
  try {
    return await call();
  } catch (e) {
    if (typeof WebAssembly !== "undefined" && e instanceof WebAssembly.RuntimeError) {
      const why = wasm.lastPanic?.() ?? e.message;
      throw namedError("InternalError", `unmask failed inside its module: ${why} (this is a bug; load the model again)`);
    }
    if (e && typeof e === "object" && e.code === undefined && typeof e.name === "string") e.code = e.name;
    throw e;
  }
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

/**
 * `model.steps()`: the events of one fill as an async iterable, each yielded as its step
 * happens. Leaving the loop early (`break`, an exception) stops the fill. The arguments are
 * checked at once, so a bad one throws from `steps()` itself, before any iteration.
 */
export function stepsOf(model, template, options) {
  args.template("steps", template);
  return stepsOfChecked(model, template, args.infillOptions("steps", options));
}

async function* stepsOfChecked(model, template, options) {
  const { signal, onStep, ...rest } = options;
  const stop = new AbortController();
  const forward = () => stop.abort();
  if (signal?.aborted) stop.abort();
  signal?.addEventListener("abort", forward, { once: true });
  const queue = [];
  let wake = null;
  let finished = false;
  let failure = null;
  const run = model
    .infill(template, {
      ...rest,
      signal: stop.signal,
      onStep: (e) => {
        onStep?.(e);
        queue.push(e);
        wake?.();
      },
    })
    .then(
      () => {
        finished = true;
        wake?.();
      },
      (e) => {
        failure = e;
        finished = true;
        wake?.();
      },
    );
  try {
    for (;;) {
      if (queue.length) {
        yield queue.shift();
        continue;
      }
      if (finished) {
        if (failure) throw failure;
        return;
      }
      await new Promise((r) => (wake = r));
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

/** A byte source over bytes already in memory, in chunks (never one copy of the whole). */
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
 */
function readFailure(e, file, signal) {
  if (signal?.aborted) return abortError();
  if (e && typeof e === "object" && args.CODES.has(e.code)) return e;
  return namedError("BadModel", `${file}: could not be read (${e?.message ?? e})`);
}

async function readWhole(source, progress, signal) {
  const parts = [];
  let n = 0;
  for (let chunk; (chunk = await source.next()) !== null; ) {
    parts.push(chunk);
    n += chunk.byteLength;
    progress(n);
    checkSignal(signal);
  }
  await source.done();
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

export function makeUnmask(platform) {
  return class Unmask {
    #raw;
    #wasm;
    #threads;
    #disposed = false;

    /** `Disposed` once `dispose` was called (a fill then in flight still finishes). */
    #live() {
      if (this.#disposed) throw disposedError();
    }

    constructor(raw, wasm, threads) {
      this.#raw = raw;
      this.#wasm = wasm;
      this.#threads = threads;
    }

    /**
     * Loads a model. `source`: nothing (the default model shipped with the package), a folder
     * URL or path in Hugging Face layout, a hub id, or `{ config, weights, tokenizer }` bytes.
     */
    static async load(source, options) {
      const checked = args.loadOptions(options);
      const from = args.loadSource(source, checked);
      if (checked.worker) {
        if (!platform.loadInWorker) throw namedError("BadInput", "load: options.worker must be false here, not true: a worker needs a browser");
        return platform.loadInWorker(from.kind === "files" ? from.files : from.kind === "folder" ? from.where : undefined, checked);
      }
      const { device = "auto", weights: weightFormat, onProgress, signal, cache } = checked;
      const { wasm, threads } = await platform.init(checked);
      checkSignal(signal);
      const emit = (event) => onProgress?.(event);
      const files = from.kind === "files" ? from.files : null;
      const where = from.kind === "folder" ? folderOf(String(from.where)) : null;
      // a checkpoint may ship without its tokenizer (kuleshov-group/mdlm-owt uses GPT-2's):
      // `tokenizer` names the folder or hub id that tokenizer.json is read from instead
      const tokenizerFrom = checked.tokenizer === undefined ? null : folderOf(String(checked.tokenizer));
      const remote = (i) => (i === 1 && tokenizerFrom !== null ? tokenizerFrom : files ? null : where);
      const inMemory = (i) => files !== null && !(i === 1 && tokenizerFrom !== null);
      const open = (i) => (inMemory(i) ? memorySource(files[KEYS[i]]) : platform.open(remote(i), FILES[i], signal, { cache }));
      const byteLength = (b) => (typeof b === "string" ? new TextEncoder().encode(b).byteLength : b.byteLength);
      // every file's size before the first byte, so the total progress is known from the start
      const sizes = await Promise.all(
        FILES.map((f, i) => (inMemory(i) ? byteLength(files[KEYS[i]]) : platform.size(remote(i), f, signal, { cache }))),
      );
      const totalBytes = sizes.every((s) => s !== null) ? sizes.reduce((a, b) => a + b, 0) : null;
      const loaded = FILES.map(() => 0);
      const progress = (i, cached) => (n) => {
        loaded[i] = n;
        emit({
          phase: "download",
          file: FILES[i],
          loaded: n,
          total: sizes[i],
          totalLoaded: loaded.reduce((a, b) => a + b, 0),
          totalBytes,
          cached,
        });
      };
      const small = [];
      for (const i of [0, 1]) {
        try {
          const src = await open(i);
          small.push(await readWhole(src, progress(i, src.cached), signal));
        } catch (e) {
          throw readFailure(e, FILES[i], signal);
        }
      }
      const settings = { device, ...(weightFormat ? { weights: weightFormat } : {}) };
      const loader = await guarded(wasm, () => wasm.Loader.create(new TextDecoder().decode(small[0]), small[1], settings));
      let header = null;
      let consumed = false;
      try {
        const src = await Promise.resolve(open(2)).catch((e) => {
          throw readFailure(e, FILES[2], signal);
        });
        const report = progress(2, src.cached);
        try {
          let n = 0;
          for (let chunk; (chunk = await src.next()) !== null; ) {
            // the push that completes the header checks that the model fits (ModelTooLarge),
            // so an oversized checkpoint stops after its first bytes
            header = (await guarded(wasm, () => loader.push(chunk))) ?? header;
            n += chunk.byteLength;
            report(n);
            checkSignal(signal);
          }
        } catch (e) {
          await src.cancel(e);
          throw readFailure(e, FILES[2], signal);
        }
        await src.done();
        const backend = loader.backend;
        emit({ phase: "compile", backend, parameters: header ? header.f32Bytes / 4 : null });
        consumed = true;
        const raw = await guarded(wasm, () => loader.finish((phase) => emit({ phase, backend })));
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

    /**
     * Why that backend: `{ backend, adapter, reason: { kind }, threads: { count, reason } }`;
     * `threads` is the CPU path's pool and why it has that size.
     */
    get backendReason() {
      return { ...this.#raw.backendReason, threads: this.#threads };
    }

    /** Threads of the CPU path (1 unless the page is cross-origin isolated and this runs in a worker). */
    get threads() {
      return this.#threads.count;
    }

    /** Bytes read back from the GPU since loading (0 on the CPU); live during a fill. */
    get readbackBytes() {
      return this.#raw.readbackBytes;
    }

    /**
     * Fills a template's holes. Resolves to `{ text, holes, steps, nfe, ms }`; `onStep` sees
     * each step as a `--trace` line does, then the `{ done: true, … }` event.
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
        return await guarded(this.#wasm, () =>
          this.#raw.infill(template, request, onStep, signal, turns.pause),
        );
      } finally {
        turns.close();
      }
    }

    /** `{ tokens, holes, maxTokens }`: how a template lays out on the canvas, without running it. */
    async measure(template) {
      args.template("measure", template);
      this.#live();
      return guarded(this.#wasm, () => this.#raw.measure(template));
    }

    /**
     * `{ tokens, slots }`: the template on the canvas, for drawing it. Each slot is
     * `{ known }` (the user's text, verbatim) or `{ hole: [start, end], afterSpace, original? }`.
     */
    async layout(template) {
      args.template("layout", template);
      this.#live();
      return guarded(this.#wasm, () => this.#raw.layout(template));
    }

    /**
     * A diffusion family's forward (noising) process on `text` at time `t`, on this model's
     * vocabulary: `{ family, t, noise, tokens: [{ id, text, originalId, originalText, masked,
     * changed, valid }] }`. Works while a fill runs.
     */
    async corrupt(text, options) {
      args.corruptText(text);
      const checked = args.corruptOptions(options);
      this.#live();
      return guarded(this.#wasm, () => this.#raw.corrupt(text, checked));
    }

    /** `{ name, masked: [[t, 1 − α_t], …], continuous: [[t, 1 − ᾱ(t)], …] }` at `points` times in [0, 1]. */
    async schedule(points = 101) {
      args.schedulePoints(points);
      this.#live();
      return guarded(this.#wasm, () => this.#raw.schedule(Math.min(1000, Math.max(2, Math.round(points)))));
    }

    /** The same events as `onStep`, as an async iterable, live as the fill runs. */
    steps(template, options) {
      return stepsOf(this, template, options);
    }

    /** Frees the model now; every later call is `Disposed`. */
    dispose() {
      this.#disposed = true;
      this.#raw.dispose();
    }
  };
}
