// Node entry: the module and the default model are read from the package's own folder.
import { readFile, stat } from "node:fs/promises";
import { initSync } from "./wasm/unmask_wasm.js";
import { makeUnmask } from "./unmask.js";

let started = false;
const here = new URL("./", import.meta.url);

function locate(where, file) {
  if (where === null) return new URL(`model/${file}`, here);
  if (/^https?:/.test(where)) return new URL(file, where);
  return new URL(file, where.startsWith("file:") ? where : new URL(where, `file://${process.cwd()}/`));
}

export const Unmask = makeUnmask({
  async init(wasmUrl) {
    if (started) return;
    const bytes = await readFile(wasmUrl ?? new URL("wasm/unmask_wasm_bg.wasm", here));
    initSync({ module: bytes });
    started = true;
  },
  async size(where, file) {
    const url = locate(where, file);
    if (url.protocol === "file:") return (await stat(url)).size;
    const head = await fetch(url, { method: "HEAD" });
    return Number(head.headers.get("content-length")) || null;
  },
  async read(where, file, signal, _options, progress) {
    const url = locate(where, file);
    if (url.protocol === "file:") {
      const bytes = new Uint8Array(await readFile(url, { signal }));
      progress(bytes.length);
      return bytes;
    }
    const res = await fetch(url, { signal });
    if (!res.ok) throw Object.assign(new Error(`${url}: HTTP ${res.status}`), { name: "BadModel" });
    const bytes = new Uint8Array(await res.arrayBuffer());
    progress(bytes.length);
    return bytes;
  },
});

/** Node keeps no download cache: local files are read where they are. */
export async function isCached() {
  return false;
}

export async function clearCache() {}
