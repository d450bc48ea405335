// The public API as a user writes it, checked by `tsc --noEmit` (bindings/npm/tsconfig.json,
// run by scripts/test-npm): it must compile, and each `@ts-expect-error` line must not. Nothing
// here runs; the behaviour is tested in node.test.mjs and browser.test.mjs.
import {
  Unmask,
  RemoteUnmask,
  strategies,
  reapply,
  isCached,
  clearCache,
  type Backend,
  type BundledModel,
  type ErrorCode,
  type FillEvent,
  type InfillResult,
  type Layout,
  type LayoutOptions,
  type Measure,
  type Model,
  type ModelFamily,
  type StrategyName,
  type UnmaskError,
} from "unmask";

/** Code written against `Model` takes a model in the page and one in a worker alike. */
async function fillTwice(model: Model, template: string): Promise<string[]> {
  const a = await model.infill(template, { seed: 1 });
  const b = await model.infill(template, { seed: 2, strategy: "threshold:0.8" });
  return [a.text, b.text];
}

/** An error's code, switched on as the README says. */
function describe(e: unknown): string {
  if (e instanceof Error && "code" in e) {
    const code = (e as UnmaskError).code;
    switch (code) {
      case "Busy":
        return "a fill is already running";
      case "Aborted":
        return "stopped";
      default:
        return `${code}: ${e.message}`;
    }
  }
  return String(e);
}

export async function user(): Promise<void> {
  // the default model, in this thread; the options a user passes
  const controller = new AbortController();
  const local: Unmask = await Unmask.load(undefined, {
    device: "auto",
    weights: "f16",
    onProgress: (p) => {
      if (p.phase === "download") console.log(p.file, p.totalLoaded, p.totalBytes, p.cached);
      else console.log(p.phase, p.backend);
    },
    signal: controller.signal,
  });
  const backend: Backend = local.backend;
  // one vocabulary: the reason's backend is the model's
  const same: boolean = local.backendReason.backend === backend;
  const adapter: string | null = local.backendReason.adapter;
  console.log(same, adapter, local.backendReason.threads.reason, local.threads, local.readbackBytes);

  // infill with options and onStep; the result's fields
  const events: FillEvent[] = [];
  const result: InfillResult = await local.infill("The [MASK*3] sat.", {
    strategy: "top-prob",
    steps: 8,
    temperature: 0.7,
    topK: 40,
    topP: 0.9,
    seed: 7,
    candidates: 5,
    pending: true,
    force: [{ hole: 0, text: " cat" }],
    signal: controller.signal,
    onStep: (e) => {
      events.push(e);
      if ("committed" in e) for (const c of e.committed) console.log(c.pos, c.text, c.p, c.top?.[0]?.p);
      else if ("lengths" in e) for (const l of e.lengths) console.log(l.lengths, l.natsPerToken);
      else if ("expand" in e) console.log(e.expand + 1, e.hole, e.length, e.masked);
      else if ("delete" in e) console.log(e.delete.length, e.hole, e.length, e.masked);
      else console.log(e.done, e.text, e.ms);
    },
  });
  console.log(result.text, result.holes, result.steps, result.nfe, result.ms, result.lengths?.[0]?.natsPerToken);

  // the steps iterator
  for await (const e of local.steps("The [MASK*3] sat.", { seed: 7 })) {
    if ("done" in e) break;
  }

  // measure, layout, corrupt, schedule
  const m = await local.measure("The [MASK] sat.");
  console.log(m.tokens + m.holes + m.maxTokens);
  const layout = await local.layout("The [MASK] sat.");
  for (const slot of layout.slots) console.log("known" in slot ? slot.known : slot.hole[1] - slot.hole[0]);
  const noised = await local.corrupt("Peter ran.", { family: "gaussian", t: 0.4, seed: 1 });
  console.log(noised.tokens.map((t) => (t.valid ? t.text : "∅")).join(""));
  const schedule = await local.schedule(11);
  console.log(schedule.masked[0][1], schedule.continuous.length);

  // errors carry a code
  try {
    await local.infill("no holes here");
  } catch (e) {
    const code: ErrorCode | undefined = e instanceof Error ? (e as UnmaskError).code : undefined;
    console.log(code, describe(e));
  }

  // the strategy list, from the engine; its names are the types' names
  const names: StrategyName[] = (await strategies()).map((s) => s.name);
  console.log(names, (await strategies())[0].help);

  // the bundled models by name; a model's family picks the strategies that fit it
  const name: BundledModel = "uniform";
  const uniform: Unmask = await Unmask.load(name, { device: "wasm" });
  const family: ModelFamily = uniform.family;
  const fits = (await strategies()).filter((s) => s.families.includes(family));
  const byDefault: StrategyName | undefined = fits.find((s) => s.defaultFor.includes(family))?.name;
  await uniform.infill("The [MASK*3] sat.", { strategy: "psi:0.8", seed: 1 });
  console.log(byDefault, await isCached("uniform"));
  uniform.dispose();
  // the continuous ones: sampled by ddim (their default) or ddpm
  const continuousModels: BundledModel[] = ["gaussian", "bits"];
  for (const continuous of continuousModels) {
    const m: Unmask = await Unmask.load(continuous, { device: "wasm" });
    const f: ModelFamily = m.family;
    for await (const e of m.steps("The [MASK*3] sat.", { strategy: "ddim", steps: 4, seed: 1 })) console.log(f, e);
    m.dispose();
  }

  // holes that grow: the starting layout, holeStart, the final lengths
  const grows: BundledModel = "dreamon";
  const dreamon: Unmask = await Unmask.load(grows, { device: "wasm" });
  const start: Layout = await dreamon.layout("The [MASK*?] sat.", { holeStart: 6 });
  const grown = await dreamon.infill("The [MASK*2-9] sat.", { holeStart: 6, seed: 1 });
  const lengths: number[] | undefined = grown.hole_lengths;
  const again: Measure = await dreamon.measure("The [MASK*?] sat.", { lengths: lengths ?? [6] });
  const options: LayoutOptions = { lengths: [3] };
  console.log(start.tokens, again.tokens, options);
  dreamon.dispose();

  // the sampler's temperature and top-p re-applied to a step's candidates
  const top = [
    { id: 1, text: " cat", p: 0.5 },
    { id: 2, text: " dog", p: 0.2 },
  ];
  for (const c of await reapply(top, { temperature: 0.5, topP: 0.9 })) console.log(c.text, c.tempered, c.kept, c.final);

  // worker: true resolves to a RemoteUnmask, which is a Model too
  const remote: RemoteUnmask = await Unmask.load("kuleshov-group/mdlm-owt", { worker: true, tokenizer: "openai-community/gpt2", threads: "auto" });
  console.log(remote instanceof RemoteUnmask, await fillTwice(remote, "The [MASK] sat."), await fillTwice(local, "The [MASK] sat."));
  // a flag known only at run time: either kind, both Models
  const either: Model = await Unmask.load(undefined, { worker: Math.random() > 0.5 });
  either.dispose();

  console.log(await isCached("kuleshov-group/mdlm-owt", { tokenizer: "openai-community/gpt2" }));
  await clearCache();
  remote.dispose();
  local.dispose();
}

export async function mistakes(local: Unmask): Promise<void> {
  // @ts-expect-error worker: true is not an Unmask
  const wrong: Unmask = await Unmask.load(undefined, { worker: true });
  // @ts-expect-error the backend is "webgpu" or "wasm", never "gpu"
  const gpu: boolean = local.backend === "gpu";
  // @ts-expect-error not a strategy
  await local.infill("The [MASK] sat.", { strategy: "fastest" });
  // @ts-expect-error options are camelCase
  await local.infill("The [MASK] sat.", { top_p: 0.9 });
  // @ts-expect-error models are made by load
  new Unmask();
  // @ts-expect-error not a family
  const family: ModelFamily = "masked";
  // @ts-expect-error the family is read only
  local.family = "uniform";
  // @ts-expect-error layout takes only how holes of unknown length are laid out
  await local.layout("The [MASK*?] sat.", { seed: 1 });
  console.log(family);
  console.log(wrong, gpu);
}
