// Browser entry: the module is found through `new URL(…, import.meta.url)` (or `wasmUrl`),
// the default model beside it, other models by fetch. No Node-only import on this path.
import init from "./wasm/unmask_wasm.js";
import { makeUnmask } from "./unmask.js";

let started = null;

function locate(where, file) {
  return where === null ? new URL(`model/${file}`, import.meta.url) : new URL(file, new URL(where, location.href));
}

export const Unmask = makeUnmask({
  init(wasmUrl) {
    started ??= init({ module_or_path: wasmUrl ?? new URL("wasm/unmask_wasm_bg.wasm", import.meta.url) });
    return started;
  },
  async size(where, file, signal) {
    const head = await fetch(locate(where, file), { method: "HEAD", signal });
    return Number(head.headers.get("content-length")) || null;
  },
  async read(where, file, signal, progress) {
    const url = locate(where, file);
    const res = await fetch(url, { signal });
    if (!res.ok) throw Object.assign(new Error(`${url}: HTTP ${res.status}`), { name: "BadModel" });
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
