// scripts/bench-browser's side in Node: serves the npm package's modules (pkg/), onnxruntime-web's
// dist and the ONNX models, cross-origin isolated (threads), and times in one headless Chromium
// the same shapes through unmask's WASM CPU path (`benchForward`, random MDLM-shaped weights) and
// through onnxruntime-web's wasm EP (`session.run`, the graph of onnx_model.py). A fresh page per
// engine and thread count: both fix their thread pool at first use. Each round alternates which
// engine goes first. Prints one JSON line per (round, shape, L, threads).
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { join, extname } from "node:path";
import { launchChromium } from "../../scripts/chromium.mjs";

const env = process.env;
const specs = env.SPECS.split(" ").filter(Boolean);
const threadCounts = env.THREADS.split(" ").filter(Boolean).map(Number);
const rounds = Number(env.ROUNDS ?? 1);
const iters = Number(env.ITERS ?? 5);
const SHAPES = { small: [6, 384, 6, 8192], owt: [12, 768, 12, 50258] };
const TYPES = { ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".html": "text/html" };
const roots = { "/pkg/": env.PKG, "/ort/": env.ORT, "/models/": env.MODELS };

// the threaded unmask build runs in a module Worker: the thread that waits on the pool must be
// allowed Atomics.wait, which a page's main thread is not
const WORKER = `
self.onmessage = async ({ data }) => {
  try {
    const wasm = await import("/pkg/wasm-threads/unmask_wasm.js");
    await wasm.default({ module_or_path: "/pkg/wasm-threads/unmask_wasm_bg.wasm" });
    await wasm.initThreadPool(data.threads);
    if (wasm.threadCount() !== data.threads) throw new Error("threadCount() " + wasm.threadCount());
    postMessage({ ok: await wasm.benchForward(...data.args) });
  } catch (e) { postMessage({ error: String(e?.stack ?? e) }); }
};`;

const server = createServer(async (req, res) => {
  const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
  const headers = { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp", "cross-origin-resource-policy": "same-origin" };
  if (path === "/") return res.writeHead(200, { ...headers, "content-type": "text/html" }).end("<!doctype html>");
  if (path === "/unmask-worker.mjs") return res.writeHead(200, { ...headers, "content-type": "text/javascript" }).end(WORKER);
  const root = Object.keys(roots).find((r) => path.startsWith(r));
  const file = root && join(roots[root], path.slice(root.length).replace(/\.\.+/g, ""));
  try {
    if (!file || !(await stat(file)).isFile()) throw new Error();
    res.writeHead(200, { ...headers, "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(await readFile(file));
  } catch {
    res.writeHead(404, headers).end();
  }
}).listen(0, "127.0.0.1");
await new Promise((r) => server.once("listening", r));
const origin = `http://127.0.0.1:${server.address().port}`;
const browser = await launchChromium();

async function unmask(spec, threads) {
  const [name, l] = spec.split(":");
  const [blocks, hidden, heads, vocab] = SHAPES[name];
  const args = [blocks, hidden, heads, vocab, Number(l), iters];
  const page = await browser.newPage();
  await page.goto(origin + "/");
  const m = await page.evaluate(async ({ args, threads }) => {
    if (threads === 1) {
      const wasm = await import("/pkg/wasm/unmask_wasm.js");
      await wasm.default({ module_or_path: "/pkg/wasm/unmask_wasm_bg.wasm" });
      return wasm.benchForward(...args);
    }
    const w = new Worker("/unmask-worker.mjs", { type: "module" });
    const reply = await new Promise((resolve, reject) => {
      w.onmessage = ({ data }) => resolve(data);
      w.onerror = (e) => reject(new Error("worker: " + e.message));
      w.postMessage({ args, threads });
    });
    w.terminate();
    if (reply.error) throw new Error(reply.error);
    return reply.ok;
  }, { args, threads });
  await page.close();
  return m.ms_median;
}

async function ortWeb(spec, threads) {
  const [name, l] = spec.split(":");
  const page = await browser.newPage();
  await page.goto(origin + "/");
  const ms = await page.evaluate(async ({ model, len, threads, iters }) => {
    if (!crossOriginIsolated) throw new Error("the page is not cross-origin isolated");
    const ort = await import("/ort/ort.wasm.min.mjs");
    ort.env.wasm.wasmPaths = new URL("/ort/", location.href).href;
    ort.env.wasm.numThreads = threads;
    const session = await ort.InferenceSession.create(model, { executionProviders: ["wasm"] });
    const ids = new BigInt64Array(len);
    for (let i = 0; i < len; i++) ids[i] = BigInt((i * 7919) % 8192);
    const feeds = { input_ids: new ort.Tensor("int64", ids, [1, len]) };
    for (let i = 0; i < 2; i++) await session.run(feeds);
    const times = [];
    for (let i = 0; i < iters; i++) {
      const t = performance.now();
      await session.run(feeds);
      times.push(performance.now() - t);
    }
    await session.release();
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  }, { model: `/models/${name}-${l}.onnx`, len: Number(l), threads, iters });
  await page.close();
  return ms;
}

for (let round = 1; round <= rounds; round++) {
  for (const threads of threadCounts) {
    for (const spec of specs) {
      const [shape, L] = spec.split(":");
      // alternate rounds change which engine runs first
      const first = round % 2 === 1;
      const a = first ? await unmask(spec, threads) : await ortWeb(spec, threads);
      const b = first ? await ortWeb(spec, threads) : await unmask(spec, threads);
      const [unmaskMs, ortMs] = first ? [a, b] : [b, a];
      const row = { shape, L: Number(L), threads, unmask_ms: +unmaskMs.toFixed(1), ort_web_ms: +ortMs.toFixed(1), ratio: +(unmaskMs / ortMs).toFixed(3), round, chromium: browser.version() };
      console.log(JSON.stringify(row));
    }
  }
}
await browser.close();
server.close();
