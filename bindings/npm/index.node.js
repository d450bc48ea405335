// Node entry: the module and the bundled models are read from the package's own folder.
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import * as wasm from "./wasm/unmask_wasm.js";
import { bundledFolder, makeTools, makeUnmask } from "./unmask.js";
import { namedError } from "./protocol.js";
import { badLocation, brokenDownload, cacheQuery, httpError, networkError } from "./args.js";

// a worker needs a browser (`worker: true` is BadInput here); exported for `instanceof` and types
export { RemoteUnmask } from "./remote.js";

let started = false;
const here = new URL("./", import.meta.url);

/**
 * @param {import("./unmask.js").Where} where
 * @param {string} file
 * @returns {URL}
 */
function locate(where, file) {
  if (typeof where === "object") return new URL(`${bundledFolder(where.bundled)}${file}`, here);
  try {
    if (/^https?:/.test(where)) return new URL(file, where);
    return new URL(file, where.startsWith("file:") ? where : new URL(where, `file://${process.cwd()}/`));
  } catch (e) {
    throw badLocation(where, file, e);
  }
}

const aborted = () => namedError("Aborted", "the operation was aborted");

/**
 * `fetch`, its failures named: an abort is `Aborted`, no response a `NetworkError` naming the URL.
 * @param {URL} url
 * @param {RequestInit} init
 * @param {AbortSignal | undefined} signal
 */
async function fetched(url, init, signal) {
  try {
    return await fetch(url, { ...init, signal });
  } catch (e) {
    throw signal?.aborted ? aborted() : networkError(url, e);
  }
}

/** @type {import("./unmask.js").Platform} */
const platform = {
  // Node runs the single-thread module (wasm-bindgen-rayon's pool is made of Web Workers)
  async init(options) {
    if (!started) {
      const bytes = await readFile(options.wasmUrl ?? new URL("wasm/unmask_wasm_bg.wasm", here));
      wasm.initSync({ module: bytes });
      started = true;
    }
    return { wasm, threads: { count: 1, reason: "node" } };
  },
  async size(where, file, signal) {
    const url = locate(where, file);
    if (url.protocol === "file:") {
      try {
        return (await stat(url)).size;
      } catch (e) {
        const err = /** @type {NodeJS.ErrnoException} */ (e);
        throw namedError("BadModel", `${url.pathname}: ${err.code === "ENOENT" ? "no such file" : err.message}`);
      }
    }
    const head = await fetched(url, { method: "HEAD" }, signal);
    // a server that refuses HEAD leaves the size unknown; the download says what is wrong
    return head.ok ? Number(head.headers.get("content-length")) || null : null;
  },
  async open(where, file, signal) {
    const url = locate(where, file);
    if (url.protocol === "file:") {
      const stream = createReadStream(url, { highWaterMark: 1 << 20, signal });
      const chunks = stream[Symbol.asyncIterator]();
      return {
        cached: false,
        async next() {
          try {
            const { done, value } = await chunks.next();
            return done ? null : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
          } catch (e) {
            throw signal?.aborted ? aborted() : namedError("BadModel", `${url.pathname}: ${e instanceof Error ? e.message : e}`);
          }
        },
        async cancel() {
          stream.destroy();
        },
        async done() {},
      };
    }
    const res = await fetched(url, {}, signal);
    if (!res.ok) throw httpError(url, res);
    const reader = /** @type {ReadableStream<Uint8Array>} */ (res.body).getReader();
    let n = 0;
    return {
      cached: false,
      async next() {
        try {
          const { done, value } = await reader.read();
          n += value?.byteLength ?? 0;
          return done ? null : value;
        } catch (e) {
          throw signal?.aborted ? aborted() : brokenDownload(url, n, e);
        }
      },
      async cancel(why) {
        await reader.cancel(why).catch(() => {});
      },
      async done() {},
    };
  },
};

export const Unmask = makeUnmask(platform);
export const { strategies, reapply, need } = makeTools(platform);

/**
 * Node keeps no download cache: local files are read where they are.
 * @param {string | URL | null} [source]
 * @param {{ tokenizer?: string | URL | null }} [options]
 * @returns {Promise<boolean>}
 */
export async function isCached(source, options) {
  cacheQuery(source, options);
  return false;
}

/** @returns {Promise<void>} */
export async function clearCache() {}
