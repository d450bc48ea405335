// Browser entry: the module is found through `new URL(…, import.meta.url)` (or `wasmUrl`),
// the bundled models beside it, other models by fetch. In a worker of a cross-origin-isolated
// page the multi-threaded module runs the CPU path on a pool of threads. Downloads are kept in
// the Cache API (`cache: false` to skip it); where it is missing or full (private windows)
// they stay in memory, with a notice. No Node-only import on this path.
import init, * as wasm from "./wasm/unmask_wasm.js";
import { folderOf, makeTools, makeUnmask } from "./unmask.js";
import { namedError } from "./protocol.js";
import { badLocation, brokenDownload, cacheQuery, httpError, isBundled, networkError } from "./args.js";
import { RemoteUnmask } from "./remote.js";

export { RemoteUnmask };

/** @typedef {import("./index.js").ThreadPlan} ThreadPlan */
/** @typedef {import("./unmask.js").Wasm} Wasm */

const CACHE = "unmask-v1";
/** @type {Promise<{ wasm: Wasm, threads: ThreadPlan }> | null} the started module, one per realm */
let started = null;
let warned = false;

/**
 * How many threads the CPU path can have here, and why. The threaded module needs a
 * cross-origin-isolated page (SharedArrayBuffer) and must run off the main thread: there the
 * browser forbids blocking waits, rayon spins beside its pool instead, and two threads on two
 * cores measured no faster than one.
 * @param {"auto" | number | undefined} asked
 * @returns {ThreadPlan}
 */
function threadPlan(asked) {
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  const explicit = asked !== undefined && asked !== "auto";
  if (explicit && !(Number.isInteger(asked) && asked >= 1)) {
    throw namedError("BadInput", `threads \`${asked}\`: expected 'auto' or a whole number of at least 1`);
  }
  const want = explicit ? asked : Math.min(cores, 8);
  if (want <= 1) return { count: 1, reason: explicit ? "requested" : "single-core" };
  if (!globalThis.crossOriginIsolated) return { count: 1, reason: "not-cross-origin-isolated" };
  if (typeof document !== "undefined") return { count: 1, reason: "main-thread" };
  return { count: want, reason: explicit ? "requested" : "hardware-concurrency" };
}

/** @type {Partial<Record<ThreadPlan["reason"], string>>} */
const ADVICE = {
  "not-cross-origin-isolated":
    "threads need a cross-origin-isolated page (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)",
  "main-thread": "threads run only off the main thread: load with { worker: true }",
};

/**
 * @param {import("./index.js").LoadOptions} options
 * @param {boolean} quiet no console notice (a call that loads no model)
 * @returns {Promise<{ wasm: Wasm, threads: ThreadPlan }>}
 */
async function start(options, quiet) {
  const plan = threadPlan(options.threads);
  if (plan.count === 1 && ADVICE[plan.reason] && !quiet && !warned && (globalThis.navigator?.hardwareConcurrency ?? 1) > 1) {
    warned = true;
    console.warn(`unmask: the CPU path runs on one thread: ${ADVICE[plan.reason]}`);
  }
  if (plan.count > 1) {
    try {
      const threaded = await import("./wasm-threads/unmask_wasm.js");
      await threaded.default({
        module_or_path: options.wasmThreadsUrl ?? new URL("./wasm-threads/unmask_wasm_bg.wasm", import.meta.url),
      });
      // before anything else touches the CPU path: its first use fixes the pool at one thread
      await threaded.initThreadPool(plan.count);
      return { wasm: /** @type {Wasm} */ (/** @type {unknown} */ (threaded)), threads: plan };
    } catch (e) {
      // e.g. a device that cannot reserve the shared memory, or a bundler that moved the files
      console.warn(`unmask: the threaded module could not start (${e instanceof Error ? e.message : e}); the CPU path runs on one thread`);
      plan.count = 1;
      plan.reason = "threads-failed";
    }
  }
  await init({ module_or_path: options.wasmUrl ?? new URL("./wasm/unmask_wasm_bg.wasm", import.meta.url) });
  return { wasm, threads: plan };
}

// The bundled models' files (unmask.js `bundledFolder`), written out literally so that bundlers
// (Vite, webpack 5) see and emit each asset (a bundle then carries every model; only the one
// loaded is fetched).
const BUNDLED_MODELS = {
  default: {
    "config.json": new URL("./model/config.json", import.meta.url),
    "model.safetensors": new URL("./model/model.safetensors", import.meta.url),
    "tokenizer.json": new URL("./model/tokenizer.json", import.meta.url),
  },
  uniform: {
    "config.json": new URL("./models/uniform/config.json", import.meta.url),
    "model.safetensors": new URL("./models/uniform/model.safetensors", import.meta.url),
    "tokenizer.json": new URL("./models/uniform/tokenizer.json", import.meta.url),
  },
  gaussian: {
    "config.json": new URL("./models/gaussian/config.json", import.meta.url),
    "model.safetensors": new URL("./models/gaussian/model.safetensors", import.meta.url),
    "tokenizer.json": new URL("./models/gaussian/tokenizer.json", import.meta.url),
  },
  bits: {
    "config.json": new URL("./models/bits/config.json", import.meta.url),
    "model.safetensors": new URL("./models/bits/model.safetensors", import.meta.url),
    "tokenizer.json": new URL("./models/bits/tokenizer.json", import.meta.url),
  },
  dreamon: {
    "config.json": new URL("./models/dreamon/config.json", import.meta.url),
    "model.safetensors": new URL("./models/dreamon/model.safetensors", import.meta.url),
    "tokenizer.json": new URL("./models/dreamon/tokenizer.json", import.meta.url),
  },
};

/**
 * @param {import("./unmask.js").Where} where
 * @param {string} file
 * @returns {URL}
 */
function locate(where, file) {
  const base = typeof location === "undefined" ? import.meta.url : location.href;
  if (typeof where === "object") return BUNDLED_MODELS[where.bundled][/** @type {keyof typeof BUNDLED_MODELS.default} */ (file)];
  try {
    return new URL(file, new URL(where, base));
  } catch (e) {
    throw badLocation(where, file, e);
  }
}

const aborted = () => namedError("Aborted", "the operation was aborted");

let noCacheNoticed = false;

/**
 * @param {boolean | undefined} use
 * @param {URL} url
 * @returns {Promise<Cache | null>}
 */
async function openCache(use, url) {
  // data: and blob: URLs (a bundler may inline a small file) are already in memory
  if (use === false || !/^https?:$/.test(url.protocol)) return null;
  if (typeof caches === "undefined") {
    // an insecure (non-https, non-localhost) page, or a browser without the Cache API
    if (!noCacheNoticed) console.warn("unmask: no Cache API here; downloads stay in memory and are fetched again next time");
    noCacheNoticed = true;
    return null;
  }
  try {
    return await caches.open(CACHE);
  } catch (e) {
    console.warn(`unmask: the Cache API is unavailable (${e}); keeping downloads in memory`);
    return null;
  }
}

/**
 * The module's reader over a response body (or any ReadableStream) from `url`.
 * @param {URL} url
 * @param {AbortSignal | undefined} signal
 * @param {ReadableStream<Uint8Array>} body
 * @param {boolean} cached
 * @param {(why?: unknown) => Promise<void>} [cancel]
 * @param {() => Promise<void>} [done]
 * @returns {import("./unmask.js").ByteSource}
 */
function streamSource(url, signal, body, cached, cancel = async () => {}, done = async () => {}) {
  const reader = body.getReader();
  let n = 0;
  return {
    cached,
    async next() {
      try {
        const { done: end, value } = await reader.read();
        n += value?.byteLength ?? 0;
        return end ? null : value;
      } catch (e) {
        throw signal?.aborted ? aborted() : brokenDownload(url, n, e);
      }
    },
    async cancel(why) {
      await cancel(why);
      await reader.cancel(why).catch(() => {});
    },
    done,
  };
}

/** @type {import("./unmask.js").Platform} */
const platform = {
  loadInWorker(source, options) {
    const start = () =>
      options.workerUrl
        ? new Worker(options.workerUrl, { type: "module" })
        : new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    return RemoteUnmask.load(source, options, start);
  },
  // the first load decides the module (and its thread pool) for the realm; later loads share it
  init(options, quiet = false) {
    started ??= start(options, quiet).catch((e) => {
      started = null; // a later load may try again
      throw e;
    });
    return started;
  },
  async size(where, file, signal, options) {
    const url = locate(where, file);
    const cached = await (await openCache(options.cache, url))?.match(url);
    if (cached) return Number(cached.headers.get("content-length")) || null;
    let res;
    try {
      res = await fetch(url, { method: "HEAD", signal });
    } catch (e) {
      throw signal?.aborted ? aborted() : networkError(url, e);
    }
    // a server that refuses HEAD leaves the size unknown; the download says what is wrong
    return res.ok ? Number(res.headers.get("content-length")) || null : null;
  },
  async open(where, file, signal, options) {
    const url = locate(where, file);
    const cache = await openCache(options.cache, url);
    const hit = await cache?.match(url);
    if (hit) return streamSource(url, signal, /** @type {ReadableStream<Uint8Array>} */ (hit.body), true);
    // one controller for the download and its copy into the cache: stopping the load (an
    // abort, a model too large for this device) stops both
    const controller = new AbortController();
    const forward = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", forward, { once: true });
    let res;
    try {
      res = await fetch(url, { signal: controller.signal });
    } catch (e) {
      signal?.removeEventListener("abort", forward);
      throw signal?.aborted ? aborted() : networkError(url, e);
    }
    if (!res.ok) {
      signal?.removeEventListener("abort", forward);
      throw httpError(url, res);
    }
    // cached while it streams (awaited at the end, not before: that would hold the whole file
    // in the tee); a full or missing cache leaves the download in memory only
    const saving = cache
      ?.put(url, res.clone())
      .catch((e) => {
        if (!controller.signal.aborted) console.warn(`unmask: could not cache ${url} (${e}); it stays in memory only`);
      });
    return streamSource(
      url,
      signal,
      /** @type {ReadableStream<Uint8Array>} */ (res.body),
      false,
      async (why) => {
        controller.abort(why);
        await saving;
        signal?.removeEventListener("abort", forward);
      },
      async () => {
        await saving;
        signal?.removeEventListener("abort", forward);
      },
    );
  },
};

export const Unmask = makeUnmask(platform);
export const { strategies, reapply, need } = makeTools(platform);

/**
 * Whether every file of `source` (as `Unmask.load` takes it; nothing: the default model; a
 * bundled model's name) is in the cache; `options.tokenizer` as for `load` (where
 * tokenizer.json comes from).
 * @param {string | URL | null} [source]
 * @param {{ tokenizer?: string | URL | null }} [options]
 * @returns {Promise<boolean>}
 */
export async function isCached(source, options) {
  options = cacheQuery(source, options);
  if (typeof caches === "undefined") return false;
  let cache;
  try {
    cache = await caches.open(CACHE);
  } catch {
    return false; // the Cache API refused (e.g. an opaque origin): nothing is cached
  }
  /** @type {import("./unmask.js").Where} */
  const where = source === undefined || source === null ? { bundled: "default" } : isBundled(source) ? { bundled: source } : folderOf(String(source));
  const tok = options?.tokenizer === undefined || options.tokenizer === null ? where : folderOf(String(options.tokenizer));
  const hits = await Promise.all([
    cache.match(locate(where, "config.json")),
    cache.match(locate(tok, "tokenizer.json")),
    cache.match(locate(where, "model.safetensors")),
  ]);
  return hits.every(Boolean);
}

/** Removes every file unmask has cached. */
export async function clearCache() {
  if (typeof caches !== "undefined") await caches.delete(CACHE);
}
