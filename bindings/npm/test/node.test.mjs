// The packed package, installed into an empty folder, in Node (the WASM CPU path).
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { Unmask } from "unmask";

const template = "Peter [MASK*2] ran into the [MASK] Forest.";

test("the default model fills a template and keeps the known text", async () => {
  const progress = [];
  const model = await Unmask.load(undefined, { device: "wasm", onProgress: (p) => progress.push(p) });
  assert.equal(model.backend, "wasm");
  assert.equal(model.backendReason.reason.kind, "requested");
  const downloads = progress.filter((p) => p.phase === "download");
  assert.deepEqual([...new Set(downloads.map((p) => p.file))], ["config.json", "tokenizer.json", "model.safetensors"]);
  const last = downloads.at(-1);
  assert.equal(last.totalLoaded, last.totalBytes, "the total is known from the start and reached");
  assert.ok(downloads.every((p) => p.totalBytes === last.totalBytes));
  // the weights arrive in pieces, each widened to f32 as it passes (never the whole file at once)
  assert.ok(downloads.filter((p) => p.file === "model.safetensors").length > 4);
  assert.deepEqual(progress.filter((p) => p.phase !== "download").map((p) => p.phase), ["compile", "warmup", "ready"]);
  const compile = progress.find((p) => p.phase === "compile");
  assert.ok(compile.parameters > 7e6 && compile.parameters < 9e6, `${compile.parameters} parameters`);

  const laid = await model.measure(template);
  assert.deepEqual([laid.holes, laid.maxTokens], [3, 128]);
  assert.ok(laid.tokens > 10 && laid.tokens < 20, `${laid.tokens} tokens`);
  // the layout a page draws: the user's text verbatim, and positions that cover exactly the holes
  const layout = await model.layout(template);
  assert.equal(layout.tokens, laid.tokens);
  assert.deepEqual(layout.slots.filter((s) => "known" in s).map((s) => s.known), ["Peter ", " ran into the ", " Forest."]);
  const spans = layout.slots.filter((s) => "hole" in s).map((s) => s.hole);
  assert.equal(spans.reduce((n, [a, b]) => n + b - a, 0), 3);
  assert.ok(spans.every(([a, b]) => a >= 1 && b <= layout.tokens - 1), "holes sit inside the frame");
  assert.deepEqual(model.backendReason.threads, { count: 1, reason: "node" });
  const events = [];
  const r = await model.infill(template, { seed: 7, onStep: (e) => events.push(e) });
  assert.ok(r.text.startsWith("Peter ") && r.text.endsWith(" Forest."), r.text);
  assert.equal(r.holes, 3);
  assert.doesNotMatch(r.text, /\[MASK|<\|/);
  // onStep: the trace shape, commits adding up to the holes, then the done event
  const steps = events.filter((e) => !e.done);
  const done = events.at(-1);
  assert.equal(done.done, true);
  assert.deepEqual([done.text, done.steps, done.nfe], [r.text, r.steps, r.nfe]);
  assert.equal(steps.reduce((n, e) => n + e.committed.length, 0), 3);
  assert.equal(steps.at(-1).masked, 0);
  for (const e of steps) {
    for (const c of e.committed) {
      assert.ok(c.p >= 0 && c.p <= 1 && typeof c.text === "string");
      // with onStep, the five most likely tokens of the position, descending
      assert.equal(c.top.length, 5);
      assert.ok(c.top.every((x, i) => i === 0 || x.p <= c.top[i - 1].p));
      assert.ok(c.top[0].p >= c.p);
    }
  }

  // the same seed gives the same fill; the async iterable gives the same events
  const again = await model.infill(template, { seed: 7 });
  assert.equal(again.text, r.text);
  const iterated = [];
  for await (const e of model.steps(template, { seed: 7 })) iterated.push(e);
  assert.deepEqual(iterated.map((e) => e.committed ?? e.text), events.map((e) => e.committed ?? e.text));
  // ... live: each event is yielded while the fill is still running, and leaving the loop stops it
  const long = "Peter [MASK*12] ran into the [MASK*12] Forest.";
  let produced = 0;
  let consumed = 0;
  for await (const e of model.steps(long, { strategy: "top-prob", onStep: () => (produced += 1) })) {
    assert.equal(produced, consumed + 1, "yielded as its step happened, not after the fill");
    consumed += 1;
    if (consumed === 3) break;
  }
  assert.equal(consumed, 3);
  assert.ok(produced <= 4, `the fill stopped when the loop was left (${produced} steps ran)`);
  const after = await model.infill(template, { seed: 7 }); // not Busy: the broken-off fill has ended
  assert.equal(after.text, r.text);
  const bare = [];
  await model.infill(template, { seed: 7, candidates: 0, onStep: (e) => bare.push(e) });
  assert.ok(bare.every((e) => e.done || e.committed.every((c) => c.top === undefined)), "candidates: 0 lists none");
  model.dispose();
  await assert.rejects(model.infill(template), { name: "Disposed" });
});

test("Node has no WebGPU: auto runs on the CPU and says why, webgpu is a clear error", async () => {
  const model = await Unmask.load(); // device "auto", as the README's example does
  assert.equal(model.backend, "wasm");
  assert.equal(model.backendReason.reason.kind, "no-adapter");
  assert.match(model.backendReason.reason.error, /WebGPU is unavailable/);
  const r = await model.infill(template, { seed: 7 });
  assert.ok(r.text.startsWith("Peter "));
  await assert.rejects(
    Unmask.load(undefined, { device: "webgpu" }),
    (e) => e.name === "WebGPUUnavailable" && e.code === "WebGPUUnavailable" && /WebGPU/.test(e.message),
  );
});

test("the same model from bytes in memory, and errors with a stable name", async () => {
  const require = createRequire(import.meta.url);
  const dir = new URL("./", `file://${require.resolve("unmask/package.json")}`);
  const [config, weights, tokenizer] = await Promise.all(
    ["config.json", "model.safetensors", "tokenizer.json"].map((f) => readFile(new URL(`model/${f}`, dir))),
  );
  const model = await Unmask.load({ config: config.toString(), weights, tokenizer }, { device: "wasm" });
  const r = await model.infill("The [MASK*3] sat on the mat.", { strategy: "top-prob", seed: 1 });
  assert.ok(r.text.startsWith("The ") && r.text.endsWith(" sat on the mat."), r.text);
  await assert.rejects(model.infill("a [[b", {}), (e) => e.name === "BadTemplate" && e.code === "BadTemplate" && /column 3/.test(e.message));
  await assert.rejects(model.infill("no holes here", {}), { name: "BadTemplate" });
  await assert.rejects(model.infill(`${"word ".repeat(200)}[MASK]`, {}), (e) => e.name === "BadTemplate" && /context/.test(e.message));
  await assert.rejects(model.infill("a [MASK]", { topK: -1 }), (e) => e.name === "BadInput" && /topK/.test(e.message));
  await assert.rejects(model.infill("a [MASK]", { stratgy: "x" }), (e) => /unknown field/.test(e.message));
  await assert.rejects(
    Unmask.load({ config: "{}", weights: new Uint8Array(8), tokenizer }, { device: "wasm" }),
    { name: "BadModel" },
  );
  await assert.rejects(
    Unmask.load({ config: config.toString(), weights: weights.subarray(0, weights.length - 5), tokenizer }, { device: "wasm" }),
    (e) => e.name === "BadModel" && /model.safetensors: truncated/.test(e.message),
  );
  await assert.rejects(
    Unmask.load("./no-such-model/", { device: "wasm" }),
    (e) => e.name === "BadModel" && /no-such-model\/config.json: no such file/.test(e.message),
  );
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(model.infill("a [MASK]", { signal: controller.signal }), { name: "Aborted" });
  await assert.rejects(Unmask.load(undefined, { device: "wasm", signal: controller.signal }), { name: "Aborted" });
});

/** The first bytes of a safetensors file whose one F32 tensor has `shape` (no data follows). */
function headerOnly(shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const json = new TextEncoder().encode(JSON.stringify({ x: { dtype: "F32", shape, data_offsets: [0, n * 4] } }));
  const out = new Uint8Array(8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

test("a checkpoint too large for wasm32 memory fails from its header, before its data", async () => {
  const require = createRequire(import.meta.url);
  const dir = new URL("./", `file://${require.resolve("unmask/package.json")}`);
  const [config, tokenizer] = await Promise.all(["config.json", "tokenizer.json"].map((f) => readFile(new URL(`model/${f}`, dir))));
  // 1.5 G parameters: 6 GiB as f32, and only the header is given
  await assert.rejects(
    Unmask.load({ config: config.toString(), weights: headerOnly([50000, 30000]), tokenizer }, { device: "wasm" }),
    (e) => e.name === "ModelTooLarge" && /model.safetensors/.test(e.message) && /5.59 GiB/.test(e.message) && /4.00 GiB/.test(e.message),
  );
  // a small one passes the check and then fails as truncated
  await assert.rejects(
    Unmask.load({ config: config.toString(), weights: headerOnly([10, 10]), tokenizer }, { device: "wasm" }),
    (e) => e.name === "BadModel" && /truncated/.test(e.message),
  );
});

test("a fill yields between steps and stops on abort", async () => {
  const model = await Unmask.load(undefined, { device: "wasm" });
  const long = "Peter [MASK*12] ran into the [MASK*12] Forest.";
  // aborted from onStep, after the first step
  const controller = new AbortController();
  let seen = 0;
  await assert.rejects(
    model.infill(long, {
      strategy: "top-prob",
      signal: controller.signal,
      onStep: () => {
        seen += 1;
        controller.abort();
      },
    }),
    { name: "Aborted" },
  );
  assert.equal(seen, 1, "no step ran after the abort");
  // aborted by a timer while the fill runs: the fill gives the event loop a turn each step
  const timed = new AbortController();
  setTimeout(() => timed.abort(), 0);
  let steps = 0;
  await assert.rejects(
    model.infill(long, { strategy: "top-prob", signal: timed.signal, onStep: () => (steps += 1) }),
    { name: "Aborted" },
  );
  assert.ok(steps < 24, `stopped early (${steps} of 24 steps)`);
  // an exception in onStep ends the run and is what the fill rejects with
  await assert.rejects(
    model.infill(long, {
      onStep: () => {
        throw new RangeError("from onStep");
      },
    }),
    { name: "RangeError", message: "from onStep" },
  );
  // and the model is still usable afterwards
  const r = await model.infill("The [MASK] sat.", { seed: 2 });
  assert.ok(r.text.startsWith("The "));
});

test("corrupt: four families' forward process on the model's own vocabulary", async () => {
  const model = await Unmask.load(undefined, { device: "wasm" });
  const text = "Peter ran into the wood, and there he saw a little rabbit sitting under an old tree.";
  const families = ["absorbing", "uniform", "gaussian", "bits"];
  for (const family of families) {
    // t = 0: nothing has happened yet, in every family
    const r = await model.corrupt(text, { family, t: 0, seed: 3 });
    assert.deepEqual([r.family, r.t, r.noise], [family, 0, 0]);
    assert.ok(r.tokens.length > 15, `${r.tokens.length} tokens`);
    // tokenized without special tokens: the tokens' texts are the text
    assert.equal(r.tokens.map((x) => x.originalText).join(""), text);
    for (const x of r.tokens) {
      assert.deepEqual([x.id, x.text, x.masked, x.changed, x.valid], [x.originalId, x.originalText, false, false, true], family);
    }
    // a seed fixes the draw; another seed draws differently (at a t where the continuous
    // families move tokens: in 256 dimensions the nearest embedding survives much noise)
    const t = family === "gaussian" || family === "bits" ? 0.9 : 0.5;
    const a = await model.corrupt(text, { family, t, seed: 11 });
    assert.deepEqual(await model.corrupt(text, { family, t, seed: 11 }), a, family);
    assert.notDeepEqual((await model.corrupt(text, { family, t, seed: 12 })).tokens, a.tokens, family);
    assert.ok(a.tokens.some((x) => x.changed), family);
    for (const x of a.tokens) {
      assert.equal(x.changed, x.id !== x.originalId, family);
      assert.equal(x.valid, x.id !== null, family);
      assert.equal(typeof x.text, "string");
    }
  }
  // t = 1 with MDLM's log-linear schedule: each token masked with probability 1 − 10⁻³
  const masked = await model.corrupt(text, { family: "absorbing", t: 1, seed: 3 });
  assert.ok(Math.abs(masked.noise - 0.999) < 1e-12, `${masked.noise}`);
  assert.ok(masked.tokens.every((x) => x.masked && x.changed && x.text === "<|mask|>"), "this seed masks every token");
  // the uniform family never draws the mask or a special token
  const uniform = await model.corrupt(text, { family: "uniform", t: 1, seed: 3 });
  assert.ok(uniform.tokens.every((x) => !x.masked && x.id > 1 && x.id < 4095));
  assert.ok(uniform.tokens.filter((x) => x.changed).length > uniform.tokens.length - 3);
  const gaussian = await model.corrupt(text, { family: "gaussian", t: 1, seed: 3 });
  assert.equal(gaussian.noise, 1);

  await assert.rejects(model.corrupt(text, { family: "gauss" }), (e) => e.name === "BadInput" && e.code === "BadInput" && /family `gauss`/.test(e.message));
  for (const t of [1.5, -0.1, Number.NaN, Number.POSITIVE_INFINITY]) {
    await assert.rejects(model.corrupt(text, { family: "bits", t }), (e) => e.name === "BadInput" && /t = /.test(e.message), `t = ${t}`);
  }
  await assert.rejects(model.corrupt(text, { family: "bits", tt: 1 }), (e) => e.name === "BadInput" && /unknown field/.test(e.message));
  assert.deepEqual((await model.corrupt("", { family: "gaussian" })).tokens, []);

  const s = await model.schedule();
  assert.equal(s.name, "loglinear");
  assert.equal(s.masked.length, 101);
  assert.equal(s.continuous.length, 101);
  assert.deepEqual(s.masked[0], [0, 0]);
  assert.deepEqual(s.continuous[0], [0, 0]);
  assert.deepEqual(s.continuous.at(-1), [1, 1]);
  assert.equal(s.masked.at(-1)[0], 1);
  assert.ok(Math.abs(s.masked.at(-1)[1] - 0.999) < 1e-12);
  assert.ok(Math.abs(s.masked[50][1] - 0.4995) < 1e-12 && Math.abs(s.continuous[50][1] - 0.5) < 1e-12);
  for (const curve of [s.masked, s.continuous]) {
    assert.ok(curve.every(([t, y], i) => i === 0 || (t > curve[i - 1][0] && y > curve[i - 1][1])), "increasing");
  }
  assert.equal((await model.schedule(1)).masked.length, 2);
  assert.equal((await model.schedule(5000)).continuous.length, 1000);
  await assert.rejects(model.schedule("many"), { name: "BadInput" });

  // corrupt does not need the engine: it works while a fill holds it
  let during = null;
  await model.infill("Peter [MASK*4] ran.", {
    onStep: () => {
      during ??= model.corrupt(text, { family: "gaussian", t: 0.9, seed: 11 });
    },
  });
  assert.ok(during !== null);
  assert.deepEqual(await during, await model.corrupt(text, { family: "gaussian", t: 0.9, seed: 11 }));
  model.dispose();
  await assert.rejects(model.corrupt(text), { name: "Disposed" });
});

test("the tokenizer option reads tokenizer.json from another folder", async () => {
  const require = createRequire(import.meta.url);
  const dir = new URL("./model/", `file://${require.resolve("unmask/package.json")}`);
  const bare = await mkdtemp(join(tmpdir(), "unmask-no-tokenizer-"));
  try {
    for (const f of ["config.json", "model.safetensors"]) await copyFile(new URL(f, dir), join(bare, f));
    await assert.rejects(Unmask.load(`${bare}/`, { device: "wasm" }), (e) => e.name === "BadModel" && /tokenizer.json/.test(e.message));
    const progress = [];
    const model = await Unmask.load(`${bare}/`, { device: "wasm", tokenizer: dir.pathname, onProgress: (p) => progress.push(p) });
    const tok = progress.filter((p) => p.file === "tokenizer.json");
    assert.ok(tok.length > 0 && tok.at(-1).total === tok.at(-1).loaded, "its size known and its bytes read");
    const r = await model.infill("The [MASK*3] sat.", { seed: 1 });
    assert.ok(r.text.startsWith("The ") && r.text.endsWith(" sat."), r.text);
    model.dispose();
  } finally {
    await rm(bare, { recursive: true, force: true });
  }
});
