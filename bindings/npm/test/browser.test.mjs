// The package in headless Debian Chromium (never a downloaded browser), from pages served on
// 127.0.0.1: the WASM CPU path, WebGPU on SwiftShader (--enable-unsafe-webgpu), and `auto`,
// which must pass over a software adapter. Run from the folder the tarball was installed in.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";

import { launchChromium } from "./chromium.mjs";

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
const template = "Peter [MASK*2] ran into the [MASK] Forest.";

let server, browser, page;
const requests = [];
// the oversized checkpoint served at /models/huge/: how much of it went out, and whether the
// client hung up
const huge = { sent: 0, closed: false };

/** The first bytes of a safetensors file whose one F32 tensor has `shape` (the data is zeros). */
function hugeHeader(shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const json = Buffer.from(JSON.stringify({ x: { dtype: "F32", shape, data_offsets: [0, n * 4] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return { head: Buffer.concat([len, json]), size: 8 + json.length + n * 4 };
}

/** Streams the header, then zeros as fast as the client reads, until it hangs up. */
function serveHuge(req, res) {
  const { head, size } = hugeHeader([50000, 30000]);
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size });
  if (req.method === "HEAD") return res.end();
  const zeros = Buffer.alloc(1 << 20);
  res.on("close", () => (huge.closed = true));
  const pump = () => {
    while (!res.destroyed && huge.sent < size) {
      const chunk = huge.sent === 0 ? head : zeros;
      huge.sent += chunk.length;
      if (!res.write(chunk)) return res.once("drain", pump);
    }
  };
  pump();
}

before(async () => {
  const root = process.cwd();
  server = createServer(async (req, res) => {
    requests.push(`${req.method} ${req.url}`);
    // /isolated/… serves the same files cross-origin isolated (SharedArrayBuffer, threads)
    if (req.url.startsWith("/isolated/")) {
      req.url = req.url.slice("/isolated".length);
      res.setHeader("cross-origin-opener-policy", "same-origin");
      res.setHeader("cross-origin-embedder-policy", "require-corp");
    }
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^(\.\.[/\\])+/, "");
    if (req.url === "/models/huge/model.safetensors") return serveHuge(req, res);
    try {
      // /models/huge/ has the default model's config and tokenizer beside an oversized checkpoint
      if (path.startsWith("/models/huge/")) {
        const body = await readFile(join(root, "node_modules/unmask/model", path.slice("/models/huge/".length)));
        res.writeHead(200, { "content-length": body.length });
        return res.end(req.method === "HEAD" ? undefined : body);
      }
      // the README's plain-page example, exactly as the package's README has it
      if (path === "/readme-page.html") {
        const readme = await readFile(join(root, "node_modules/unmask/README.md"), "utf8");
        const html = readme.split("## A plain page")[1].split("```html")[1].split("```")[0];
        res.writeHead(200, { "content-type": "text/html" });
        return res.end(html);
      }
      // /models/default/… is a folder URL in HF layout: the package's model files, fetched
      const file = path.startsWith("/models/default/")
        ? join(root, "node_modules/unmask/model", path.slice("/models/default/".length))
        : path.startsWith("/vite/")
          ? join(root, "vite-app/dist", path.slice("/vite/".length))
          : join(root, path === "/" ? "page.html" : path);
      const body = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[extname(path)] ?? "application/octet-stream", "content-length": body.length });
      res.end(req.method === "HEAD" ? undefined : body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  browser = await launchChromium({ webgpu: true });
  page = await browser.newPage();
  page.on("console", (m) => console.log(`[page] ${m.text()}`));
  page.on("pageerror", (e) => console.log(`[page error] ${e}`));
  await page.goto(`http://127.0.0.1:${server.address().port}/page.html`);
  await page.waitForFunction(() => window.ready === true);
});

after(async () => {
  await browser?.close();
  server?.close();
});

function checkFill(out) {
  const r = out.result;
  assert.ok(r.text.startsWith("Peter ") && r.text.endsWith(" Forest."), r.text);
  assert.doesNotMatch(r.text, /\[MASK|<\|/);
  assert.equal(out.steps.at(-1).done, true);
  assert.equal(out.steps.filter((e) => !e.done).reduce((n, e) => n + e.committed.length, 0), 3);
  assert.deepEqual(out.progress.filter((p) => p !== "download"), ["memory", "compile", "warmup", "ready"]);
}

test("the WASM CPU path fills a template in the page", async () => {
  const out = await page.evaluate(([t]) => window.fill("wasm", t, { seed: 7 }), [template]);
  assert.equal(out.backend, "wasm");
  assert.equal(out.readbackBytes, 0, "nothing is read back on the CPU");
  checkFill(out);
});

test("the README's plain-page example runs as written", async () => {
  const p = await browser.newPage();
  p.on("pageerror", (e) => console.log(`[readme page error] ${e}`));
  await p.goto(`http://127.0.0.1:${server.address().port}/readme-page.html`);
  await p.waitForFunction(() => /^The .+ sat\.$/.test(document.body?.textContent ?? ""), null, { timeout: 60000 });
  console.log(`README page: ${await p.evaluate(() => document.body.textContent)}`);
  await p.close();
});

test("a checkpoint too large for wasm32 memory is refused from its header: the download stops", async () => {
  await page.evaluate(() => window.clearCache());
  const e = await page.evaluate(() => window.loadError("/models/huge/"));
  assert.equal(e?.name, "ModelTooLarge", JSON.stringify(e));
  assert.equal(e.code, "ModelTooLarge");
  assert.match(e.message, /model.safetensors.*5.59 GiB.*4.00 GiB/);
  for (let i = 0; i < 50 && !huge.closed; i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(huge.closed, "the browser hung up");
  console.log(`oversized checkpoint: ${(huge.sent / 2 ** 20).toFixed(1)} MiB sent of 5722 MiB before the browser hung up`);
  assert.ok(huge.sent < 256 * 2 ** 20, `${huge.sent} bytes went out`);
  assert.equal(await page.evaluate(() => window.isCached("/models/huge/")), false, "nothing partial was cached");
});

test("WebGPU (SwiftShader here) runs the GPU infill path and agrees with the CPU at temperature 0", async () => {
  const info = await page.evaluate(() => window.gpuInfo());
  assert.ok(info, "Chromium exposed no WebGPU adapter (is --enable-unsafe-webgpu set?)");
  console.log(`adapter: ${JSON.stringify(info)}`);
  const greedy = { strategy: "top-prob", seed: 1 };
  const gpu = await page.evaluate(([t, o]) => window.fill("webgpu", t, o), [template, greedy]);
  assert.equal(gpu.backend, "webgpu");
  assert.equal(gpu.reason.reason.kind, "requested");
  checkFill(gpu);
  const steps = gpu.steps.filter((e) => !e.done).length;
  console.log(`WebGPU readback: ${gpu.readbackBytes} bytes over ${steps} steps (warm-up included)`);
  assert.ok(gpu.readbackBytes > 0);
  const cpu = await page.evaluate(([t, o]) => window.fill("wasm", t, o), [template, greedy]);
  assert.equal(cpu.result.text, gpu.result.text, "greedy fills agree between WebGPU and the CPU");
  // auto passes over a software (fallback) adapter and says so; it takes a hardware one
  const auto = await page.evaluate(([t]) => window.fill("auto", t, { seed: 7 }), [template]);
  console.log(`auto: ${auto.backend} (${JSON.stringify(auto.reason)})`);
  if (info.fallback) {
    assert.equal(auto.backend, "wasm");
    assert.equal(auto.reason.reason.kind, "software-adapter-skipped");
  } else {
    assert.equal(auto.backend, "webgpu");
    assert.equal(auto.reason.reason.kind, "hardware-adapter");
  }
  checkFill(auto);
});

test("a Qwen3 A2D checkpoint on WebGPU streams its matrices to the GPU: wasm memory keeps the norms, need() says so first", async () => {
  const template = "The cat [MASK*3] on the mat.";
  const cpu = await page.evaluate(([t]) => window.streamed("wasm", "f32", t), [template]);
  assert.equal(cpu.backend, "wasm");
  assert.equal(cpu.stated.toGpu, false);
  assert.equal(cpu.stated.gpuBytes, 0);
  assert.equal(cpu.stated.wasmBytes, cpu.stated.f32Bytes);
  for (const weights of ["f32", "f16", "q8", "q4"]) {
    const gpu = await page.evaluate(([w, t]) => window.streamed("webgpu", w, t), [weights, template]);
    console.log(`a2d ${weights}: ${JSON.stringify({ stated: gpu.stated, memory: gpu.memory })}`);
    assert.equal(gpu.backend, "webgpu");
    assert.equal(gpu.stated.toGpu, true, weights);
    assert.deepEqual(gpu.event, { phase: "memory", ...gpu.stated }, "the load's memory event says what need() said");
    // only the norms stay in wasm memory: q/k norms, two per layer and the final one, as f32
    assert.ok(gpu.stated.wasmBytes > 0 && gpu.stated.wasmBytes < 8000, `${gpu.stated.wasmBytes}`);
    assert.ok(gpu.memory.gpuBytes > 0 && gpu.memory.gpuBytes <= gpu.stated.gpuBytes, JSON.stringify(gpu));
    assert.ok(gpu.text.startsWith("The cat ") && gpu.text.endsWith(" on the mat."), gpu.text);
    assert.equal(gpu.corrupt?.name, "BadInput", "the noising views say the embeddings are on the GPU");
    assert.match(gpu.corrupt.message, /GPU/);
    if (weights === "f32") assert.equal(gpu.text, cpu.text, "greedy fills agree between the streamed GPU model and the CPU");
  }
});

test("the bundled models by name, on the page and in a worker: \"uniform\" fills by uniform-state diffusion", async () => {
  for (const worker of [false, true]) {
    const u = await page.evaluate(([t, w]) => window.bundled("uniform", w, t), [template, worker]);
    assert.equal(u.family, "uniform");
    assert.equal(u.remote, worker);
    assert.deepEqual(u.files, ["config.json", "tokenizer.json", "model.safetensors"]);
    assert.match(u.result.text, /^Peter .+ ran into the .+ Forest\.$/);
    assert.doesNotMatch(u.result.text, /\[MASK|<\|/);
    const steps = u.steps.filter((e) => !e.done);
    assert.deepEqual([steps[0].step, steps[0].committed.length], [0, 3], "step 0 commits every hole's noise");
    assert.ok(steps.every((e) => e.masked === 0));
    assert.equal(u.wrong?.code, "BadInput", JSON.stringify(u.wrong));
    assert.match(u.wrong.message, /top-prob.*uniform, psi/);
    const d = await page.evaluate(([t, w]) => window.bundled("default", w, t), [template, worker]);
    assert.equal(d.family, "absorbing");
    assert.equal(d.wrong?.code, "BadInput", JSON.stringify(d.wrong));
    assert.match(d.wrong.message, /uniform.*top-prob/);
    // the two models fill the same template differently, from the same seed
    console.log(`${worker ? "worker" : "page"}: uniform "${u.result.text}" (${steps.length} steps), default "${d.result.text}"`);
  }
  assert.ok(requests.some((r) => /GET \/node_modules\/unmask\/models\/uniform\/model.safetensors/.test(r)), "fetched from the package's models/uniform/");
  assert.equal(await page.evaluate(() => window.isCached("uniform")), true, "cached by name");
  // "dreamon": a hole of unknown length starts at holeStart (layout's options cross to the
  // worker) and grows or shrinks by the expand and delete events, to the result's hole_lengths
  const growing = "The little girl [MASK*?] to the park.";
  const texts = [];
  for (const worker of [false, true]) {
    const g = await page.evaluate(([t, w]) => window.bundled("dreamon", w, t, { holeStart: 6 }), [growing, worker]);
    assert.equal(g.family, "absorbing");
    assert.equal(g.remote, worker);
    assert.deepEqual(g.layout.slots.filter((s) => "hole" in s).map((s) => s.hole[1] - s.hole[0]), [6], "the hole starts at holeStart");
    const steps = g.steps.filter((e) => "committed" in e);
    assert.equal(steps[0].masked, 5, "the first step commits one of the 6 starting masks");
    const grown = g.steps.filter((e) => "expand" in e).length;
    const deleted = g.steps.filter((e) => "delete" in e).reduce((n, e) => n + e.delete.length, 0);
    assert.equal(g.result.hole_lengths[0], 6 + grown - deleted, "the final length: the start, the expansions and the deletions");
    assert.match(g.result.text, /^The little girl .+ to the park\.$/);
    assert.equal(g.wrong?.code, "BadInput", JSON.stringify(g.wrong));
    texts.push(g.result.text);
  }
  assert.equal(texts[0], texts[1], "the same fill on the page and in a worker");
});

test("a model from a folder URL: progress with the total known from the start, then a cached second load", async () => {
  await page.evaluate(() => window.clearCache());
  const first = await page.evaluate(() => window.loadFrom("/models/default/"));
  assert.ok(first.text.startsWith("The ") && first.text.endsWith(" sat."), first.text);
  const downloads = first.progress.filter((p) => p.phase === "download");
  const total = downloads[0].totalBytes;
  assert.ok(total > 16e6, `total ${total}`);
  assert.ok(downloads.every((p) => p.totalBytes === total), "one total, known before the first byte");
  assert.equal(downloads.at(-1).totalLoaded, total);
  assert.ok(downloads.some((p) => p.file === "model.safetensors" && p.loaded < p.total), "progress within a file");
  assert.equal(first.cached, true);
  const before = requests.filter((r) => r === "GET /models/default/model.safetensors").length;
  const second = await page.evaluate(() => window.loadFrom("/models/default/"));
  assert.equal(second.text, first.text);
  const after = requests.filter((r) => r === "GET /models/default/model.safetensors").length;
  assert.equal(after, before, "the second load came from the cache");
  await page.evaluate(() => window.clearCache());
  assert.equal(await page.evaluate(() => window.isCached("/models/default/")), false, "clearCache empties it");
});

test("a worker run: the same API off the main thread, the same fill, onStep and abort across the boundary", async () => {
  const opts = { seed: 7 };
  const local = await page.evaluate(([t, o]) => window.fill("wasm", t, o), [template, opts]);
  const remote = await page.evaluate(([t, o]) => window.inWorker(t, o, 0), [template, opts]);
  assert.equal(remote.error, null);
  assert.equal(remote.backend, "wasm");
  assert.equal(remote.result.text, local.result.text, "the worker fills exactly as the page does");
  assert.deepEqual(remote.steps, local.steps.map((e) => (e.done ? { ...e, ms: remote.steps.at(-1).ms } : e)));
  assert.ok(remote.progress.includes("download") && remote.progress.at(-1) === "ready");
  const long = "Peter [MASK*12] ran into the [MASK*12] Forest.";
  const aborted = await page.evaluate(([t]) => window.inWorker(t, { strategy: "top-prob" }, 1), [long]);
  assert.equal(aborted.error?.name, "Aborted", JSON.stringify(aborted.error));
  assert.ok(aborted.steps.length < 24, `${aborted.steps.length} steps arrived`);
  assert.equal(await page.evaluate(([t]) => window.disposeInFlight(t), [long]), "Disposed");
});

test("the worker protocol: requests it cannot take get a WorkerError; worker: true is a RemoteUnmask; onStep's exception crosses", async () => {
  const out = await page.evaluate(() => window.protocol());
  for (const [key, pattern] of [
    ["early", /no model yet/],
    ["unknown", /unknown op "explode"/],
    ["version", /protocol 99, this side 3/],
    ["none", /protocol \(none\), this side 3/],
  ]) {
    const r = out[key];
    assert.equal(r.kind, "error", `${key}: ${JSON.stringify(r)}`);
    assert.equal(r.error.code, "WorkerError", key);
    assert.match(r.error.message, pattern, key);
  }
  assert.equal(out.remote, true, "instanceof RemoteUnmask");
  assert.deepEqual(out.backends, ["wasm", "wasm"]);
  assert.equal(out.onStep, "the same error");
  assert.ok(out.after.startsWith("Peter "), "the model fills after the thrown onStep");
});

test("corrupt and schedule: the same tokens on the page and through the worker proxy", async () => {
  const text = "Peter ran into the wood.";
  const [local, remote] = await page.evaluate(([t]) => window.corruptBoth(t, { family: "gaussian", t: 0.5, seed: 4 }), [text]);
  assert.deepEqual(remote, local);
  assert.equal(local.result.family, "gaussian");
  assert.equal(local.result.tokens.map((x) => x.originalText).join(""), text);
  assert.equal(local.schedule.masked.length, 11);
  assert.equal(local.error?.name, "BadInput");
  assert.match(local.error.message, /family `nope`/);
});

test("bad arguments on the page and through the worker proxy are named errors; a failed download is a NetworkError naming the URL", async () => {
  // a port nothing listens on
  const probe = createServer();
  await new Promise((r) => probe.listen(0, "127.0.0.1", r));
  const unreachable = `http://127.0.0.1:${probe.address().port}/models/gone/`;
  await new Promise((r) => probe.close(r));
  const out = await page.evaluate((u) => window.badArgs(u), unreachable);
  const named = (code, message) => ({ name: code, code, message });
  for (const w of ["page", "worker"]) {
    assert.deepEqual(out[`${w} template 42`], named("BadTemplate", "infill: template must be a string, not 42"), w);
    assert.deepEqual(out[`${w} options null`], named("BadInput", "infill: options must be an object (or left out), not null"), w);
    assert.deepEqual(out[`${w} temperature NaN`], named("BadInput", "infill: options.temperature must be a finite number, not NaN"), w);
    assert.deepEqual(out[`${w} onStep string`], named("BadInput", 'infill: options.onStep must be a function (or left out), not "log"'), w);
    assert.equal(out[`${w} lone surrogate`].code, "BadTemplate", w);
    assert.match(out[`${w} lone surrogate`].message, /^measure: template "Peter \\ud83d \[MASK\]" has a lone surrogate \\uD83D at index 6: /, w);
    assert.deepEqual(out[`${w} corrupt text`], named("BadInput", "corrupt: text must be a string, not Symbol(s)"), w);
    assert.deepEqual(out[`${w} steps null`], named("BadInput", "steps: options must be an object (or left out), not null"), w);
    // a call after dispose is Disposed (through the worker it used to wait forever)
    assert.deepEqual(out[`${w} measure disposed`], named("Disposed", "this model was disposed"), w);
    assert.deepEqual(out[`${w} schedule disposed`], named("Disposed", "this model was disposed"), w);
  }
  assert.ok(out["page still fills"].startsWith("Peter "), out["page still fills"]);
  assert.equal(out["worker still fills"], out["page still fills"], "the worker model works after the bad calls");
  assert.equal(out.network.code, "NetworkError", JSON.stringify(out.network));
  assert.match(out.network.message, new RegExp(`^${unreachable}(config\\.json|tokenizer\\.json|model\\.safetensors): could not be fetched \\(`));
  assert.deepEqual(
    out["worker no tokenizer"],
    named("BadInput", "load: source.tokenizer is missing: give tokenizer.json's bytes, or options.tokenizer (a folder or hub id to read it from)"),
  );
  assert.deepEqual(out["worker threads NaN"], named("BadInput", "load: options.threads must be 'auto' or a whole number from 1 to 256, not NaN"));
});

test("threads: in a worker of a cross-origin-isolated page the CPU path runs on 2 threads and fills the same", async () => {
  const opts = { seed: 7 };
  const single = await page.evaluate(([t, o]) => window.inWorker(t, o, 0, { threads: 2 }), [template, opts]);
  assert.deepEqual(single.threads, { count: 1, reason: "not-cross-origin-isolated" }, "the plain page cannot share memory");
  const iso = await browser.newPage();
  const warnings = [];
  iso.on("console", (m) => m.type() === "warning" && warnings.push(m.text()));
  await iso.goto(`http://127.0.0.1:${server.address().port}/isolated/page.html`);
  await iso.waitForFunction(() => window.ready === true);
  assert.equal(await iso.evaluate(() => window.isolated), true);
  const two = await iso.evaluate(([t, o]) => window.inWorker(t, o, 0, { threads: 2 }), [template, opts]);
  assert.equal(two.error, null);
  assert.deepEqual(two.threads, { count: 2, reason: "requested" });
  assert.equal(two.result.text, single.result.text, "2 threads fill exactly as 1 does");
  // on the main thread of the same page: one thread, the reason, and a warning saying what to do
  const main = await iso.evaluate(([t, o]) => window.fill("wasm", t, o), [template, opts]);
  assert.equal(main.threads, 1);
  assert.equal(main.reason.threads.reason, "main-thread");
  assert.equal(main.result.text, single.result.text);
  assert.ok(warnings.some((w) => /worker: true/.test(w)), warnings.join("\n"));
  await iso.close();
});

test("a Vite app that imports the package runs from its production build, worker included", async () => {
  const app = await browser.newPage();
  app.on("console", (m) => console.log(`[vite] ${m.text()}`));
  await app.goto(`http://127.0.0.1:${server.address().port}/vite/index.html`);
  await app.waitForFunction(() => window.result !== undefined, null, { timeout: 120000 });
  const r = await app.evaluate(() => window.result);
  assert.equal(r.error, undefined, r.error);
  assert.ok(r.text.startsWith("The ") && r.text.endsWith(" sat."), r.text);
  assert.equal(r.workerText, r.text);
  await app.close();
});
