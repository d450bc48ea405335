// Browser entry: the module is found through `new URL(…, import.meta.url)` (or `wasmUrl`),
// the default model beside it, other models by fetch. Downloads are kept in the Cache API
// (`cache: false` to skip it); where it is missing or full (private windows) they stay in
// memory, with a notice. No Node-only import on this path.
import init from "./wasm/unmask_wasm.js";
import { folderOf, makeUnmask } from "./unmask.js";
import { RemoteUnmask } from "./remote.js";

const CACHE = "unmask-v1";
let started = null;

// Written out literally so that bundlers (Vite, webpack 5) see and emit each asset.
const DEFAULT_MODEL = {
  "config.json": new URL("./model/config.json", import.meta.url),
  "model.safetensors": new URL("./model/model.safetensors", import.meta.url),
  "tokenizer.json": new URL("./model/tokenizer.json", import.meta.url),
};

function locate(where, file) {
  const base = typeof location === "undefined" ? import.meta.url : location.href;
  return where === null ? DEFAULT_MODEL[file] : new URL(file, new URL(where, base));
}

async function openCache(use, url) {
  // data: and blob: URLs (a bundler may inline a small file) are already in memory
  if (use === false || typeof caches === "undefined" || !/^https?:$/.test(url.protocol)) return null;
  try {
    return await caches.open(CACHE);
  } catch (e) {
    console.warn(`unmask: the Cache API is unavailable (${e}); keeping downloads in memory`);
    return null;
  }
}

export const Unmask = makeUnmask({
  loadInWorker(source, options) {
    const start = () =>
      options.workerUrl
        ? new Worker(options.workerUrl, { type: "module" })
        : new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    return RemoteUnmask.load(source, options, start);
  },
  init(wasmUrl) {
    started ??= init({ module_or_path: wasmUrl ?? new URL("./wasm/unmask_wasm_bg.wasm", import.meta.url) });
    return started;
  },
  async size(where, file, signal, options) {
    const url = locate(where, file);
    const cached = await (await openCache(options.cache, url))?.match(url);
    const res = cached ?? (await fetch(url, { method: "HEAD", signal }));
    return Number(res.headers.get("content-length")) || null;
  },
  async read(where, file, signal, options, progress) {
    const url = locate(where, file);
    const cache = await openCache(options.cache, url);
    let res = await cache?.match(url);
    if (!res) {
      res = await fetch(url, { signal });
      if (!res.ok) throw Object.assign(new Error(`${url}: HTTP ${res.status}`), { name: "BadModel" });
      if (cache) {
        try {
          await cache.put(url, res.clone());
        } catch (e) {
          console.warn(`unmask: could not cache ${url} (${e}); it stays in memory only`);
        }
      }
    }
    const reader = res.body.getReader();
    const parts = [];
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      n += value.length;
      progress(n);
    }
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  },
});

/** Whether every file of `source` (as `Unmask.load` takes it; nothing: the default model) is in the cache. */
export async function isCached(source) {
  if (typeof caches === "undefined") return false;
  const cache = await caches.open(CACHE);
  const where = source === undefined || source === null ? null : folderOf(String(source));
  const hits = await Promise.all(
    ["config.json", "model.safetensors", "tokenizer.json"].map((f) => cache.match(locate(where, f))),
  );
  return hits.every(Boolean);
}

/** Removes every file unmask has cached. */
export async function clearCache() {
  if (typeof caches !== "undefined") await caches.delete(CACHE);
}
