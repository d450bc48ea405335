// The web demo as built by Trunk (dist/), served from 127.0.0.1 and driven in headless Debian
// Chromium through playwright-core: a fill with its intermediate frames, the scrubber, the
// candidates popover, the forward-process slider, the strategy race, the uniform-state model
// and the family race, the continuous families (their rows' samplers, a race of two of them),
// a model loaded from a folder URL with progress and cache, and the page at desktop and phone
// sizes. Screenshots go to $SHOTS (default target/www-shots). Run by
// scripts/test-www.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdir, readFile } from "node:fs/promises";
import { extname, join, normalize, resolve } from "node:path";

const ROOT = resolve(process.env.DIST ?? "dist");
const FIXTURES = resolve(process.env.FIXTURES ?? "tests/fixtures");
const SHOTS = resolve(process.env.SHOTS ?? "target/www-shots");
import { launchChromium } from "../../scripts/chromium.mjs";
const TYPES = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".css": "text/css",
  ".svg": "image/svg+xml",
  ".wasm": "application/wasm",
  ".json": "application/json",
};
const TEMPLATE = "Peter [MASK*3] into the garden, and [MASK*4] under the gate.";

/** The first bytes of a safetensors file whose one F32 tensor has `shape` (no data follows). */
function headerOnly(shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const json = Buffer.from(JSON.stringify({ x: { dtype: "F32", shape, data_offsets: [0, n * 4] } }));
  const out = Buffer.alloc(8 + json.length);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  return out;
}

let server, browser, base;
const served = []; // every request the server saw
const outside = []; // requests the browser made anywhere but this server
const problems = []; // console errors and page errors

before(async () => {
  server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    served.push(`${req.method} ${path}`);
    // a checkpoint too large for any device: its header claims 1.5 G f32 parameters (6 GiB), and
    // nothing follows it (config and tokenizer are the Qwen3 A2D fixture's)
    if (path === "/huge/model.safetensors") {
      const body = headerOnly([50000, 30000]);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
    // a model folder in Hugging Face layout, as a user's "any folder URL"
    const file = path.startsWith("/huge/")
      ? join(FIXTURES, "a2d_qwen3", normalize(path.slice("/huge/".length)))
      : path.startsWith("/models/")
      ? join(FIXTURES, normalize(path.slice("/models/".length)))
      : join(ROOT, normalize(path === "/" ? "/index.html" : path));
    try {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "content-length": body.length });
      res.end(req.method === "HEAD" ? undefined : body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${server.address().port}`;
  // no WebGPU: navigator.gpu finds no adapter, so the page must run on the CPU path and say so
  browser = await launchChromium();
  await mkdir(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.close();
});

async function open(viewport) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  context.on("request", (r) => {
    // (blob: URLs of the page's own origin are the thread pool's workers, not a download)
    if (!r.url().startsWith(base) && !r.url().startsWith("data:") && !r.url().startsWith(`blob:${base}`)) outside.push(r.url());
  });
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(`${base}/`);
  // the default model loads at once
  await page.waitForSelector('[data-testid="fill"]:not([disabled])', { timeout: 120_000 });
  return { context, page };
}

/**
 * Records every distinct frame the canvas shows: its step, how many cells are masked, hold their
 * starting token (a uniform-state model's noise) or flash a change, and the cells' text.
 */
async function watchFrames(page) {
  await page.evaluate(() => {
    const canvas = document.querySelector('[data-testid="canvas"]');
    window.__frames = [];
    const note = () => {
      const cells = canvas.querySelectorAll(".tok");
      const masked = canvas.querySelectorAll(".tok.masked").length;
      const start = canvas.querySelectorAll(".tok.start").length;
      const changed = canvas.querySelectorAll(".tok.changed").length;
      const text = [...cells].map((c) => c.textContent).join("|");
      const last = window.__frames.at(-1);
      const frame = { step: canvas.dataset.step, masked, start, changed, cells: cells.length, text };
      if (!last || last.step !== frame.step || last.masked !== frame.masked || last.text !== frame.text || last.start !== frame.start) window.__frames.push(frame);
    };
    new MutationObserver(note).observe(canvas, { subtree: true, childList: true, attributes: true });
  });
}

test("desktop: fill, watch, scrub, inspect, corrupt, race", { timeout: 600_000 }, async () => {
  const { context, page } = await open({ width: 1280, height: 900 });
  const paint = await page.evaluate(() => performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null);
  const nav = await page.evaluate(() => {
    const n = performance.getEntriesByType("navigation")[0];
    return { domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd };
  });
  console.log(`# first contentful paint ${paint?.toFixed(0)} ms; DOMContentLoaded ${nav.domContentLoaded.toFixed(0)} ms (from dist/, 127.0.0.1)`);

  // the strategy lists come from the engine (the package's strategies(), Strategy::ALL), only
  // those that sample the loaded (masked) model; the page's notes name no strategy the engine lacks
  const strategies = await menus(page, "absorbing");
  assert.deepEqual(strategies.sampler, ["", ...strategies.fits], "the sampler offers the model default, then the engine's strategies that fit, in its order");
  assert.deepEqual(strategies.fits, ["ancestral", "first-hitting", "top-prob", "margin", "entropy", "threshold", "entropy-bound", "mask-predict", "remdm"]);
  assert.match(strategies.first, /model default: confidence/, "the default named first");
  assert.deepEqual(strategies.race, [strategies.byDefault, ...strategies.fits.filter((s) => s !== strategies.byDefault)], "the race: the default first, then the rest");
  assert.deepEqual(strategies.notes.filter((n) => n !== "default" && !strategies.engine.includes(n)), [], "every strategy the page describes is the engine's");

  // no WebGPU adapter: the CPU path, with a visible notice saying so
  assert.match(await page.textContent("#backend"), /CPU/);
  assert.equal(await page.isVisible("#notice"), true, "the no-WebGPU notice is shown");
  assert.match(await page.textContent("#notice"), /WebGPU/);

  // the toolbar: [MASK*N] at the cursor, and the selected words turned into a rewrite span
  await page.fill('[data-testid="template"]', "The cat sat on the mat.");
  await page.evaluate(() => {
    const t = document.querySelector('[data-testid="template"]');
    t.setSelectionRange(4, 7); // "cat"
  });
  await page.click("#rewrite");
  assert.equal(await page.inputValue('[data-testid="template"]'), "The [[cat]] sat on the mat.");
  await page.evaluate(() => document.querySelector('[data-testid="template"]').setSelectionRange(0, 0));
  await page.fill("#mask-n", "2");
  await page.click("#insert-mask");
  assert.equal(await page.inputValue('[data-testid="template"]'), "[MASK*2]The [[cat]] sat on the mat.");

  // type a template, fill, and wait for the end
  await page.fill('[data-testid="template"]', TEMPLATE);
  await watchFrames(page);
  await page.click('[data-testid="fill"]');
  await page.waitForSelector('[data-testid="canvas"][data-state="done"]', { timeout: 300_000 });
  const frames = await page.evaluate(() => window.__frames);
  const cells = await page.$$eval('[data-testid="canvas"] .tok', (els) => els.map((e) => ({ state: e.dataset.state, text: e.textContent })));
  const known = await page.$$eval('[data-testid="canvas"] .known', (els) => els.map((e) => e.textContent));
  assert.deepEqual(known, ["Peter ", " into the garden, and ", " under the gate."], "the known text is intact");
  assert.equal(cells.length, 7, "one cell per hole");
  assert.ok(cells.every((c) => c.state === "filled" && c.text.length > 0), `every hole is filled: ${JSON.stringify(cells)}`);
  const between = frames.filter((f) => f.masked > 0 && f.masked < 7);
  assert.ok(between.length >= 3, `at least three intermediate frames: ${JSON.stringify(frames)}`);
  const figures = {
    step: await page.textContent("#f-step"),
    nfe: await page.textContent("#f-nfe"),
    ms: await page.textContent("#f-ms"),
    tps: await page.textContent("#f-tps"),
  };
  assert.match(figures.nfe, /^\d+$/);
  console.log(`# default model, CPU path in Chromium: ${figures.ms} ms per step (NFE ${figures.nfe}), ${figures.tps} tokens/s; frames seen ${frames.length}`);

  // ms per step on a longer fill: 48 holes, one committed per step (one forward pass each)
  await page.selectOption("#strategy", "top-prob");
  await page.fill('[data-testid="template"]', "[MASK*16] in the morning, [MASK*16] by the river, [MASK*16].");
  await page.click('[data-testid="fill"]');
  await page.waitForSelector('[data-testid="canvas"][data-state="done"]', { timeout: 300_000 });
  const long = { ms: await page.textContent("#f-ms"), nfe: await page.textContent("#f-nfe"), tps: await page.textContent("#f-tps") };
  assert.equal(long.nfe, "48");
  console.log(`# default model, CPU path in Chromium, 48 holes one per step: ${long.ms} ms per step (NFE ${long.nfe}), ${long.tps} tokens/s`);
  // Stop: a long fill (100 holes, seconds of work) stopped part way keeps what it committed
  await page.fill('[data-testid="template"]', "[MASK*100].");
  await page.click('[data-testid="fill"]');
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="canvas"]').dataset.step) >= 2);
  await page.click("#stop");
  await page.waitForSelector('[data-testid="canvas"][data-state="stopped"]', { timeout: 60_000 });
  const left = await page.$$eval('[data-testid="canvas"] .tok.masked', (els) => els.length);
  assert.ok(left > 0, "stopped before the end");
  // and the first fill again, for the views below
  await page.selectOption("#strategy", "");
  await page.fill('[data-testid="template"]', TEMPLATE);
  await page.click('[data-testid="fill"]');
  await page.waitForSelector('[data-testid="canvas"][data-state="done"]', { timeout: 300_000 });

  // the scrubber: back to step 1, where some holes are still masked; the forward view follows
  const steps = Number(await page.getAttribute('[data-testid="scrubber"]', "max"));
  assert.ok(steps >= 3, `steps ${steps}`);
  // replay, in slow motion: it plays every frame again and ends done
  await page.selectOption("#speed", "600");
  await page.selectOption("#speed", "150");
  await watchFrames(page);
  await page.click("#replay");
  await page.waitForSelector('[data-testid="canvas"][data-state="replaying"]');
  await page.waitForSelector('[data-testid="canvas"][data-state="done"]', { timeout: 60_000 });
  const replayed = await page.evaluate(() => window.__frames.map((f) => f.step));
  assert.ok(replayed.includes("1") && replayed.at(-1) === String(steps), `replayed frames ${replayed}`);
  // (ancestral steps may commit nothing: scrub to the first step with some holes filled)
  let partial = 0;
  for (let k = 1; k < steps && !partial; k++) {
    await page.fill('[data-testid="scrubber"]', String(k));
    assert.equal(await page.getAttribute('[data-testid="canvas"]', "data-step"), String(k));
    const masked = await page.$$eval('[data-testid="canvas"] .tok.masked', (els) => els.length);
    if (masked > 0 && masked < 7) partial = k;
  }
  assert.ok(partial > 0, "a scrubbed step shows a half-filled canvas");
  const t1 = await page.inputValue('[data-testid="forward-t"]');
  assert.ok(Number(t1) > 0 && Number(t1) <= 1, `forward t follows the scrubber: ${t1}`);

  // click a still-masked position: its candidates at this step
  await page.click('[data-testid="canvas"] .tok.masked');
  await page.waitForSelector('[data-testid="candidates"]:not([hidden])');
  const what = await page.textContent("#cand-what");
  const bars = await page.$$eval("#cand-bars li", (els) => els.map((e) => e.getAttribute("aria-label")));
  assert.ok(bars.length >= 1 || /did not predict/.test(what), `candidates listed: ${what}`);
  // then a committed one at the last step: the bars, and temperature re-applied at once
  await page.fill('[data-testid="scrubber"]', String(steps));
  await page.click('[data-testid="canvas"] .tok.filled');
  const before = await page.$$eval("#cand-bars .num", (els) => els.map((e) => e.textContent));
  assert.ok(before.length >= 2, `bars: ${before}`);
  // re-applied by the library's sampler (the package's reapply, in the module)
  await page.fill("#cand-t", "0.25");
  await page
    .waitForFunction((b) => JSON.stringify([...document.querySelectorAll("#cand-bars .num")].map((e) => e.textContent)) !== b, JSON.stringify(before), { timeout: 5_000 })
    .catch(() => {}); // (the assertion below says what was seen)
  const sharper = await page.$$eval("#cand-bars .num", (els) => els.map((e) => e.textContent));
  assert.notDeepEqual(sharper, before, "a lower temperature changes the bars");
  assert.ok(sharper.length === before.length && Number.parseFloat(sharper[0]) >= Number.parseFloat(before[0]), `sharper: ${sharper} vs ${before}`);
  await page.locator(".stage").screenshot({ path: join(SHOTS, "demo-candidates.png") });
  await page.keyboard.press("Escape");
  assert.equal(await page.isHidden('[data-testid="candidates"]'), true, "Escape closes the popover");

  // the forward process: t = 0 changes nothing, t = 1 masks every token of the absorbing row
  await page.fill("#fwd-text", "Peter ran into the garden to look for his mother.");
  await page.fill('[data-testid="forward-t"]', "0");
  await page.waitForSelector('#families[data-t="0.00"]');
  const changedAt0 = await page.$$eval("#families .chip.changed, #families .chip.masked, #families .chip.invalid", (els) => els.length);
  assert.equal(changedAt0, 0, "t = 0 corrupts nothing");
  await page.fill('[data-testid="forward-t"]', "1");
  await page.waitForSelector('#families[data-t="1.00"]');
  const absorbing = await page.$$eval('[data-family="absorbing"] .chip', (els) => els.map((e) => e.className));
  assert.ok(absorbing.length > 5 && absorbing.every((c) => c.includes("masked")), "t = 1 masks everything");
  await page.fill('[data-testid="forward-t"]', "0.5");
  await page.waitForSelector('#families[data-t="0.50"]');
  const families = await page.$$eval("#families .family", (els) => els.map((e) => e.dataset.family));
  assert.deepEqual(families, ["absorbing", "uniform", "gaussian", "bits"]);
  await page.locator(".forward").screenshot({ path: join(SHOTS, "demo-forward.png") });

  // the strategy race
  await page.selectOption("#race-a", "ancestral");
  await page.selectOption("#race-b", "threshold:0.9");
  await page.click('[data-testid="race"]');
  await page.waitForSelector('[data-testid="lane-b"][data-state="done"]', { timeout: 300_000 });
  const stats = [await page.textContent("#lane-a-stats"), await page.textContent("#lane-b-stats")];
  for (const s of stats) assert.match(s, /\d+ steps · NFE \d+/);
  const laneCells = await page.$$eval('[data-testid="lane-a"] .tok.filled, [data-testid="lane-b"] .tok.filled', (els) => els.length);
  assert.equal(laneCells, 14, "both lanes filled every hole");
  console.log(`# race: A ${stats[0]} | B ${stats[1]}`);
  await page.locator(".race").screenshot({ path: join(SHOTS, "demo-race.png") });

  // keyboard: the Fill button is reachable and shows a focus ring
  await page.focus('[data-testid="template"]');
  let reached = false;
  for (let i = 0; i < 25 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement?.dataset?.testid === "fill");
  }
  assert.ok(reached, "Tab reaches Fill");
  const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(ring, "none", "visible focus");

  // the README's picture: a fill half way, holes still masked beside committed tokens
  await page.fill('[data-testid="scrubber"]', String(partial));
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForTimeout(600); // the cells' colour transition
  await page.screenshot({ path: join(SHOTS, "demo-desktop.png") });
  await context.close();
});

/** The strategy menus as the page shows them, and what the engine says fits `family`. */
async function menus(page, family) {
  return page.evaluate(async (family) => {
    const { strategies } = await import("/unmask/index.web.js");
    const { STRATEGY_NOTES } = await import("/app/presets.js");
    const listed = await strategies();
    const options = (id) => [...document.querySelectorAll(`#${id} option`)].map((o) => o.value.split(":")[0]);
    return {
      engine: listed.map((s) => s.name),
      fits: listed.filter((s) => s.families.includes(family)).map((s) => s.name),
      byDefault: listed.find((s) => s.defaultFor.includes(family))?.name,
      notes: Object.keys(STRATEGY_NOTES),
      sampler: options("strategy"),
      first: document.querySelector("#strategy option")?.textContent,
      race: options("race-a"),
      raceB: options("race-b"),
    };
  }, family);
}

test("the uniform-state model: noise that condenses into text; the family race", { timeout: 600_000 }, async () => {
  const { context, page } = await open({ width: 1280, height: 900 });
  // the second bundled model, served with the page like the default
  const names = await page.$$eval("#preset option", (els) => els.map((e) => e.textContent));
  assert.ok(names.includes("uniform — 8 M UDLM (uniform-state), children's books (16 MB, offline)"), names.join(" / "));
  await page.selectOption("#preset", "uniform");
  await page.click("#load");
  await page.waitForSelector('#progress[data-state="ready"]', { timeout: 120_000 });
  await page.waitForSelector('[data-testid="fill"]:not([disabled])');
  assert.ok(served.includes("GET /unmask/models/uniform/model.safetensors"), "served with the page");
  assert.equal(await page.getAttribute("#model-name", "data-family"), "uniform");
  await page.waitForFunction(() => /served with the page/.test(document.querySelector("#progress-text").textContent), null, { timeout: 10_000 });
  // the sampler offers only the strategies that sample a uniform-state model, its default first
  const m = await menus(page, "uniform");
  assert.deepEqual(m.sampler, ["", "uniform", "psi"]);
  assert.match(m.first, /model default: uniform posterior/);
  assert.deepEqual(m.race, ["uniform", "psi"], "the strategy race: the loaded family's two, its default first");
  assert.deepEqual(m.raceB, ["uniform", "psi"]);

  // a fill: every hole starts as noise (no placeholder), tokens change from step to step, and
  // the known text stays
  await page.fill('[data-testid="template"]', TEMPLATE);
  await watchFrames(page);
  await page.click('[data-testid="fill"]');
  await page.waitForSelector('[data-testid="canvas"][data-state="done"]', { timeout: 300_000 });
  const frames = await page.evaluate(() => window.__frames);
  const known = await page.$$eval('[data-testid="canvas"] .known', (els) => els.map((e) => e.textContent));
  assert.deepEqual(known, ["Peter ", " into the garden, and ", " under the gate."], "the known text is intact");
  const cells = await page.$$eval('[data-testid="canvas"] .tok', (els) => els.map((e) => ({ state: e.dataset.state, text: e.textContent })));
  assert.equal(cells.length, 7, "one cell per hole");
  assert.ok(cells.every((c) => c.state === "filled" && c.text.length > 0), `every hole is the model's at the end: ${JSON.stringify(cells)}`);
  const noise = frames.find((f) => f.start === 7);
  assert.ok(noise && noise.masked === 0, `a frame of pure noise, no placeholder: ${JSON.stringify(frames)}`);
  assert.ok(frames.filter((f) => f.cells === 7 && f.masked === 0).every((f) => f.masked === 0));
  const texts = new Set(frames.filter((f) => f.masked === 0).map((f) => f.text));
  assert.ok(texts.size >= 3, `the tokens change from step to step: ${[...texts].join(" / ")}`);
  assert.ok(frames.some((f) => f.changed > 0), "a changed token is marked");
  console.log(`# uniform model: ${texts.size} distinct canvases, "${await page.getAttribute('[data-testid="canvas"]', "aria-label")}"`);
  // a starting token's candidates say what it is
  await page.fill('[data-testid="scrubber"]', "1");
  await page.click('[data-testid="canvas"] .tok.start');
  await page.waitForSelector('[data-testid="candidates"]:not([hidden])');
  assert.match(await page.textContent("#cand-what"), /starting token/);
  await page.keyboard.press("Escape");
  // the forward view says which family each model samples
  const ours = await page.$$eval("#families .tag.ours", (els) => els.map((e) => e.closest(".family").dataset.family));
  assert.deepEqual(ours, ["absorbing", "uniform", "gaussian", "bits"], "each family has our model");
  // on a model without a mask token the absorbing row says why it is empty; the others show
  await page.fill('[data-testid="forward-t"]', "0.6");
  await page.waitForSelector('#families[data-t="0.60"]');
  assert.equal(await page.getAttribute('#families [data-family="absorbing"]', "data-error"), "true");
  assert.match(await page.textContent('#families [data-family="absorbing"]'), /no \[MASK\] token/);
  for (const f of ["uniform", "gaussian", "bits"]) assert.ok((await page.$$(`#families [data-family="${f}"] .chip`)).length > 5, f);

  // the family race: the default model against the uniform one, one template and seed
  await page.selectOption("#race-mode", "families");
  assert.deepEqual([await page.inputValue("#race-fam-a"), await page.inputValue("#race-fam-b")], ["absorbing", "gaussian"], "the family race opens as absorbing against gaussian");
  await page.selectOption("#race-fam-b", "uniform");
  const f = await menus(page, "absorbing");
  assert.deepEqual(f.race, ["top-prob", ...f.fits.filter((s) => s !== "top-prob")], "lane A: the masked model's strategies");
  assert.deepEqual(f.raceB, ["uniform", "psi"], "lane B: the uniform model's");
  await page.click('[data-testid="race"]');
  await page.waitForSelector('[data-testid="lane-b"][data-state="done"]', { timeout: 300_000 });
  const names2 = [await page.textContent("#lane-a-name"), await page.textContent("#lane-b-name")];
  assert.match(names2[0], /default · masked/);
  assert.match(names2[1], /uniform · uniform-state/);
  assert.deepEqual([await page.getAttribute('[data-testid="lane-a"]', "data-family"), await page.getAttribute('[data-testid="lane-b"]', "data-family")], ["absorbing", "uniform"]);
  const stats = [await page.textContent("#lane-a-stats"), await page.textContent("#lane-b-stats")];
  for (const s of stats) assert.match(s, /\d+ steps · NFE \d+/);
  const laneCells = await page.$$eval('[data-testid="lane-a"] .tok.filled, [data-testid="lane-b"] .tok.filled', (els) => els.length);
  assert.equal(laneCells, 14, "both lanes filled every hole");
  for (const lane of ["lane-a", "lane-b"]) {
    const known2 = await page.$$eval(`[data-testid="${lane}"] .known`, (els) => els.map((e) => e.textContent));
    assert.deepEqual(known2, ["Peter ", " into the garden, and ", " under the gate."], lane);
  }
  console.log(`# family race: A ${stats[0]} | B ${stats[1]}`);
  // the picture: a step where the uniform lane is half noise, half text, else half way
  const longest = Number(await page.getAttribute("#race-scrubber", "max"));
  let shown = Math.ceil(longest / 2);
  for (let k = 1; k < longest; k++) {
    await page.fill("#race-scrubber", String(k));
    const start = await page.$$eval('[data-testid="lane-b"] .tok.start', (els) => els.length);
    if (start > 0 && start < 7) {
      shown = k;
      break;
    }
  }
  await page.fill("#race-scrubber", String(shown));
  await page.waitForTimeout(600); // the cells' colour transition
  await page.locator(".race").screenshot({ path: join(SHOTS, "family-race.png") });
  await context.close();
});

test("the continuous families: their measured figures, a family race of any two, a row's own sampler", { timeout: 600_000 }, async () => {
  const { context, page } = await open({ width: 1280, height: 900 });
  // each family's figures beside it (forward.js FAMILIES, from docs/quality.md)
  const measured = {};
  for (const f of ["absorbing", "uniform", "gaussian", "bits"]) measured[f] = await page.textContent(`[data-testid="measured-${f}"]`);
  assert.match(measured.absorbing, /4\.088 nats\/token.*49\.90%.*docs\/quality\.md/);
  assert.match(measured.uniform, /4\.234 nats\/token.*45\.68%.*docs\/quality\.md/);
  for (const f of ["gaussian", "bits"]) assert.match(measured[f], /^measured: .*\d.* \(docs\/quality\.md\)$/, f);
  assert.deepEqual(
    await page.$$eval('#families [data-testid^="sample-"]:is(button)', (els) => els.map((e) => e.textContent)),
    ["Sample with the gaussian model", "Sample with the bits model"],
  );

  // the family race: any two of the four families, each lane its family's bundled model and a
  // strategy that fits it; it opens as absorbing against gaussian
  await page.fill('[data-testid="template"]', TEMPLATE);
  await page.selectOption("#race-mode", "families");
  assert.equal(await page.isVisible("#race-fam-a"), true, "a family select per lane");
  assert.deepEqual(
    await page.$$eval("#race-fam-a option", (els) => els.map((e) => e.value)),
    ["absorbing", "uniform", "gaussian", "bits"],
  );
  assert.deepEqual([await page.inputValue("#race-fam-a"), await page.inputValue("#race-fam-b")], ["absorbing", "gaussian"]);
  const m = await menus(page, "gaussian");
  assert.deepEqual(m.raceB, ["ddim", "ddpm"], "lane B: the strategies that fit a continuous model, its default first");
  assert.deepEqual(m.raceB, m.fits);
  assert.match(await page.textContent("#lane-a-measured"), /4\.088/);
  assert.match(await page.textContent("#lane-b-measured"), /docs\/quality\.md/);
  /** Races and waits for the end: each lane's family, name, stats, text and known text. */
  const race = async () => {
    await page.click('[data-testid="race"]');
    await page.waitForSelector('[data-testid="lane-b"][data-state="done"]', { timeout: 300_000 });
    const lanes = [];
    for (const lane of ["lane-a", "lane-b"]) {
      const el = `[data-testid="${lane}"]`;
      lanes.push({
        family: await page.getAttribute(el, "data-family"),
        state: await page.getAttribute(el, "data-state"),
        text: await page.getAttribute(el, "data-text"),
        known: await page.$$eval(`${el} .known`, (els) => els.map((e) => e.textContent)),
        filled: await page.$$eval(`${el} .tok.filled`, (els) => els.map((e) => e.textContent)),
        stats: await page.textContent(`#${lane}-stats`),
        name: await page.textContent(`#${lane}-name`),
      });
    }
    for (const l of lanes) {
      assert.equal(l.state, "done", l.family);
      assert.deepEqual(l.known, ["Peter ", " into the garden, and ", " under the gate."], `${l.family}: the known text is intact`);
      assert.equal(l.filled.length, 7, `${l.family}: every hole shows a token`);
      assert.ok(l.filled.every((t) => t.length > 0), `${l.family}: ${l.filled}`);
      assert.match(l.text, /^Peter .+ into the garden, and .+ under the gate\.$/s, `${l.family}: ${l.text}`);
      assert.match(l.stats, /\d+ steps · NFE \d+/);
    }
    return lanes;
  };
  const mixed = await race();
  assert.deepEqual(mixed.map((l) => l.family), ["absorbing", "gaussian"]);
  assert.match(mixed[1].name, /gaussian · continuous embeddings · DDIM/);
  assert.match(mixed[1].stats, /^32 steps · NFE 32 /, "the continuous default: 32 steps, one pass each");
  console.log(`# family race absorbing vs gaussian: A ${mixed[0].stats} "${mixed[0].text}" | B ${mixed[1].stats} "${mixed[1].text}"`);
  await page.locator(".race").screenshot({ path: join(SHOTS, "race-four-families.png") });
  // gaussian against bits
  await page.selectOption("#race-fam-a", "gaussian");
  await page.selectOption("#race-fam-b", "bits");
  assert.deepEqual((await menus(page, "bits")).race, ["ddim", "ddpm"]);
  const continuous = await race();
  assert.deepEqual(continuous.map((l) => l.family), ["gaussian", "bits"]);
  assert.match(continuous[1].name, /bits · Analog Bits/);
  assert.ok(served.includes("GET /unmask/models/gaussian/model.safetensors") && served.includes("GET /unmask/models/bits/model.safetensors"), "served with the page");
  assert.equal(served.filter((r) => r === "GET /unmask/models/gaussian/model.safetensors").length, 1, "each model loaded once");
  console.log(`# family race gaussian vs bits: A ${continuous[0].stats} "${continuous[0].text}" | B ${continuous[1].stats} "${continuous[1].text}"`);

  // a continuous row samples its own model (the race's worker, loaded already) step by step
  for (const f of ["bits", "gaussian"]) {
    const lane = `[data-testid="sample-lane-${f}"]`;
    await page.click(`[data-testid="sample-${f}"]`);
    await page.waitForSelector(`${lane}[data-state="done"]`, { timeout: 300_000 });
    const known = await page.$$eval(`${lane} .known`, (els) => els.map((e) => e.textContent));
    assert.deepEqual(known, ["Peter ", " into the garden, and ", " under the gate."], `${f} row: the known text is intact`);
    const text = await page.getAttribute(lane, "data-text");
    assert.match(text, /^Peter .+ into the garden, and .+ under the gate\.$/s, `${f} row: ${text}`);
    assert.equal((await page.$$(`${lane} .tok.filled`)).length, 7);
    const steps = Number(await page.getAttribute(`[data-testid="sample-scrubber-${f}"]`, "max"));
    assert.equal(steps, 32, `${f} row: ddim's 32 steps`);
    // step 0 is all noise; the readout changes along the way
    await page.fill(`[data-testid="sample-scrubber-${f}"]`, "0");
    assert.equal((await page.$$(`${lane} .tok.masked`)).length, 7, "step 0: noise in every hole");
    const seen = new Set();
    for (const k of [1, 8, 16, 24, 32]) {
      await page.fill(`[data-testid="sample-scrubber-${f}"]`, String(k));
      seen.add(await page.$$eval(`${lane} .tok`, (els) => els.map((e) => e.textContent).join("|")));
    }
    assert.ok(seen.size >= 2, `${f} row: the text changes as it condenses: ${[...seen].join(" / ")}`);
    console.log(`# ${f} row: "${text}" · ${await page.textContent(`[data-family="${f}"] .sample .stats`)}`);
  }
  // the picture: the gaussian row's fill scrubbed to half way
  await page.fill('[data-testid="sample-scrubber-gaussian"]', "16");
  await page.waitForTimeout(600); // the cells' colour transition
  await page.locator('#families .family[data-family="gaussian"]').screenshot({ path: join(SHOTS, "continuous-midway.png") });
  await context.close();
});

/**
 * A growing fill's frames as the page should draw them, from its events alone: after each step
 * (and the length move that follows it), how many hole positions the canvas has and how many
 * hold a token; frame 0 is the starting layout.
 */
function growingFrames(layout, events) {
  let cells = layout.slots.reduce((n, s) => n + ("hole" in s ? s.hole[1] - s.hole[0] : 0), 0);
  let filled = 0;
  const frames = [{ cells, filled, moves: [] }];
  for (const e of events) {
    if ("committed" in e) {
      filled += e.committed.filter((c) => c.text !== "<|expand|>" && c.text !== "<|endoftext|>").length;
      frames.push({ cells, filled, moves: [] });
    } else if ("expand" in e) {
      cells += 1;
      Object.assign(frames.at(-1), { cells, moves: ["expand"] });
    } else if ("delete" in e) {
      cells -= e.delete.length;
      Object.assign(frames.at(-1), { cells, moves: ["delete"] });
    }
  }
  return frames;
}

test("a hole that grows: the dreamon model fills [MASK*?] once, the canvas following its expand and delete events", { timeout: 600_000 }, async () => {
  const { context, page } = await open({ width: 1280, height: 900 });
  const template = "The little girl [MASK*?] to the park.";
  // first on the default model, which has no <|expand|>: it ranks one fill per length, and the
  // page lays out and plays the chosen one once the ranking is over
  await page.fill('[data-testid="template"]', template);
  await page.waitForFunction(() => /one fill per length/.test(document.querySelector("#measure").textContent), null, { timeout: 10_000 });
  await page.click('[data-testid="fill"]');
  await page.waitForSelector('[data-testid="canvas"][data-state="ranking"]', { timeout: 10_000 });
  await page.waitForSelector('[data-testid="canvas"][data-state="done"]', { timeout: 300_000 });
  const chosen = Number(await page.getAttribute('[data-testid="canvas"]', "data-lengths"));
  assert.ok(chosen >= 1 && chosen <= 8, `the chosen length: ${chosen}`);
  assert.equal(await page.$$eval('[data-testid="canvas"] .tok.filled', (els) => els.length), chosen, "the chosen fill's cells, all filled");
  assert.match(await page.getAttribute('[data-testid="canvas"]', "aria-label"), /^Filled: The little girl .* to the park\.$/);

  const names = await page.$$eval("#preset option", (els) => els.map((e) => e.value));
  assert.ok(names.includes("dreamon"), names.join(" / "));
  await page.selectOption("#preset", "dreamon");
  await page.click("#load");
  await page.waitForSelector('#progress[data-state="ready"]', { timeout: 120_000 });
  await page.waitForSelector('[data-testid="fill"]:not([disabled])');
  assert.ok(served.includes("GET /unmask/models/dreamon/model.safetensors"), "served with the page");
  // the example is offered; the editor measures the starting canvas and says the hole grows
  const examples = await page.$$eval("#examples option", (els) => els.map((e) => e.value));
  assert.ok(examples.includes(template), "the growing hole is one of the examples");
  await page.fill('[data-testid="template"]', `${template} `);
  await page.fill('[data-testid="template"]', template);
  await page.waitForFunction(() => /grow and shrink/.test(document.querySelector("#measure").textContent), null, { timeout: 10_000 });
  assert.match(await page.textContent("#measure"), /^4 holes/);

  // the same fill run in this page's own thread through the package (the sampler's defaults are
  // greedy, so the page's worker makes the very same one): the frames the canvas must draw
  const expected = await page.evaluate(async (template) => {
    const { Unmask } = await import("/unmask/index.web.js");
    const m = await Unmask.load("dreamon", { device: "wasm", threads: 1 });
    const layout = await m.layout(template);
    const events = [];
    const result = await m.infill(template, { topP: 1, seed: 7, onStep: (e) => events.push(e) });
    m.dispose();
    return { layout, events, result };
  }, template);
  const frames = growingFrames(expected.layout, expected.events);
  assert.equal(frames[0].cells, 4, "[MASK*?] starts at 4");
  assert.equal(frames.length - 1, expected.result.steps);
  assert.equal(frames.at(-1).cells, expected.result.hole_lengths[0]);
  const moves = frames.flatMap((f) => f.moves);
  console.log(`# dreamon in the page: ${expected.result.steps} steps, ${moves.filter((m) => m === "expand").length} expansions, ${moves.filter((m) => m === "delete").length} deletions, ${frames.at(-1).cells} tokens: ${expected.result.text}`);

  // the live fill: every frame drawn has the cells that step leaves, at consecutive positions
  await page.evaluate(() => {
    const canvas = document.querySelector('[data-testid="canvas"]');
    window.__grow = [];
    const note = () => {
      const live = [...canvas.querySelectorAll(".tok:not([data-gone])")];
      const pos = live.map((b) => Number(b.dataset.pos));
      window.__grow.push({
        // (the canvas is built once the fill's layout is back)
        built: canvas.dataset.tokens !== undefined,
        step: Number(canvas.dataset.step),
        state: canvas.dataset.state,
        cells: live.length,
        consecutive: pos.every((p, i) => i === 0 || p === pos[i - 1] + 1),
        grown: canvas.querySelectorAll(".tok.grown").length,
        gone: canvas.querySelectorAll(".tok.gone").length,
      });
    };
    new MutationObserver(note).observe(canvas, { subtree: true, childList: true, attributes: true });
  });
  await page.click('[data-testid="fill"]');
  await page.waitForSelector('[data-testid="canvas"][data-state="done"]', { timeout: 300_000 });
  const seen = (await page.evaluate(() => window.__grow)).filter((f) => f.built);
  assert.ok(seen.length > 0);
  for (const f of seen) {
    assert.equal(f.cells, frames[f.step].cells, `step ${f.step}: ${f.cells} cells on the canvas, ${frames[f.step].cells} after the events`);
    assert.ok(f.consecutive, `step ${f.step}: the cells' positions are consecutive`);
  }
  const steps = new Set(seen.map((f) => f.step));
  assert.ok(steps.size >= 3, `${steps.size} distinct frames drawn`);
  if (moves.includes("expand")) assert.ok(seen.some((f) => f.grown > 0), "a cell slid in where the hole grew");
  if (moves.includes("delete")) assert.ok(seen.some((f) => f.gone > 0), "deleted cells collapsed");
  assert.equal(await page.getAttribute('[data-testid="canvas"]', "aria-label"), `Filled: ${expected.result.text}`);
  assert.equal(await page.getAttribute('[data-testid="canvas"]', "data-lengths"), expected.result.hole_lengths.join(","));
  const known = await page.$$eval('[data-testid="canvas"] .known', (els) => els.map((e) => e.textContent));
  assert.deepEqual(known, ["The little girl ", " to the park."], "the known text is intact");

  // scrubbing there and back: the cells each step leaves, none left over from another step
  const count = () => page.$$eval('[data-testid="canvas"] .tok:not([data-gone])', (els) => els.length);
  const last = frames.length - 1;
  for (const k of [last, 0, Math.floor(last / 2), 1, last]) {
    await page.fill('[data-testid="scrubber"]', String(k));
    assert.equal(await count(), frames[k].cells, `scrubbed to ${k}`);
    assert.equal(Number(await page.getAttribute('[data-testid="canvas"]', "data-step")), k);
  }
  assert.equal((await page.$$eval('[data-testid="canvas"] .tok.filled', (els) => els.map((e) => e.dataset.pos))).length, frames[last].cells, "every cell filled at the end");

  // the picture: half way through the fill, the hole grown
  const half = frames.findIndex((f) => f.filled * 2 >= frames[last].filled && f.cells > 4);
  const shot = half > 0 ? half : Math.floor(last / 2);
  await page.fill('[data-testid="scrubber"]', String(shot));
  assert.equal(await count(), frames[shot].cells);
  // a position's candidates name its position on the grown canvas
  const cell = page.locator('[data-testid="canvas"] .tok.filled').first();
  if ((await cell.count()) > 0) {
    const pos = await cell.getAttribute("data-pos");
    await cell.click();
    await page.waitForSelector('[data-testid="candidates"]:not([hidden])');
    assert.match(await page.textContent("#cand-h"), new RegExp(`^Position ${pos} `));
    await page.click("#cand-close");
  }
  await page.waitForTimeout(600); // the cells' colour transition
  // the template and the canvas side by side, down to the player
  const [editor, stage, player] = await Promise.all(["#editor", ".stage", ".stage .player"].map((sel) => page.locator(sel).boundingBox()));
  const x = Math.min(editor.x, stage.x);
  const y = Math.min(editor.y, stage.y);
  const clip = { x, y, width: Math.max(editor.x + editor.width, stage.x + stage.width) - x, height: player.y + player.height + 6 - y };
  await page.screenshot({ path: join(SHOTS, "growing-hole.png"), clip });

  // the page's canvas on hand-written events, a deletion among them (whatever the bundled
  // weights happen to do): drawn step by step with the moves animated, then scrubbed back and on
  const drawn = await page.evaluate(async () => {
    const { Recording } = await import("/app/recording.js");
    const { buildCanvas } = await import("/app/canvas.js");
    const layout = { tokens: 9, slots: [{ known: "Once " }, { hole: [2, 6], afterSpace: true }, { known: " sat." }] };
    const rec = new Recording(layout);
    const step = (step, pos, text) => ({ step, t: 1, nfe: step, committed: [{ pos, id: 1, text, p: 0.5 }], masked: 0 });
    rec.push(step(1, 2, "<|expand|>"));
    rec.push({ expand: 2, step: 1, hole: 0, length: 5, masked: 5 });
    rec.push(step(2, 3, " little"));
    rec.push(step(3, 5, "<|endoftext|>"));
    rec.push({ delete: [5, 6], step: 3, hole: 0, length: 3, masked: 2 });
    const el = document.createElement("div");
    document.body.append(el);
    const view = buildCanvas(el, layout, null);
    const look = () => ({
      live: [...el.querySelectorAll(".tok:not([data-gone])")].map((b) => `${b.dataset.pos}:${b.dataset.cell}:${b.textContent}`),
      grown: el.querySelectorAll(".tok.grown").length,
      gone: el.querySelectorAll(".tok.gone").length,
    });
    const draw = (k, animate) =>
      view.update(rec.state(k), { layout: rec.layoutAt(k), order: rec.order(k), move: animate ? rec.moveAt(k) : null, fresh: animate ? rec.freshAt(k) : new Set() });
    const out = [];
    for (const k of [1, 2, 3]) {
      draw(k, true);
      out.push(look());
    }
    draw(0, false);
    out.push(look());
    draw(3, false);
    out.push(look());
    el.remove();
    return out;
  });
  assert.deepEqual(drawn[0], { live: ["2:2:", "3:9:", "4:3:", "5:4:", "6:5:"], grown: 1, gone: 0 }, "an expansion: a new cell (9) slides in after the one that took <|expand|>");
  assert.deepEqual(drawn[1].live, ["2:2:", "3:9:little", "4:3:", "5:4:", "6:5:"]);
  assert.deepEqual([drawn[2].live, drawn[2].gone], [["2:2:", "3:9:little", "4:3:"], 2], "a deletion: the end token's cell and the mask after it collapse");
  assert.deepEqual(drawn[3].live, ["2:2:", "3:3:", "4:4:", "5:5:"], "scrubbed back to the start: the starting cells");
  assert.deepEqual(drawn[4].live, ["2:2:", "3:9:little", "4:3:"], "and on again");
  await context.close();
});

test("a model from a folder URL: progress, cache status, clear cache", { timeout: 300_000 }, async () => {
  const { context, page } = await open({ width: 1280, height: 900 });
  await page.selectOption("#preset", "custom");
  await page.fill("#custom", `${base}/models/bert/`);
  await page.dispatchEvent("#preset", "change");
  await page.click("#load");
  await page.waitForSelector('#progress[data-state="ready"]', { timeout: 120_000 });
  assert.equal(await page.evaluate(() => document.querySelector("#progress").value), 1);
  assert.ok(served.includes("GET /models/bert/model.safetensors"), "downloaded from the folder");
  await page.waitForFunction(() => /cache/.test(document.querySelector("#progress-text").textContent), null, { timeout: 10_000 });
  assert.match(await page.textContent("#progress-text"), /in this browser's cache/);
  await page.fill('[data-testid="template"]', "the cat [MASK*2] on the mat.");
  await page.click('[data-testid="fill"]');
  await page.waitForSelector('[data-testid="canvas"][data-state="done"]', { timeout: 120_000 });
  await page.click("#clear-cache");
  await page.waitForFunction(() => /not cached/.test(document.querySelector("#progress-text").textContent), null, { timeout: 10_000 });
  await context.close();
});

test("threads on a static host: the service worker isolates the page from its second visit; the CPU path then runs on every core and fills the same", { timeout: 300_000 }, async () => {
  const { context, page } = await open({ width: 1280, height: 900 });
  // the test server sends no COOP/COEP, as a static host would not
  assert.equal(await page.evaluate(() => crossOriginIsolated), false, "the first visit is not isolated");
  assert.doesNotMatch(await page.textContent("#backend"), /threads/);
  await page.evaluate(() => navigator.serviceWorker.ready);
  const fill = async (template = TEMPLATE) => {
    await page.fill('[data-testid="template"]', template);
    await page.click('[data-testid="fill"]');
    await page.waitForSelector('[data-testid="canvas"][data-state="done"]', { timeout: 120_000 });
    return page.evaluate(() => [...document.querySelectorAll('[data-testid="canvas"] .tok')].map((c) => c.textContent).join("|"));
  };
  // the page's own ms/step figure (the engine's time, not the animation's) on a longer canvas
  const long = "Peter [MASK*4] into the garden, and he [MASK*4] under the gate. ".repeat(5);
  const msPerStep = async () => {
    await fill(long);
    return Number(await page.textContent("#f-ms"));
  };
  const oneMs = await msPerStep();
  const one = await fill();
  await page.reload();
  await page.waitForSelector('[data-testid="fill"]:not([disabled])', { timeout: 120_000 });
  assert.equal(await page.evaluate(() => crossOriginIsolated), true, "the second visit is isolated by coi-sw.js");
  const cores = await page.evaluate(() => Math.min(navigator.hardwareConcurrency, 8));
  if (cores > 1) assert.match(await page.textContent("#backend"), new RegExp(`${cores} threads`));
  const threaded = await fill();
  assert.equal(threaded, one, "the same fill on every core as on one");
  const manyMs = await msPerStep();
  console.log(`# demo, default model, ${long.length} characters with 40 holes: ${oneMs} ms/step on 1 thread, ${manyMs} ms/step on ${cores}`);
  await context.close();
});

test("where service workers are blocked the page stays on one thread and works; the worker's cost on the first and second visit is printed", { timeout: 300_000 }, async () => {
  // time from navigation to a page ready to fill (the default model loaded), in a fresh
  // context each time, alternating contexts that block service workers and ones that allow them
  const visit = async (serviceWorkers) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, serviceWorkers });
    const page = await context.newPage();
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    const ready = async (load) => {
      const t0 = Date.now();
      await load();
      await page.waitForSelector('[data-testid="fill"]:not([disabled])', { timeout: 120_000 });
      return Date.now() - t0;
    };
    const first = await ready(() => page.goto(`${base}/`));
    const installed = serviceWorkers === "allow" ? await page.evaluate(() => navigator.serviceWorker.ready.then(() => true)) : false;
    const second = await ready(() => page.reload());
    const isolated = await page.evaluate(() => crossOriginIsolated);
    const backend = await page.textContent("#backend");
    let fill = "";
    if (serviceWorkers === "block") {
      await page.fill('[data-testid="template"]', TEMPLATE);
      await page.click('[data-testid="fill"]');
      await page.waitForSelector('[data-testid="canvas"][data-state="done"]', { timeout: 120_000 });
      fill = await page.evaluate(() => [...document.querySelectorAll('[data-testid="canvas"] .tok')].map((c) => c.textContent).join(""));
    }
    await context.close();
    return { first, second, installed, isolated, backend, fill };
  };
  const runs = { block: [], allow: [] };
  for (let i = 0; i < 3; i++) {
    for (const mode of i % 2 ? ["allow", "block"] : ["block", "allow"]) runs[mode].push(await visit(mode));
  }
  for (const r of runs.block) {
    assert.equal(r.isolated, false, "no service worker, no isolation");
    assert.doesNotMatch(r.backend, /threads/);
    assert.ok(r.fill.length > 0 && !/MASK/.test(r.fill), `a fill on one thread: ${r.fill}`);
  }
  for (const r of runs.allow) {
    assert.ok(r.installed && r.isolated, "the worker installs on the first visit and isolates the second");
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const line = (key) => {
    const [without, within] = [runs.block, runs.allow].map((rs) => rs.map((r) => r[key]));
    return `${median(without)} ms without the worker (${without.join(", ")}), ${median(within)} ms with it (${within.join(", ")})`;
  };
  console.log(`# demo ready to fill (median of 3 fresh contexts each): first visit ${line("first")}; second visit ${line("second")} (with it: isolated, threaded module and pool)`);
});

/** Points a preset at another source (the page's MODELS objects are the module's own). */
async function repoint(page, id, source) {
  await page.evaluate(
    async ([id, source]) => {
      const { MODELS } = await import("/app/presets.js");
      MODELS.find((m) => m.id === id).source = source;
    },
    [id, source],
  );
}

test("Qwen3 0.6B diffusion presets: attention and q8 weights passed to the load; BD3LM's canvas shows its blocks", { timeout: 300_000 }, async () => {
  const { context, page } = await open({ width: 1280, height: 900 });
  const presets = await page.evaluate(async () => {
    const { MODELS } = await import("/app/presets.js");
    return MODELS.filter((m) => m.id.startsWith("qwen3")).map(({ id, source, attention, weights }) => ({ id, source, attention, weights }));
  });
  assert.deepEqual(presets, [
    { id: "qwen3-mdlm", source: "dllm-hub/Qwen3-0.6B-diffusion-mdlm-v0.1", attention: "full", weights: "q8" },
    { id: "qwen3-bd3lm", source: "dllm-hub/Qwen3-0.6B-diffusion-bd3lm-v0.1", attention: "block:32", weights: "q8" },
  ]);
  // the BD3LM preset, loaded from the tiny Qwen3 A2D fixture instead of the hub (same options)
  await repoint(page, "qwen3-bd3lm", `${base}/models/a2d_qwen3/`);
  await page.selectOption("#preset", "qwen3-bd3lm");
  const template = await page.inputValue('[data-testid="template"]');
  assert.match(template, /Eiffel Tower/, "choosing the preset puts its example in the editor");
  // before any download the page states what the model will take here (need(): config and header)
  await page.waitForFunction(() => document.querySelector("#progress-text").dataset.need, null, { timeout: 60_000 });
  const stated = JSON.parse(await page.getAttribute("#progress-text", "data-need"));
  assert.equal(stated.refused, null);
  assert.ok(stated.fileBytes > 300_000 && stated.wasmPeakBytes > 0, JSON.stringify(stated));
  assert.match(await page.textContent("#progress-text"), /needs .*WebAssembly memory/);
  await page.click("#load");
  await page.waitForSelector('#progress[data-state="ready"]', { timeout: 120_000 });
  assert.ok(served.includes("GET /models/a2d_qwen3/model.safetensors"));
  await watchFrames(page);
  await page.click('[data-testid="fill"]');
  await page.waitForSelector('[data-testid="canvas"][data-state="done"]', { timeout: 120_000 });
  const tokens = Number(await page.getAttribute('[data-testid="canvas"]', "data-tokens"));
  assert.ok(tokens > 64, `the example spans several blocks of 32: ${tokens} tokens`);
  const blocks = async () =>
    page.evaluate(() => {
      const c = document.querySelector('[data-testid="canvas"]');
      const cells = [...c.querySelectorAll(".tok")];
      return {
        length: c.dataset.blockLength,
        block: c.dataset.block,
        wrong: cells.filter((b) => Number(b.dataset.block) !== Math.floor(Number(b.dataset.pos) / 32)).length,
        starts: cells.filter((b) => b.classList.contains("blk-start")).map((b) => Number(b.dataset.pos)),
        odd: cells.filter((b) => b.classList.contains("blk-odd")).map((b) => Number(b.dataset.block) % 2),
        active: cells.filter((b) => b.classList.contains("blk-active")).map((b) => Number(b.dataset.pos)),
        cells: cells.map((b) => Number(b.dataset.pos)),
      };
    });
  // at the first step: the first block with a hole is being decoded
  await page.fill('[data-testid="scrubber"]', "1");
  let b = await blocks();
  assert.equal(b.length, "32");
  assert.equal(b.wrong, 0, "every cell knows its block of 32 positions");
  assert.ok(b.odd.length > 0 && b.odd.every((x) => x === 1), "a later block's cells, still masked, are marked too");
  assert.ok(b.starts.length > 0, "a divider before the first cell of a block");
  const blockOf = (p) => Math.floor(p / 32);
  const firsts = b.cells.filter((p, j) => (j === 0 ? p === 0 || blockOf(p) > 0 : blockOf(p) !== blockOf(b.cells[j - 1])));
  assert.deepEqual(b.starts, firsts, "a divider at the first cell of each block (none before block 0's)");
  const [start, end] = b.block.split("-").map(Number);
  assert.equal(start % 32, 0);
  assert.ok(b.active.length > 0 && b.active.every((p) => p >= start && p < end), `active ${b.active} in ${b.block}`);
  await page.waitForTimeout(500); // (the cells' colours fade in 0.35 s)
  await page.locator('[data-testid="canvas"]').screenshot({ path: join(SHOTS, "demo-bd3lm-blocks.png") });
  // at the last step: a later block
  const last = await page.getAttribute('[data-testid="scrubber"]', "max");
  await page.fill('[data-testid="scrubber"]', last);
  const later = await blocks();
  assert.ok(Number(later.block.split("-")[0]) > start, `${later.block} after ${b.block}`);

  // the MDLM preset: full attention, no blocks on its canvas
  await repoint(page, "qwen3-mdlm", `${base}/models/a2d_qwen3/`);
  await page.selectOption("#preset", "qwen3-mdlm");
  await page.click("#load");
  await page.waitForSelector('#progress[data-state="ready"]', { timeout: 120_000 });
  await page.click('[data-testid="fill"]');
  await page.waitForSelector('[data-testid="canvas"][data-state="done"]', { timeout: 120_000 });
  b = await blocks();
  assert.deepEqual([b.length, b.block, b.active.length, b.starts.length], [undefined, undefined, 0, 0]);

  // a device that cannot hold the model: refused from the header, the reason in the status line
  await repoint(page, "qwen3-mdlm", `${base}/huge/`);
  await page.click("#load");
  await page.waitForSelector('#progress[data-state="error"]', { timeout: 60_000 });
  const status = await page.textContent("#progress-text");
  assert.match(status, /too large for this device: model\.safetensors: its weights take 5\.59 GiB as f32/);
  assert.match(status, /4\.00 GiB/);
  assert.equal(await page.getAttribute("#progress-text", "data-error"), "ModelTooLarge");
  assert.match(await page.textContent("#notice"), /too large/);
  await context.close();
});

test("phone: readable, nothing wider than the screen", { timeout: 300_000 }, async () => {
  const { context, page } = await open({ width: 390, height: 844 });
  await page.fill('[data-testid="template"]', TEMPLATE);
  await page.click('[data-testid="fill"]');
  await page.waitForSelector('[data-testid="canvas"][data-state="done"]', { timeout: 300_000 });
  const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  assert.ok(scroll <= inner, `no horizontal scrolling: ${scroll} > ${inner}`);
  const font = await page.evaluate(() => parseFloat(getComputedStyle(document.querySelector('[data-testid="canvas"]')).fontSize));
  assert.ok(font >= 14, `canvas text ${font}px`);
  await page.screenshot({ path: join(SHOTS, "demo-phone.png"), fullPage: false });
  await context.close();
});

test("no request left 127.0.0.1, and no CSP violation or page error", () => {
  assert.deepEqual(outside, []);
  assert.deepEqual(problems.filter((p) => !/the CPU path runs on one thread/.test(p)), []);
});
