// The packed package, installed into an empty folder, in Node (the WASM CPU path).
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { createServer } from "node:http";
import { Unmask, RemoteUnmask, strategies, reapply, need } from "unmask";

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
  assert.deepEqual(progress.filter((p) => p.phase !== "download").map((p) => p.phase), ["memory", "compile", "warmup", "ready"]);
  // the memory is stated once the header is in, before the rest of the weights
  const memory = progress.find((p) => p.phase === "memory");
  const weightEvents = downloads.filter((p) => p.file === "model.safetensors");
  assert.ok(progress.indexOf(memory) < progress.indexOf(weightEvents.at(-1)), "memory before the download ends");
  assert.equal(memory.backend, "wasm");
  assert.equal(memory.toGpu, false);
  assert.equal(memory.gpuBytes, 0);
  assert.equal(memory.wasmBytes, memory.f32Bytes);
  assert.ok(memory.wasmPeakBytes > memory.wasmBytes && memory.refused === null);
  // wasm memory holds the model (as f32) and no more than the load's stated peak
  assert.equal(model.memory.gpuBytes, 0);
  assert.ok(model.memory.wasmBytes > memory.wasmBytes && model.memory.wasmBytes < memory.wasmPeakBytes + 64e6, JSON.stringify([model.memory, memory]));
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

test("one backend vocabulary; camelCase lengths; a wasm model is an Unmask, not a RemoteUnmask", async () => {
  const model = await Unmask.load(undefined, { device: "wasm" });
  assert.ok(model instanceof Unmask && !(model instanceof RemoteUnmask));
  assert.equal(model.backendReason.backend, model.backend, "backendReason says the backend as backend does");
  assert.equal(model.backendReason.adapter, null, "no adapter: null, as the types say");
  // the old names for a device are still read
  const cpu = await Unmask.load(undefined, { device: "cpu" });
  assert.equal(cpu.backend, "wasm");
  cpu.dispose();
  // holes of unknown length: every fill tried, with natsPerToken (and the old name beside it)
  const events = [];
  const r = await model.infill("Peter [MASK*1-3] ran.", { seed: 3, onStep: (e) => events.push(e) });
  const tried = events.find((e) => e.lengths)?.lengths;
  assert.ok(tried?.length >= 2 && r.lengths?.length === tried.length, JSON.stringify(r.lengths));
  for (const c of [...tried, ...r.lengths]) {
    assert.equal(typeof c.natsPerToken, "number");
    assert.equal(c.natsPerToken, c.nats_per_token);
  }
  model.dispose();
});

test("strategies(): the engine's list, the same names as index.d.ts's StrategyName", async () => {
  const listed = await strategies();
  assert.ok(listed.every((s) => typeof s.name === "string" && typeof s.usage === "string" && s.help.length > 10));
  const require = createRequire(import.meta.url);
  const dts = await readFile(new URL("./index.d.ts", `file://${require.resolve("unmask/package.json")}`), "utf8");
  const union = /export type StrategyName =([^;]*);/.exec(dts)?.[1];
  assert.ok(union, "index.d.ts declares StrategyName");
  const typed = [...union.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(typed, listed.map((s) => s.name), "index.d.ts's StrategyName lists the engine's strategies, in order");
  // each entry names the model families it samples, and each family has exactly one default
  const families = ["absorbing", "uniform", "score-absorbing", "score-uniform", "gaussian", "bits"];
  for (const f of families) {
    assert.equal(listed.filter((s) => s.defaultFor.includes(f)).length, 1, `one default for ${f}`);
    assert.ok(listed.filter((s) => s.defaultFor.includes(f)).every((s) => s.families.includes(f)), `${f}'s default samples it`);
  }
  const of = (f) => listed.filter((s) => s.families.includes(f)).map((s) => s.name);
  assert.deepEqual(of("uniform"), ["uniform", "psi"]);
  assert.deepEqual(of("absorbing"), ["ancestral", "first-hitting", "top-prob", "margin", "entropy", "threshold", "entropy-bound", "mask-predict", "remdm"]);
  assert.deepEqual(listed.find((s) => s.defaultFor.includes("absorbing")).name, "top-prob");
  assert.deepEqual(of("gaussian"), ["ddim", "ddpm"]);
  assert.deepEqual(of("bits"), ["ddim", "ddpm"]);
  assert.equal(listed.find((s) => s.defaultFor.includes("gaussian")).name, "ddim");
  assert.equal(listed.find((s) => s.defaultFor.includes("bits")).name, "ddim");
  // each name (and the arguments) is a strategy a fill takes on a model of a family it fits, and
  // is refused, naming the ones that fit, on the others (no SEDD model ships with the package)
  const models = {
    absorbing: await Unmask.load("default", { device: "wasm" }),
    uniform: await Unmask.load("uniform", { device: "wasm" }),
    gaussian: await Unmask.load("gaussian", { device: "wasm" }),
    bits: await Unmask.load("bits", { device: "wasm" }),
  };
  for (const s of [...listed.map((x) => x.name), "threshold:0.5", "remdm:0.1", "psi:0.5"]) {
    const fits = listed.find((x) => x.name === s.split(":")[0]).families;
    for (const [family, model] of Object.entries(models)) {
      if (fits.includes(family)) {
        const r = await model.infill("Peter [MASK] ran.", { strategy: s, seed: 1 });
        assert.ok(r.text.startsWith("Peter ") && r.text.endsWith(" ran."), `${s} on ${family}: ${r.text}`);
      } else {
        await assert.rejects(
          model.infill("Peter [MASK] ran.", { strategy: s, seed: 1 }),
          (e) => e.name === "BadInput" && e.code === "BadInput" && e.message.includes(of(family)[0]),
          `${s} on ${family}`,
        );
      }
    }
  }
  for (const m of Object.values(models)) m.dispose();
});

test("the bundled models by name: \"uniform\" fills by uniform-state diffusion, \"default\" is the masked one", async () => {
  const model = await Unmask.load("uniform", { device: "wasm" });
  assert.equal(model.family, "uniform");
  const byName = await Unmask.load("default", { device: "wasm" });
  assert.equal(byName.family, "absorbing");
  assert.equal((await Unmask.load(undefined, { device: "wasm" })).family, "absorbing", "no source: the default model");
  // the same vocabulary and tokenizer: the same text between the same number of hole positions
  const shape = (l) => l.slots.map((s) => ("known" in s ? s.known : s.hole[1] - s.hole[0]));
  assert.deepEqual(shape(await model.layout(template)), shape(await byName.layout(template)));
  byName.dispose();

  const events = [];
  const r = await model.infill(template, { seed: 7, onStep: (e) => events.push(e) });
  assert.match(r.text, /^Peter .+ ran into the .+ Forest\.$/);
  assert.doesNotMatch(r.text, /\[MASK|<\|/);
  const steps = events.filter((e) => !e.done);
  // step 0 commits every hole with its starting token (seeded uniform noise) before any pass
  assert.deepEqual([steps[0].step, steps[0].nfe, steps[0].committed.length], [0, 0, 3]);
  // nothing is ever masked; later steps list the holes whose token changed
  assert.ok(steps.every((e) => e.masked === 0), "masked is always 0");
  const holes = new Set(steps[0].committed.map((c) => c.pos));
  assert.ok(steps.every((e) => e.committed.every((c) => holes.has(c.pos))), "only holes change");
  assert.ok(steps.slice(1).reduce((n, e) => n + e.committed.length, 0) >= 1, "some hole changed after the noise");
  // the last state of each hole is what the text says: replaying the commits gives the fill
  const last = new Map();
  for (const e of steps) for (const c of e.committed) last.set(c.pos, c.text);
  assert.equal(`Peter${last.get([...holes][0])}${last.get([...holes][1])} ran into the${last.get([...holes][2])} Forest.`.replace(/\s+/g, " "), r.text.replace(/\s+/g, " "));
  // the same seed gives the same fill; psi fills too; a masked model's strategy is refused
  assert.equal((await model.infill(template, { seed: 7 })).text, r.text);
  assert.match((await model.infill(template, { strategy: "psi:0.8", seed: 7 })).text, /^Peter .+ Forest\.$/);
  await assert.rejects(
    model.infill(template, { strategy: "top-prob" }),
    (e) => e.name === "BadInput" && /top-prob/.test(e.message) && /uniform-state/.test(e.message) && /uniform, psi/.test(e.message),
  );
  // a [[words]] hole starts as its words
  const rewrite = [];
  await model.infill("Peter [[ran quickly]] into the Forest.", { seed: 1, onStep: (e) => rewrite.push(e) });
  assert.deepEqual(rewrite[0].committed.map((c) => c.text).join(""), " ran quickly");
  model.dispose();

  // a bare name is the bundled model; "./uniform" is a folder (here, none)
  await assert.rejects(Unmask.load("./uniform", { device: "wasm" }), (e) => e.name === "BadModel" && /uniform\/config.json: no such file/.test(e.message));
});

test("the continuous bundled models by name: \"gaussian\" and \"bits\" fill by DDIM, the text condensing out of noise", async () => {
  const masked = await Unmask.load("default", { device: "wasm" });
  const shape = (l) => l.slots.map((s) => ("known" in s ? s.known : s.hole[1] - s.hole[0]));
  const expected = shape(await masked.layout(template));
  masked.dispose();
  for (const name of ["gaussian", "bits"]) {
    const model = await Unmask.load(name, { device: "wasm" });
    assert.equal(model.family, name);
    assert.equal(model.backend, "wasm");
    // the same tokenizer: the same text between the same number of hole positions
    assert.deepEqual(shape(await model.layout(template)), expected, name);
    const options = { strategy: "ddim", steps: 4, seed: 7 };
    // the steps as an async iterable…
    const iterated = [];
    for await (const e of model.steps(template, options)) iterated.push(e);
    const done = iterated.at(-1);
    assert.equal(done.done, true, `${name}: the done event last`);
    // …and the same fill through onStep: a seed gives one run
    const events = [];
    const r = await model.infill(template, { ...options, onStep: (e) => events.push(e) });
    assert.equal(r.text, done.text, `${name}: steps() and infill agree`);
    assert.deepEqual(events.map((e) => e.committed?.map((c) => [c.pos, c.id])), iterated.map((e) => e.committed?.map((c) => [c.pos, c.id])));
    // the known text is unchanged; every hole holds a token
    assert.match(r.text, /^Peter .+ ran into the .+ Forest\.$/s, `${name}: ${r.text}`);
    assert.doesNotMatch(r.text, /\[MASK|<\|/);
    const steps = events.filter((e) => !e.done && !e.lengths);
    assert.equal(steps.length, 4, `${name}: four steps`);
    assert.equal(r.nfe, 4);
    // the first step lists every hole (its readout out of pure noise); nothing is ever masked;
    // t runs down from 1
    assert.equal(steps[0].committed.length, 3, `${name}: every hole in the first step`);
    const holes = new Set(steps[0].committed.map((c) => c.pos));
    assert.equal(holes.size, 3);
    assert.ok(steps.every((e) => e.masked === 0), "masked is always 0");
    assert.ok(steps.every((e) => e.committed.every((c) => holes.has(c.pos))), "only holes change");
    assert.ok(steps[0].t > 0.99 && steps[0].t <= 1, `t starts at 1: ${steps[0].t}`);
    assert.ok(steps.every((e, i) => i === 0 || e.t < steps[i - 1].t), `t runs down: ${steps.map((e) => e.t)}`);
    // the text condenses: some hole's readout changes after the first step
    const later = steps.slice(1).reduce((n, e) => n + e.committed.length, 0);
    assert.ok(later >= 1, `${name}: a hole changed after step 1`);
    // replaying the commits gives the fill
    const last = new Map();
    for (const e of steps) for (const c of e.committed) last.set(c.pos, c.text);
    const [a, b, c] = [...holes].sort((x, y) => x - y).map((p) => last.get(p));
    // (spacing aside: a token without its leading space keeps the template's space before the hole)
    assert.equal(`Peter${a}${b} ran into the${c} Forest.`.replace(/\s+/g, ""), r.text.replace(/\s+/g, ""));
    // ddpm fills too; a discrete family's strategy is refused, naming the ones that fit
    assert.match((await model.infill(template, { strategy: "ddpm", steps: 4, seed: 7 })).text, /^Peter .+ ran into the .+ Forest\.$/s);
    await assert.rejects(model.infill(template, { strategy: "top-prob" }), (e) => e.name === "BadInput" && /ddim/.test(e.message));
    console.log(`# ${name}: "${r.text}", ${later} readout changes after step 1 (ddim, 4 steps)`);
    model.dispose();
  }
  // a bare name is the bundled model; "./gaussian" is a folder (here, none)
  await assert.rejects(Unmask.load("./gaussian", { device: "wasm" }), (e) => e.name === "BadModel" && /gaussian\/config.json: no such file/.test(e.message));
});

/**
 * Replays a fill's events on the canvas `layout` describes: each hole position a mask (null), each
 * step's commits written where they say, each `expand` and `delete` applied as its event says.
 * Checks every event against the canvas as it goes and returns the filled text (known text
 * verbatim, each hole's tokens joined, a leading space dropped after a space, as Canvas::text
 * does), the holes' lengths, the canvas length, and the moves seen.
 */
function replay(layout, events) {
  // one entry per canvas position: { hole, text } for a hole's (text null while masked), null elsewhere
  const canvas = Array.from({ length: layout.tokens }, () => null);
  const holes = layout.slots.filter((s) => "hole" in s);
  holes.forEach((s, h) => {
    for (let p = s.hole[0]; p < s.hole[1]; p++) canvas[p] = { hole: h, text: null };
  });
  const lengthOf = (h) => canvas.filter((c) => c?.hole === h).length;
  const masked = () => canvas.filter((c) => c !== null && c.text === null).length;
  const moves = { expand: 0, delete: 0, deleted: 0 };
  let last = null;
  for (const e of events) {
    if ("expand" in e) {
      assert.equal(last?.committed.at(-1)?.pos, e.expand, "an expansion follows the step that committed <|expand|> there");
      assert.equal(canvas[e.expand]?.text, "<|expand|>");
      const { hole } = canvas[e.expand];
      canvas[e.expand] = { hole, text: null };
      canvas.splice(e.expand + 1, 0, { hole, text: null });
      // (e.hole counts the holes of unknown length; here every hole is one)
      assert.equal(lengthOf(hole), e.length, "the hole's length, as the event says");
      assert.equal(masked(), e.masked);
      moves.expand += 1;
    } else if ("delete" in e) {
      assert.equal(last?.committed.at(-1)?.pos, e.delete[0], "a deletion starts at the step's end token");
      assert.equal(canvas[e.delete[0]]?.text, "<|endoftext|>");
      const { hole } = canvas[e.delete[0]];
      assert.ok(e.delete.every((p, i) => i === 0 || (canvas[p]?.hole === hole && canvas[p].text === null && p > e.delete[i - 1])), "the masks to its right, in its hole, ascending");
      for (const p of [...e.delete].reverse()) canvas.splice(p, 1);
      assert.equal(lengthOf(hole), e.length);
      assert.equal(masked(), e.masked);
      moves.delete += 1;
      moves.deleted += e.delete.length;
    } else if ("committed" in e) {
      for (const c of e.committed) {
        assert.ok(canvas[c.pos] !== null && canvas[c.pos].text === null, `step ${e.step} commits a masked hole position (${c.pos})`);
        canvas[c.pos].text = c.text;
      }
      last = e;
    }
  }
  assert.equal(masked(), 0, "every hole position filled");
  const text = layout.slots
    .map((s) => {
      if ("known" in s) return s.known;
      const h = holes.indexOf(s);
      const fill = canvas.filter((c) => c?.hole === h).map((c) => c.text).join("");
      return s.afterSpace ? fill.replace(/^ +/, "") : fill;
    })
    .join("");
  return { text, lengths: holes.map((_, h) => lengthOf(h)), tokens: canvas.length, moves };
}

test("dreamon: a hole of unknown length grows and shrinks in one fill; its expand and delete events replay on the starting layout", async () => {
  const model = await Unmask.load("dreamon", { device: "wasm" });
  assert.equal(model.family, "absorbing");
  const open = "The little girl [MASK*?] to the park.";
  // the starting canvas: DreamOn's 4 masks, or holeStart's, clamped into a range
  const layout = await model.layout(open);
  const holeLengths = (l) => l.slots.filter((s) => "hole" in s).map((s) => s.hole[1] - s.hole[0]);
  assert.deepEqual(layout.slots.filter((s) => "known" in s).map((s) => s.known), ["The little girl ", " to the park."]);
  assert.deepEqual(holeLengths(layout), [4]);
  const seven = await model.layout(open, { holeStart: 7 });
  assert.deepEqual([holeLengths(seven), seven.tokens], [[7], layout.tokens + 3]);
  assert.deepEqual(holeLengths(await model.layout("The little girl [MASK*2-3] to the park.")), [3], "4 clamped into 2-3");
  assert.deepEqual(holeLengths(await model.layout("The little girl [MASK*5-9] to the park.", { holeStart: 1 })), [5]);
  const measured = await model.measure(open);
  assert.deepEqual([measured.tokens, measured.holes], [layout.tokens, 4], "measure: the starting canvas too");

  for (const [template, options] of [
    [open, { seed: 3 }],
    ["Once upon a time [MASK*2-6] lived in a [MASK*1-3], and [MASK*2] was happy.", { seed: 5, holeStart: 3 }],
  ]) {
    const start = await model.layout(template, { holeStart: options.holeStart });
    const events = [];
    const r = await model.infill(template, { ...options, onStep: (e) => events.push(e) });
    assert.equal(events.at(-1).done, true);
    assert.equal(events.at(-1).text, r.text);
    const steps = events.filter((e) => "committed" in e);
    assert.equal(steps.length, r.steps);
    // the first step sees every starting mask and commits one of them
    assert.equal(steps[0].masked, holeLengths(start).reduce((a, b) => a + b, 0) - 1);
    const back = replay(start, events);
    assert.equal(back.text, r.text, "the events replayed on the starting layout give the fill");
    // hole_lengths: each hole of unknown length's final length (the fixed [MASK*2] is not one)
    const unknown = holeLengths(start).length - (template.includes("[MASK*2]") ? 1 : 0);
    assert.equal(r.hole_lengths.length, unknown);
    assert.deepEqual(back.lengths.slice(0, unknown), r.hole_lengths);
    if (template.includes("[MASK*2]")) assert.equal(back.lengths[2], 2, "a fixed-length hole never moves");
    const startLengths = holeLengths(start).slice(0, unknown);
    assert.equal(back.moves.expand - back.moves.deleted, r.hole_lengths.reduce((a, b) => a + b, 0) - startLengths.reduce((a, b) => a + b, 0), "each expansion adds one position, each deleted position takes one");
    // the final canvas, laid out by its lengths, is the replayed one
    const final = await model.layout(template, { lengths: r.hole_lengths });
    assert.equal(final.tokens, back.tokens);
    assert.deepEqual(holeLengths(final), back.lengths);
    // the ranges hold: [MASK*2-6] stays in 2..6, [MASK*1-3] in 1..3, [MASK*?] in 1..64
    const bounds = template === open ? [[1, 64]] : [[2, 6], [1, 3]];
    r.hole_lengths.forEach((n, i) => assert.ok(n >= bounds[i][0] && n <= bounds[i][1], `hole ${i}: ${n} tokens`));
    console.log(`dreamon ${JSON.stringify(template)}: ${back.moves.expand} expansions, ${back.moves.delete} deletions (${back.moves.deleted} positions), lengths ${r.hole_lengths}: ${r.text}`);
  }

  // what does not apply to a growing hole is refused, naming it
  await assert.rejects(model.infill(open, { strategy: "ancestral" }), (e) => e.code === "BadInput" && /top-prob, margin or entropy/.test(e.message));
  await assert.rejects(model.infill(open, { steps: 4 }), (e) => e.code === "BadInput" && /step count/.test(e.message));
  // holeStart and the layout options are checked before the module
  await assert.rejects(model.infill(open, { holeStart: 0 }), (e) => e.code === "BadInput" && e.message === "infill: options.holeStart must be a whole number from 1 to 2^53 − 1, not 0");
  await assert.rejects(model.layout(open, { holeStart: 1.5 }), (e) => e.code === "BadInput" && /^layout: options.holeStart must be/.test(e.message));
  await assert.rejects(model.layout(open, { lengths: [3, 4] }), (e) => e.code === "BadInput" && /lengths: 2 given, but the template has 1 hole of unknown length/.test(e.message));
  await assert.rejects(model.layout(open, { lengths: [65] }), (e) => e.code === "BadInput" && /65 for `\[MASK\*\?\]` at column \d+, which takes 1 to 64 tokens/.test(e.message));
  await assert.rejects(model.measure(open, { start: 4 }), (e) => e.code === "BadInput" && /unknown field/.test(e.message));
  model.dispose();

  // a model without <|expand|> ranks one fill per length: no layout before the fill, one at the
  // chosen lengths after it, on which its (the chosen fill's) steps replay
  const ranked = await Unmask.load("default", { device: "wasm" });
  await assert.rejects(ranked.layout(open), (e) => e.code === "BadTemplate" && /once per length/.test(e.message) && /\{ lengths \}/.test(e.message));
  const longest = await ranked.measure(open);
  assert.equal(longest.holes, 8, "measure: the longest of [MASK*?]'s 1 to 8");
  const events = [];
  const r = await ranked.infill(open, { seed: 3, onStep: (e) => events.push(e) });
  assert.equal(r.hole_lengths, undefined, "no hole grew");
  const chosen = r.lengths.find((c) => c.chosen).lengths;
  assert.deepEqual(events.filter((e) => "expand" in e || "delete" in e), []);
  assert.equal(replay(await ranked.layout(open, { lengths: chosen }), events).text, r.text);
  ranked.dispose();
});

test("reapply: the sampler's temperature and top-p on a step's candidates, in the module", async () => {
  const top = [
    { id: 5, text: " a", p: 0.4 },
    { id: 9, text: " b", p: 0.2 },
    { id: 2, text: " c", p: 0.1 },
    { id: 7, text: " d", p: 0.1 },
  ];
  const close = (a, b) => Math.abs(a - b) < 1e-6;
  // nothing asked: the candidates renormalised, every one kept, and the rest of each kept
  const same = await reapply(top);
  assert.deepEqual(same.map((c) => [c.id, c.text, c.p]), top.map((c) => [c.id, c.text, c.p]));
  assert.ok(same.every((c, i) => c.kept && close(c.tempered, top[i].p / 0.8) && close(c.final, c.tempered)));
  // T = 0.5 squares them; top-p 0.8 keeps the first two, renormalised
  const sharp = await reapply(top, { temperature: 0.5, topP: 0.8 });
  const z = 0.16 + 0.04 + 0.01 + 0.01;
  assert.ok(sharp.every((c, i) => close(c.tempered, top[i].p ** 2 / z)));
  assert.deepEqual(sharp.map((c) => c.kept), [true, true, false, false]);
  assert.ok(close(sharp[0].final, 0.8) && close(sharp[1].final, 0.2) && sharp[2].final === 0);
  // temperature 0: the most likely takes it all; topK 1 the same
  assert.deepEqual((await reapply(top, { temperature: 0 })).map((c) => c.final), [1, 0, 0, 0]);
  assert.deepEqual((await reapply(top, { topK: 1 })).map((c) => c.final), [1, 0, 0, 0]);
  assert.deepEqual(await reapply([]), []);
  // the same as what a step event's candidates say
  const model = await Unmask.load(undefined, { device: "wasm" });
  let step = null;
  await model.infill("Peter [MASK] ran.", { seed: 1, onStep: (e) => (step ??= e.committed?.length ? e : null) });
  const listed = step.committed[0].top;
  const again = await reapply(listed, { temperature: 1, topP: 1 });
  const sum = listed.reduce((a, c) => a + c.p, 0);
  assert.ok(again.every((c) => close(c.final, c.p / sum)));
  model.dispose();
  // bad arguments are BadInput naming them
  await assert.rejects(reapply(null), { code: "BadInput", message: "reapply: candidates must be an array of { p } (a step event's `top`), not null" });
  await assert.rejects(reapply([{ p: 2 }]), { code: "BadInput", message: "reapply: candidates[0].p must be a probability in [0, 1], not 2" });
  await assert.rejects(reapply(top, { temperature: -1 }), { code: "BadInput", message: "reapply: options.temperature must be a finite number of at least 0, not -1" });
  await assert.rejects(reapply(top, { topP: 0 }), { code: "BadInput", message: "reapply: options.topP must be a number in (0, 1], not 0" });
  await assert.rejects(reapply(top, { top_p: 0.5 }), (e) => e.code === "BadInput" && /unknown field/.test(e.message));
});

test("the worker protocol, the page's side: versioned replies told apart by kind, one error codec", async () => {
  const require = createRequire(import.meta.url);
  const protocol = await import(new URL("./protocol.js", `file://${require.resolve("unmask/package.json")}`).href);
  // a stand-in worker that answers each request as `answer` says
  const fake = (answer) => () => {
    const w = {
      terminated: false,
      posted: [],
      onmessage: null,
      onerror: null,
      postMessage(msg) {
        w.posted.push(msg);
        for (const r of answer(msg)) queueMicrotask(() => w.onmessage?.({ data: r }));
      },
      terminate() {
        w.terminated = true;
      },
    };
    fake.last = w;
    return w;
  };
  const info = { backend: "wasm", family: "uniform", backendReason: { backend: "wasm", adapter: null, reason: { kind: "requested" }, threads: { count: 1, reason: "node" } } };
  const progress = [];
  const model = await RemoteUnmask.load(undefined, { device: "wasm", onProgress: (p) => progress.push(p.phase) }, fake((m) => {
    if (m.op === "load") return [protocol.reply.progress(m.id, { phase: "ready", backend: "wasm" }), protocol.reply.value(m.id, info)];
    if (m.op === "measure") return [protocol.reply.error(m.id, protocol.namedError("BadTemplate", "measure: no holes"))];
    if (m.op === "schedule") return [{ id: m.id, kind: "value", value: {} }]; // a worker of another version
    if (m.op === "corrupt") return [protocol.reply.error(m.id, new TypeError("x is undefined"))];
    return [];
  }));
  assert.deepEqual(fake.last.posted[0].v, protocol.PROTOCOL_VERSION, "requests carry the version");
  assert.deepEqual(progress, ["ready"]);
  assert.ok(model instanceof RemoteUnmask && model.backend === "wasm" && model.threads === 1 && model.family === "uniform");
  await assert.rejects(model.measure("x"), (e) => e instanceof Error && e.name === "BadTemplate" && e.code === "BadTemplate" && e.message === "measure: no holes");
  await assert.rejects(model.schedule(3), (e) => e.code === "WorkerError" && /protocol \(none\), this side 3/.test(e.message));
  // anything but the package's errors crosses as InternalError, saying what it was
  await assert.rejects(model.corrupt("a"), (e) => e.code === "InternalError" && /TypeError: x is undefined/.test(e.message));
  model.dispose();
  assert.ok(fake.last.terminated);
  // a load that fails ends its worker
  await assert.rejects(
    RemoteUnmask.load(undefined, {}, fake((m) => [protocol.reply.error(m.id, protocol.namedError("BadModel", "config.json: no such file"))])),
    { code: "BadModel", message: "config.json: no such file" },
  );
  assert.ok(fake.last.terminated, "the worker of a failed load is ended");
  // the codec both ways
  assert.deepEqual(protocol.toWire(protocol.namedError("Busy", "b")), { code: "Busy", message: "b" });
  const back = protocol.fromWire({ code: "NotACode", message: "m" });
  assert.equal(back.code, "InternalError");
  assert.equal(protocol.mismatch({ v: protocol.PROTOCOL_VERSION }, "reply"), null);
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
  // need() says so before any load, from the same header
  const big = await need({ config: config.toString(), weights: headerOnly([50000, 30000]), tokenizer }, { device: "wasm" });
  assert.equal(big.wasmBytes, 6e9);
  assert.equal(big.fileBytes > 6e9 / 2, true);
  assert.match(big.refused, /5\.59 GiB/);
  const fine = await need(undefined, { device: "wasm" });
  assert.equal(fine.refused, null);
  assert.equal(fine.backend, "wasm");
  assert.ok(fine.wasmBytes > 28e6 && fine.wasmBytes < 36e6, `${fine.wasmBytes}`);
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
    await assert.rejects(
      model.corrupt(text, { family: "bits", t }),
      (e) => e.name === "BadInput" && e.message === `corrupt: options.t must be a noise level in [0, 1], not ${t}`,
      `t = ${t}`,
    );
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

// --- JavaScript arguments: every public function checks its arguments before the module sees them

/** The model files shipped with the installed package. */
async function packageFiles() {
  const require = createRequire(import.meta.url);
  const dir = new URL("./model/", `file://${require.resolve("unmask/package.json")}`);
  const [config, weights, tokenizer] = await Promise.all(
    ["config.json", "model.safetensors", "tokenizer.json"].map((f) => readFile(new URL(f, dir))),
  );
  return { dir, config, weights, tokenizer };
}

/** Rejects (or throws at once) with exactly this code and message. */
async function refuses(call, code, message) {
  let error = null;
  try {
    await call();
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof Error, `expected ${code}, got ${error === null ? "a result" : String(error)}`);
  assert.equal(error.name, code, error.message);
  assert.equal(error.code, code, error.message);
  if (message instanceof RegExp) assert.match(error.message, message);
  else assert.equal(error.message, message);
}

test("bad arguments are BadTemplate or BadInput naming the argument and the value given", async () => {
  const model = await Unmask.load(undefined, { device: "wasm" });
  const one = "Peter [MASK] ran.";
  // non-string templates, for every method that takes one (steps throws at once, before iterating)
  for (const [v, shown] of [[42, "42"], [undefined, "undefined"], [null, "null"], [new String(one), "a String"], [Symbol("t"), "Symbol(t)"], [["a [MASK]"], "an array"]]) {
    await refuses(() => model.infill(v), "BadTemplate", `infill: template must be a string, not ${shown}`);
    await refuses(() => model.measure(v), "BadTemplate", `measure: template must be a string, not ${shown}`);
    await refuses(() => model.layout(v), "BadTemplate", `layout: template must be a string, not ${shown}`);
    assert.throws(() => model.steps(v), { code: "BadTemplate", message: `steps: template must be a string, not ${shown}` });
  }
  // null (and other non-object) options
  await refuses(() => model.infill(one, null), "BadInput", "infill: options must be an object (or left out), not null");
  await refuses(() => model.infill(one, "fast"), "BadInput", 'infill: options must be an object (or left out), not "fast"');
  await refuses(() => model.infill(one, [1]), "BadInput", "infill: options must be an object (or left out), not an array");
  assert.throws(() => model.steps(one, null), { code: "BadInput", message: "steps: options must be an object (or left out), not null" });
  await refuses(() => model.corrupt("x", null), "BadInput", "corrupt: options must be an object (or left out), not null");
  await refuses(() => Unmask.load(undefined, null), "BadInput", "load: options must be an object (or left out), not null");
  // NaN and ±Infinity (which JSON would have turned into null, i.e. the default)
  for (const [key, v] of [["temperature", NaN], ["topP", Infinity], ["cfg", -Infinity], ["temperature", 2 ** 1024]]) {
    await refuses(() => model.infill(one, { [key]: v }), "BadInput", `infill: options.${key} must be a finite number, not ${v}`);
  }
  for (const [key, v, shown] of [["steps", NaN, "NaN"], ["seed", 1.5, "1.5"], ["topK", -1, "-1"], ["seed", 2 ** 64, "18446744073709552000"], ["seed", 7n, "7n"], ["blockLength", Infinity, "Infinity"], ["candidates", "5", '"5"'], ["steps", null, "null"]]) {
    await refuses(() => model.infill(one, { [key]: v }), "BadInput", `infill: options.${key} must be a whole number from 0 to 2^53 − 1, not ${shown}`);
  }
  await refuses(() => model.corrupt("x", { seed: NaN }), "BadInput", "corrupt: options.seed must be a whole number from 0 to 2^53 − 1, not NaN");
  await refuses(() => model.schedule(NaN), "BadInput", "schedule: points must be a finite number, not NaN");
  await refuses(() => model.schedule(-Infinity), "BadInput", "schedule: points must be a finite number, not -Infinity");
  // a non-function onStep, and a signal that is not one
  await refuses(() => model.infill(one, { onStep: "console.log" }), "BadInput", 'infill: options.onStep must be a function (or left out), not "console.log"');
  await refuses(() => model.infill(one, { onStep: {} }), "BadInput", "infill: options.onStep must be a function (or left out), not an object");
  assert.throws(() => model.steps(one, { onStep: 1 }), { code: "BadInput", message: "steps: options.onStep must be a function (or left out), not 1" });
  await refuses(() => model.infill(one, { signal: true }), "BadInput", "infill: options.signal must be an AbortSignal (or left out), not true");
  await refuses(() => Unmask.load(undefined, { onProgress: 3 }), "BadInput", "load: options.onProgress must be a function (or left out), not 3");
  // lone surrogates in the known text (and in forced text, and in corrupt's text); a whole emoji is fine
  await refuses(() => model.infill("Peter \uD83D [MASK] ran."), "BadTemplate", /^infill: template "Peter \\ud83d \[MASK\] ran\." has a lone surrogate \\uD83D at index 6: /);
  await refuses(() => model.measure("[MASK] \uDC07"), "BadTemplate", /^measure: template .* lone surrogate \\uDC07 at index 7: /);
  await refuses(() => model.layout("a\uDBFF[MASK]"), "BadTemplate", /^layout: template .* lone surrogate \\uDBFF at index 1: /);
  assert.throws(() => model.steps("[MASK]\uD800"), { code: "BadTemplate", message: /lone surrogate \\uD800 at index 6/ });
  await refuses(() => model.corrupt("rabbit \uDE07"), "BadInput", /^corrupt: text .* lone surrogate \\uDE07 at index 7: /);
  await refuses(() => model.infill(one, { force: [{ hole: 0, text: "\uD83D" }] }), "BadInput", /^infill: options\.force\[0\]\.text .* lone surrogate \\uD83D at index 0/);
  const emoji = await model.measure("Peter 🐇 [MASK] ran.");
  assert.equal(emoji.holes, 1);
  // a getter that throws, a Proxy whose traps throw, an unknown field
  await refuses(() => model.infill(one, { get seed() { throw new Error("boom"); } }), "BadInput", "infill: options.seed could not be read (boom)");
  await refuses(() => model.infill(one, new Proxy({}, { ownKeys() { throw new Error("trap"); } })), "BadInput", "infill: options could not be read (trap)");
  await refuses(() => model.infill(one, { stratgy: "top-prob" }), "BadInput", /^infill: options\.stratgy is not an option \(unknown field\); expected one of strategy, steps, /);
  await refuses(() => Unmask.load(undefined, { devcie: "wasm" }), "BadInput", /^load: options\.devcie is not an option \(unknown field\)/);
  await refuses(() => Unmask.load(undefined, { device: "gpu0" }), "BadInput", `load: options.device must be 'auto', 'webgpu', 'wasm', 'gpu' or 'cpu', not "gpu0"`);
  await refuses(() => Unmask.load(undefined, { threads: 0 }), "BadInput", "load: options.threads must be 'auto' or a whole number from 1 to 256, not 0");
  await refuses(() => Unmask.load(42), "BadInput", "load: source must be a bundled model's name ('default', 'uniform', 'gaussian', 'bits' or 'dreamon'), a folder URL or path, a hub id, or { config, weights, tokenizer } (or left out), not 42");
  await refuses(() => Unmask.load(""), "BadInput", 'load: source must be a URL or a non-empty string, not ""');
  await refuses(() => model.corrupt(7), "BadInput", "corrupt: text must be a string, not 7");
  // a template over the engine's 1 MiB is refused before it is copied into the module
  await refuses(() => model.measure(`${"é".repeat(600000)}[MASK]`), "BadTemplate", "measure: template is 1200006 bytes; the most unmask reads is 1048576 bytes (1 MiB)");
  // the model is fine afterwards
  const r = await model.infill(one, { seed: 7 });
  assert.ok(r.text.startsWith("Peter ") && r.text.endsWith(" ran."), r.text);
  model.dispose();
});

test("load({ config, weights }) without a tokenizer says which argument is missing", async () => {
  const { dir, config, weights, tokenizer } = await packageFiles();
  const message = "load: source.tokenizer is missing: give tokenizer.json's bytes, or options.tokenizer (a folder or hub id to read it from)";
  await refuses(() => Unmask.load({ config: config.toString(), weights }, { device: "wasm" }), "BadInput", message);
  await refuses(() => Unmask.load({ config: config.toString(), weights, tokenizer: undefined }), "BadInput", message);
  await refuses(() => Unmask.load({ config: config.toString(), weights, tokenizer: null }), "BadInput", "load: source.tokenizer must be a string or a Uint8Array (the file's bytes), not null");
  await refuses(() => Unmask.load({ config: config.toString(), tokenizer }), "BadInput", "load: source.weights is missing");
  await refuses(() => Unmask.load({ config: config.toString(), weights: new Float32Array(4), tokenizer }), "BadInput", "load: source.weights must be a Uint8Array (the file's bytes), not a Float32Array of 16 bytes");
  await refuses(() => Unmask.load({ config: config.toString(), weights, tokenizer, vocab: 1 }), "BadInput", /^load: source\.vocab is not an option \(unknown field\); expected one of config, weights, tokenizer$/);
  // with options.tokenizer the bytes may be left out: tokenizer.json is read from there
  const model = await Unmask.load({ config: config.toString(), weights }, { device: "wasm", tokenizer: dir.pathname });
  const r = await model.infill("The [MASK*2] sat.", { seed: 3 });
  assert.ok(r.text.startsWith("The ") && r.text.endsWith(" sat."), r.text);
  model.dispose();
});

test("measure after dispose says Disposed, as every other method does", async () => {
  const model = await Unmask.load(undefined, { device: "wasm" });
  const before = await model.measure(template);
  assert.equal(before.holes, 3);
  model.dispose();
  await refuses(() => model.measure(template), "Disposed", "this model was disposed");
  await refuses(() => model.layout(template), "Disposed", "this model was disposed");
  await refuses(() => model.infill(template), "Disposed", "this model was disposed");
  await refuses(() => model.corrupt("x"), "Disposed", "this model was disposed");
  await refuses(() => model.schedule(11), "Disposed", "this model was disposed");
  await refuses(async () => {
    for await (const _ of model.steps(template)) assert.fail("a disposed model yielded a step");
  }, "Disposed", "this model was disposed");
  // disposed while a fill runs: the fill finishes, a measure meanwhile is Disposed, not Busy
  const other = await Unmask.load(undefined, { device: "wasm" });
  let during = null;
  const r = await other.infill("Peter [MASK*4] ran.", {
    onStep: () => {
      if (during === null) {
        other.dispose();
        during = other.measure(template).then(
          () => "resolved",
          (e) => e.code,
        );
      }
    },
  });
  assert.ok(r.text.startsWith("Peter "), r.text);
  assert.equal(await during, "Disposed");
  await refuses(() => other.measure(template), "Disposed", "this model was disposed");
});

/** A port nothing listens on (just closed). */
async function closedPort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

test("network failures are a NetworkError naming the URL", async () => {
  const { config, weights, tokenizer } = await packageFiles();
  // nothing listening
  const port = await closedPort();
  await refuses(() => Unmask.load(`http://127.0.0.1:${port}/models/m/`, { device: "wasm" }), "NetworkError", new RegExp(`^http://127\\.0\\.0\\.1:${port}/models/m/(config|tokenizer)\\.json: could not be fetched \\(fetch failed: ECONNREFUSED\\)$|^http://127\\.0\\.0\\.1:${port}/models/m/model\\.safetensors: could not be fetched`));
  // a server that fails (503), that has no such model (404), and one that hangs up halfway
  const server = createServer((req, res) => {
    const [, kind, file] = req.url.split("/");
    if (kind === "down") return res.writeHead(503, "Service Unavailable").end();
    if (kind === "missing") return res.writeHead(404, "Not Found").end();
    const body = { "config.json": config, "tokenizer.json": tokenizer, "model.safetensors": weights }[file];
    if (!body) return res.writeHead(404).end();
    res.writeHead(200, { "content-length": body.length });
    if (req.method === "HEAD") return res.end();
    if (kind === "cut" && file === "model.safetensors") {
      // half the weights, then the connection drops
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
      return;
    }
    res.end(body);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    await refuses(() => Unmask.load(`${base}/down/`, { device: "wasm" }), "NetworkError", `${base}/down/config.json: HTTP 503 Service Unavailable`);
    await refuses(() => Unmask.load(`${base}/missing/`, { device: "wasm" }), "BadModel", `${base}/missing/config.json: HTTP 404 Not Found`);
    await refuses(() => Unmask.load(`${base}/cut/`, { device: "wasm" }), "NetworkError", new RegExp(`^${base}/cut/model\\.safetensors: the download broke off after \\d+ bytes \\(`));
    // the same server, whole: the model loads over HTTP
    const model = await Unmask.load(`${base}/ok/`, { device: "wasm" });
    assert.ok((await model.infill("The [MASK] sat.", { seed: 1 })).text.startsWith("The "));
    model.dispose();
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

// --- a seeded random-argument test: hostile values thrown at every public function and option

/** mulberry32: a small seeded generator, so every run throws the same values. */
function generator(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  const pick = (xs) => xs[int(xs.length)];
  return { next, int, pick, chance: (p) => next() < p };
}

/** The codes index.d.ts documents (ErrorCode); the fuzz accepts no other. */
const CODES = new Set(["BadModel", "BadInput", "BadTemplate", "ModelTooLarge", "WebGPUUnavailable", "DeviceLost", "OutOfMemory", "GpuError", "NetworkError", "Aborted", "Busy", "Disposed", "InternalError", "WorkerError"]);

/** What a callback the fuzz passes throws: the fill must reject with exactly it. */
class FromCallback extends Error {
  code = "FromCallback";
}

test("fuzz-js-args: 3000 seeded hostile calls to every public function and option never reach the module's traps", { timeout: 15 * 60 * 1000 }, async () => {
  const CASES = 3000;
  const g = generator(20261204);
  const { config, weights, tokenizer } = await packageFiles();
  const port = await closedPort();
  const big = "x".repeat((1 << 20) + 1);
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const throwing = () => {
    throw new FromCallback("thrown by a callback the fuzz passed");
  };
  const trap = () => {
    throw new Error("a Proxy trap threw");
  };
  // hostile values: wrong types, NaN, ±Infinity, -0, huge numbers, null, undefined, getters that
  // throw, Symbols, BigInt, lone surrogates, very long strings, Proxies, …
  const hostile = () =>
    g.pick([
      () => undefined,
      () => null,
      () => true,
      () => false,
      () => 0,
      () => -0,
      () => 1,
      () => -1,
      () => 0.5,
      () => 1.5,
      () => 3,
      () => NaN,
      () => Infinity,
      () => -Infinity,
      () => 2 ** 53,
      () => 2 ** 64,
      () => 1e308,
      () => -1e308,
      () => Number.MIN_VALUE,
      () => 0n,
      () => 7n,
      () => 2n ** 64n,
      () => Symbol("hostile"),
      () => Symbol.iterator,
      () => "",
      () => "a",
      () => "auto",
      () => "wasm",
      () => "f16",
      () => "top-prob",
      () => "gaussian",
      () => "loglinear",
      () => "threshold:NaN",
      () => "\uD800",
      () => "a\uDC00b",
      () => "🐇",
      () => "[MASK]",
      () => "__proto__",
      () => big,
      () => "\u0000",
      () => ({}),
      () => [],
      () => [1, 2, 3],
      () => [{ hole: 0, text: "the" }],
      () => [{ hole: NaN, text: "the" }],
      () => [{ hole: 0, text: "\uD83D" }],
      () => [null],
      () => new Uint8Array(4),
      () => new Float64Array(2),
      () => new ArrayBuffer(8),
      () => new URL("file:///no-such-unmask-model/"),
      () => new Date(0),
      () => /re/,
      () => new Map([[1, 2]]),
      () => Object.create(null),
      () => new String("a [MASK]"),
      () => new Number(5),
      () => () => {},
      () => throwing,
      () => async () => {},
      () => class {},
      () => ({ get x() { return trap(); } }),
      () => ({ toJSON: trap, valueOf: trap, toString: trap }),
      () => new Proxy({}, { get: trap, ownKeys: trap, getPrototypeOf: trap, has: trap, getOwnPropertyDescriptor: trap }),
      () => new Proxy([], { get: trap }),
      () => new Proxy(() => {}, { apply: trap }),
      () => revoked.proxy,
      () => AbortSignal.abort(),
      () => new AbortController().signal,
      () => ({ aborted: false, addEventListener() {}, removeEventListener() {} }),
    ])();
  const infillValid = {
    strategy: () => g.pick(["top-prob", "ancestral", "first-hitting", "margin", "entropy", "threshold", "threshold:0.9", "mask-predict", "fast"]),
    steps: () => g.pick([1, 2, 3, 8, 0, 300, 1e6 + 1]),
    temperature: () => g.pick([0, 0.5, 1, 1e-310, 101]),
    topK: () => g.pick([0, 5, 5000]),
    topP: () => g.pick([0.9, 1, 0, 1.5]),
    schedule: () => g.pick(["loglinear", "cosine", "linear", "square"]),
    blockLength: () => g.pick([1, 2, 0]),
    cfg: () => g.pick([0, 1.5, 101]),
    force: () => g.pick([[], [{ hole: 0, text: " the" }], [{ hole: 9, text: "the" }], [{ hole: 0, text: "two words" }]]),
    cache: () => g.pick([true, false]),
    seed: () => g.pick([0, 7, 123, 2 ** 53 - 1]),
    candidates: () => g.pick([0, 5, 16, 17]),
    pending: () => g.pick([true, false]),
    holeStart: () => g.pick([1, 4, 0, 70]),
    onStep: () => g.pick([() => {}, throwing]),
    signal: () => g.pick([new AbortController().signal, AbortSignal.abort()]),
  };
  const layoutValid = {
    holeStart: () => g.pick([1, 4, 0, 70]),
    lengths: () => g.pick([[1], [2], [1, 2], [0], [99], []]),
  };
  const corruptValid = {
    family: () => g.pick(["absorbing", "uniform", "gaussian", "bits", "nope"]),
    t: () => g.pick([0, 0.3, 1, -0]),
    seed: () => g.pick([0, 1, 2 ** 53 - 1]),
  };
  const loadValid = {
    device: () => g.pick(["wasm", "auto", "webgpu"]),
    weights: () => g.pick(["f16", "f32", "q8", "q4"]),
    onProgress: () => g.pick([() => {}, throwing]),
    signal: () => g.pick([new AbortController().signal, AbortSignal.abort()]),
    wasmUrl: () => "file:///no-such.wasm",
    cache: () => g.pick([true, false]),
    worker: () => g.pick([false, true]),
    workerUrl: () => "file:///no-such-worker.js",
    wasmThreadsUrl: () => "file:///no-such-threads.wasm",
    threads: () => g.pick(["auto", 1, 2]),
    tokenizer: () => g.pick(["./no-such-tokenizer/", `http://127.0.0.1:${port}/t/`]),
  };
  /** An options argument: a hostile value, or an object of known (sometimes unknown) keys with valid or hostile values. */
  const options = (valid) => {
    if (g.chance(0.15)) return hostile();
    const o = {};
    const n = g.int(4);
    for (let i = 0; i < n; i++) {
      const key = g.chance(0.9) ? g.pick(Object.keys(valid)) : g.pick(["stratgy", "__proto__", "", "\uD800", "constructor", "x".repeat(200)]);
      const value = Object.hasOwn(valid, key) && g.chance(0.6) ? valid[key]() : hostile();
      const how = g.int(10);
      if (how === 0) Object.defineProperty(o, key, { configurable: true, enumerable: true, get: trap });
      else if (how === 1) {
        // a getter that answers differently each time it is read
        let reads = 0;
        Object.defineProperty(o, key, { configurable: true, enumerable: true, get: () => (reads++ === 0 ? value : NaN) });
      } else Object.defineProperty(o, key, { configurable: true, enumerable: true, writable: true, value });
    }
    return g.chance(0.05) ? new Proxy(o, {}) : o;
  };
  const templates = [
    "The [MASK] sat.",
    template,
    "[[Peter]] ran [MASK*2].",
    "a [MASK*1-2] b",
    "Peter 🐇 [MASK] ran.",
    "no holes here",
    "a [[b",
    "[MASK*99999]",
    `${"word ".repeat(300)}[MASK]`,
    "",
    "\uD83D [MASK]",
    "[MASK]\uDFFF",
  ];
  const template_ = () => (g.chance(0.7) ? g.pick(templates) : hostile());
  const loadSource = () =>
    g.pick([
      () => (g.chance(0.1) ? undefined : hostile()),
      () => "./no-such-unmask-model/",
      () => `http://127.0.0.1:${port}/m/`,
      () => new URL(`http://127.0.0.1:${port}/u/`),
      () => ({ config: config.toString(), weights: g.chance(0.5) ? weights.subarray(0, g.int(2000)) : hostile(), tokenizer: g.chance(0.5) ? tokenizer : hostile() }),
      () => ({ config: hostile(), weights: new Uint8Array(16), tokenizer }),
      () => ({ weights: hostile() }),
    ])();

  const model = await Unmask.load(undefined, { device: "wasm" });
  const disposed = await Unmask.load(undefined, { device: "wasm" });
  disposed.dispose();
  const reference = await model.infill(template, { seed: 7 });
  const { isCached, clearCache } = await import("unmask");
  // each target draws its arguments, then returns the call to make with them
  const targets = [
    ["infill", (m, t = template_(), o = options(infillValid)) => () => m.infill(t, o)],
    [
      "steps",
      (m, t = template_(), o = options(infillValid)) =>
        async () => {
          let n = 0;
          for await (const _ of m.steps(t, o)) if (++n === 3) break;
        },
    ],
    ["measure", (m, t = template_(), o = g.chance(0.5) ? undefined : options(layoutValid)) => () => m.measure(t, o)],
    ["layout", (m, t = template_(), o = g.chance(0.5) ? undefined : options(layoutValid)) => () => m.layout(t, o)],
    ["corrupt", (m, t = g.chance(0.6) ? g.pick(["Peter ran.", "", "🐇 ran"]) : hostile(), o = options(corruptValid)) => () => m.corrupt(t, o)],
    ["schedule", (m, p = g.chance(0.3) ? g.pick([2, 11, 1e9, -5]) : hostile()) => () => m.schedule(p)],
    ["load", (_, s = loadSource(), o = options(loadValid)) => () => Unmask.load(s, o)],
    ["isCached", (_, s = g.chance(0.5) ? "./m/" : hostile(), o = options({ tokenizer: () => "./t/" })) => () => isCached(s, o)],
    ["clearCache", () => () => clearCache()],
  ];
  const tally = {};
  let loads = 0;
  for (let i = 0; i < CASES; i++) {
    const [name, draw] = g.pick(targets);
    const call = draw(g.chance(0.05) ? disposed : model);
    let outcome;
    try {
      const value = await Promise.race([
        (async () => call())(),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`case ${i} (${name}) hung for 60 s`)), 60000).unref()),
      ]);
      outcome = "resolved";
      if (name === "load") {
        loads += 1;
        assert.equal(value.backend, "wasm", `case ${i}`);
        value.dispose();
      }
    } catch (e) {
      const ok = e instanceof FromCallback || (e instanceof Error && CODES.has(e.code) && e.name === e.code && typeof e.message === "string" && e.message !== "");
      assert.ok(ok, `case ${i} (${name}): ${e?.constructor?.name} ${e?.name} code=${String(e?.code)}: ${e?.message}`);
      assert.doesNotMatch(e.message, /unreachable|memory access out of bounds|RuntimeError/, `case ${i} (${name})`);
      assert.notEqual(e.code, "InternalError", `case ${i} (${name}): ${e.message}`);
      outcome = e instanceof FromCallback ? "FromCallback" : e.code;
    }
    tally[`${name} ${outcome}`] = (tally[`${name} ${outcome}`] ?? 0) + 1;
  }
  console.log(`fuzz-js-args: ${CASES} cases (${loads} successful loads): ${JSON.stringify(tally)}`);
  // every function was reached, both ways where it can be
  for (const name of ["infill", "steps", "measure", "layout", "corrupt", "schedule", "load"]) {
    assert.ok(tally[`${name} resolved`] > 0, `${name} never resolved`);
    assert.ok(tally[`${name} BadInput`] > 0 || tally[`${name} BadTemplate`] > 0, `${name} never refused an argument`);
  }
  // and the model still works: the same fill as before
  assert.equal((await model.infill(template, { seed: 7 })).text, reference.text);
  model.dispose();
});

test("dualCache and entropy-bound on the default model; attention is Qwen3 A2D's and is checked", async () => {
  const model = await Unmask.load("default", { device: "wasm" });
  const t = "The cat [MASK*8] on the mat and then the dog came home to the [MASK*4].";
  for (const options of [{ dualCache: true, blockLength: 4 }, { strategy: "entropy-bound:4" }]) {
    const r = await model.infill(t, options);
    assert.ok(r.text.startsWith("The cat ") && r.text.includes(" on the mat and then the dog came home to the "), r.text);
    assert.equal(r.holes, 12);
  }
  await assert.rejects(model.infill(t, { dualCache: "yes" }), (e) => e.name === "BadInput" && /dualCache/.test(e.message));
  await assert.rejects(Unmask.load("default", { device: "wasm", attention: "block:0" }), (e) => e.name === "BadInput" && /attention/.test(e.message));
  await assert.rejects(Unmask.load("default", { device: "wasm", attention: "block:4" }), (e) => e.code === "BadInput" && /a2d-qwen3/.test(e.message));
});

test("weights q8 and q4: the default model quantised at load fills a template; other values are refused naming the option", async () => {
  const t = "The cat [MASK*3] on the mat and the dog came [MASK*2].";
  for (const weights of ["q8", "q4"]) {
    const model = await Unmask.load("default", { device: "wasm", weights });
    const r = await model.infill(t, { seed: 1 });
    assert.equal(typeof r.text, "string");
    assert.ok(r.text.startsWith("The cat ") && r.text.includes(" on the mat and the dog came "), `${weights}: ${r.text}`);
    assert.ok(!r.text.includes("[MASK]"), `${weights}: ${r.text}`);
    assert.equal(r.holes, 5);
    model.dispose();
  }
  await refuses(() => Unmask.load("default", { device: "wasm", weights: "q5" }), "BadInput", `load: options.weights must be 'f16', 'f32', 'q8' or 'q4', not "q5"`);
  await refuses(() => Unmask.load("default", { device: "wasm", weights: "Q8" }), "BadInput", `load: options.weights must be 'f16', 'f32', 'q8' or 'q4', not "Q8"`);
  await refuses(() => Unmask.load("default", { device: "wasm", weights: 8 }), "BadInput", `load: options.weights must be 'f16', 'f32', 'q8' or 'q4', not 8`);
});
