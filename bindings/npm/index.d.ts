/**
 * Where a model runs: `"webgpu"` (the GPU, through WebGPU) or `"wasm"` (the CPU, in
 * WebAssembly). The package's one backend vocabulary: `model.backend`,
 * `model.backendReason.backend`, the progress events and `LoadOptions.device` all use it.
 */
export type Backend = "webgpu" | "wasm";

/**
 * What `load` asks for: `"auto"` (a hardware WebGPU adapter when there is one, else the WASM
 * CPU path) or a {@link Backend}. (`"gpu"` and `"cpu"` are still read as `"webgpu"` and
 * `"wasm"`, for code written before there was one vocabulary.)
 */
export type Device = "auto" | Backend;

export interface LoadOptions {
  device?: Device;
  /**
   * How the weights are held; arithmetic is f32 either way. `"f16"` (default) and `"f32"` choose
   * the GPU's storage (the WASM CPU path widens them to f32 as they stream in); `"q8"` and `"q4"`
   * quantise every matrix at load (q8_0 / q4_0: blocks of 32 with an f16 scale), on the CPU and
   * the GPU alike: about a quarter / an eighth of the f32 memory once loaded, with a small loss
   * of accuracy (q4 more). The checkpoint is still read as f32 first, so a model must fit the
   * wasm32 memory as f32 to load at all.
   */
  weights?: "f16" | "f32" | "q8" | "q4";
  /**
   * Qwen3 A2D only (dllm's MDLM and BD3LM checkpoints share one config, so the files cannot
   * say): `"full"` for the MDLM checkpoint, `"block:32"` for BD3LM (block-causal attention,
   * filled block by block). Default `"auto"`: full.
   */
  attention?: "auto" | "full" | `block:${number}`;
  onProgress?: ((event: ProgressEvent) => void) | null;
  signal?: AbortSignal | null;
  /** Where the .wasm is, when a bundler moved it. */
  wasmUrl?: string | URL;
  /** Keep downloads in the Cache API (browsers; default true). */
  cache?: boolean;
  /**
   * Run the model in a module worker (browsers): `load` then resolves to a {@link RemoteUnmask},
   * a {@link Model} like `Unmask`, and the page's main thread stays free. Bytes given as the
   * source are transferred, not copied.
   */
  worker?: boolean;
  /** Where the package's worker.js is, when a bundler moved it. */
  workerUrl?: string | URL;
  /** Where the multi-threaded .wasm is (wasm-threads/unmask_wasm_bg.wasm), when a bundler moved it. */
  wasmThreadsUrl?: string | URL;
  /**
   * Threads for the CPU path (default `"auto"`: the core count, at most 8). More than one needs
   * a cross-origin-isolated page and a worker (`worker: true`); otherwise one thread runs, with
   * a console warning and the reason in `backendReason.threads`. The first load in a page or
   * worker decides; Node always runs one. A number must be whole, from 1 to 256.
   */
  threads?: "auto" | number;
  /**
   * A folder URL or path, or a hub id, that `tokenizer.json` is read from instead of the
   * model's own folder (or instead of `ModelFiles.tokenizer`): for checkpoints that ship
   * without one, e.g. `kuleshov-group/mdlm-owt` with `tokenizer: "openai-community/gpt2"`.
   */
  tokenizer?: string | URL | null;
}

/** Whether every file of a source (nothing: the default model; a {@link BundledModel}; a folder or hub id) is in the cache. */
export declare function isCached(source?: BundledModel | string | URL | null, options?: { tokenizer?: string | URL | null }): Promise<boolean>;
/** Removes every file unmask has cached. */
export declare function clearCache(): Promise<void>;

export type ProgressEvent =
  | {
      phase: "download";
      file: "config.json" | "tokenizer.json" | "model.safetensors";
      loaded: number;
      total: number | null;
      totalLoaded: number;
      /** Over all files, known before the first byte arrives (null if a server hides sizes). */
      totalBytes: number | null;
      /** Served from the Cache API rather than the network. */
      cached: boolean;
    }
  /**
   * The checkpoint's header is in (its first kB): the memory the model will take where it
   * loads, stated before the weights download. A model that cannot fit has already been
   * refused (`ModelTooLarge`) by then.
   */
  | ({ phase: "memory" } & CheckpointNeed)
  /** The weights are in: the model is built and, on WebGPU, uploaded. */
  | { phase: "compile"; backend: Backend; parameters: number | null }
  /** A first pass compiles the shaders (WebGPU). */
  | { phase: "warmup"; backend: Backend }
  | { phase: "ready"; backend: Backend };

/**
 * The bytes of a model's Hugging Face files. `tokenizer` may be left out only when
 * `LoadOptions.tokenizer` says where to read tokenizer.json; otherwise its absence is a
 * `BadInput` error naming `source.tokenizer`. Any other field is `BadInput` (unknown field).
 */
export interface ModelFiles {
  config: string | Uint8Array;
  weights: Uint8Array;
  tokenizer?: string | Uint8Array;
}

/**
 * The unmasking strategies, by name: the engine's one list (`Strategy::ALL`), which
 * {@link strategies} returns at run time; the package's tests fail if this union drifts from it.
 */
export type StrategyName = "ancestral" | "first-hitting" | "top-prob" | "margin" | "entropy" | "threshold" | "entropy-bound" | "mask-predict" | "remdm" | "uniform" | "psi" | "sedd-euler" | "sedd-analytic" | "ddim" | "ddpm";

/**
 * A strategy as `InfillOptions.strategy` takes it: a name, or one with its argument in [0, 1]:
 * `threshold:TAU`, `remdm:ETA` (masked models), `psi:KAPPA` (uniform-state models); or
 * `entropy-bound:GAMMA` (masked models; GAMMA in nats, 0 or more, default 0.1). `uniform`
 * and `psi` sample uniform-state models (`Unmask.load("uniform")`), `sedd-*` SEDD models,
 * `ddim` and `ddpm` the continuous ones (`Unmask.load("gaussian")`, `"bits"`); the others
 * masked models. A strategy of another family is refused with `BadInput`.
 */
export type Strategy = StrategyName | `threshold:${number}` | `entropy-bound:${number}` | `remdm:${number}` | `psi:${number}` | `ddim:${number}` | `ddpm:${number}`;

/**
 * The discrete diffusion a model was trained for, which decides the strategies that sample it
 * ({@link Model.family}, {@link StrategyInfo.families}):
 * - `absorbing`: masked diffusion (MDLM, LLaDA, Dream, BERT-style MLMs; the `default` model):
 *   holes start as the mask and a committed token stays;
 * - `uniform`: uniform-state diffusion (UDLM, Duo; the `uniform` model): holes start as
 *   uniform noise (or the words of a `[[words]]` hole) and any of them may change every step;
 * - `score-absorbing`, `score-uniform`: SEDD (score entropy) on its absorbing or uniform graph;
 * - `gaussian`, `bits`: continuous diffusion on learned embeddings or on a token's bits (the
 *   `gaussian` and `bits` models): holes start as Gaussian noise and condense into tokens.
 */
export type ModelFamily = "absorbing" | "uniform" | "score-absorbing" | "score-uniform" | "gaussian" | "bits";

/**
 * The models shipped with the package, loaded by name: `Unmask.load("default")` (also
 * `Unmask.load()`): an 8 M-parameter masked (MDLM) model; `Unmask.load("uniform")`: a
 * uniform-state (UDLM) model of the same shape, vocabulary and tokenizer;
 * `Unmask.load("gaussian")`: continuous diffusion on learned 16-dimensional token embeddings
 * (Plaid-style); `Unmask.load("bits")`: Analog Bits (each id as 12 noisy bits). The last two
 * are sampled by `ddim` (their default) and `ddpm`; `Unmask.load("dreamon")`: the default
 * model taught DreamOn's two length moves, so a hole of unknown length (`[MASK*?]`,
 * `[MASK*A-B]`) grows and shrinks while it is filled ({@link ExpandEvent}, {@link DeleteEvent}).
 * All were trained on public-domain children's books with the same tokenizer, context 128
 * tokens. A folder of that name is `"./uniform"`.
 */
export type BundledModel = "default" | "uniform" | "gaussian" | "bits" | "dreamon";

/** One strategy as the engine lists it. */
export interface StrategyInfo {
  name: StrategyName;
  /** How it is written with its argument, e.g. `threshold[:TAU]`. */
  usage: string;
  /** One line of help (the CLI's). */
  help: string;
  /** The model families it samples: a fill with it on any other is refused (`BadInput`). */
  families: ModelFamily[];
  /** The families whose fills use it when no strategy is asked for. */
  defaultFor: ModelFamily[];
}

/** Every unmasking strategy, in the order the CLI's help lists them (the module starts on first use). */
export declare function strategies(): Promise<StrategyInfo[]>;

/** What a loaded model holds. */
export interface ModelMemory {
  /** The module's wasm memory: its peak so far, since a wasm memory never shrinks. */
  wasmBytes: number;
  /** Weight buffers on the GPU (0 on the wasm backend). */
  gpuBytes: number;
}

/** What a checkpoint will take where it loads, from its header alone. */
export interface CheckpointNeed {
  /** Bytes of model.safetensors. */
  fileBytes: number;
  /** Its float weights' bytes as f32. */
  f32Bytes: number;
  tensors: number;
  /** Weights kept in wasm memory (f32), after the load. */
  wasmBytes: number;
  /**
   * wasm memory at the load's peak: those, the largest tensor on its way to the GPU, and
   * working memory. A wasm32 module addresses 4 GiB.
   */
  wasmPeakBytes: number;
  /** Weights in GPU buffers (0 on the wasm backend). */
  gpuBytes: number;
  /**
   * Whether the weight matrices stream straight into GPU buffers as they download (WebGPU,
   * and LLaDA, Dream or Qwen3 A2D): wasm memory then holds one tensor at a time.
   */
  toGpu: boolean;
  /** Where it would run. */
  backend: Backend;
  /** Why a load would refuse it here (`ModelTooLarge`'s message), or null when it fits. */
  refused: string | null;
}

/**
 * The memory a model will need where {@link Unmask.load} would put it with these options,
 * before it downloads: its config.json and the header at the front of model.safetensors are
 * read (a few kB), then the download stops.
 */
export declare function need(source?: BundledModel | string | URL | ModelFiles | null, options?: LoadOptions): Promise<CheckpointNeed>;

/** `reapply`'s options; left out, each changes nothing. */
export interface ReapplyOptions {
  /** At least 0 (0: the most likely takes it all); default 1. */
  temperature?: number;
  /** Keep the k most likely (a whole number; 0, the default, keeps all). */
  topK?: number;
  /** Keep the smallest set of most likely whose mass reaches p, in (0, 1]; default 1. */
  topP?: number;
}

/** What `reapply` adds to each candidate. */
export interface Reweighed {
  /** Its probability after the temperature, renormalised over the candidates. */
  tempered: number;
  /** Inside the top-k / top-p cut. */
  kept: boolean;
  /** Its probability in the distribution a draw samples: `tempered` renormalised over the kept; 0 if cut. */
  final: number;
}

/**
 * What a temperature, top-k and top-p make of a position's candidates (a step event's `top`:
 * their `p` are the model's probabilities at temperature 1), taken as the whole distribution:
 * the sampler's own code, run in the module. Each candidate comes back, in order, with
 * {@link Reweighed}'s fields added. A `p` outside [0, 1] or a bad option is `BadInput`.
 */
export declare function reapply<C extends { p: number }>(candidates: readonly C[], options?: ReapplyOptions): Promise<(C & Reweighed)[]>;

/** The same options as `unmask infill`'s flags. */
export interface InfillOptions {
  strategy?: Strategy;
  steps?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  schedule?: "loglinear" | "cosine" | "linear";
  blockLength?: number;
  cfg?: number;
  force?: { hole: number; text: string }[];
  cache?: boolean;
  /**
   * Fast-dLLM's DualCache: while a block of holes is decoded (`blockLength`), reuse the keys
   * and values of the rest of the canvas from the block's first pass and compute only the
   * block (LLaDA, Dream, Qwen3 A2D, on the WASM path). Fewer FLOPs; fills may differ slightly.
   */
  dualCache?: boolean;
  seed?: number;
  /** How many of each committed position's most likely tokens a step event lists (at most 16). */
  candidates?: number;
  /** With `candidates`: each step event also lists the positions it predicted but left masked (`pending`). */
  pending?: boolean;
  /**
   * On a model whose holes grow (`dreamon`): the length each hole of unknown length starts at,
   * clamped into its range (default DreamOn's 4). A whole number of at least 1.
   */
  holeStart?: number;
  /**
   * Sees every step as a `--trace` line, then the done event; an exception it throws ends the
   * fill, which rejects with it. Anything but a function (or null) is `BadInput`.
   */
  onStep?: ((event: FillEvent) => void) | null;
  /** Checked before every step; the fill gives the event loop a turn there, so it can fire. */
  signal?: AbortSignal | null;
}

/**
 * One denoising step, as a `--trace` line. On a model whose holes grow, a step that commits
 * `<|expand|>` or `<|endoftext|>` (its `text` is that token) is followed at once by an
 * {@link ExpandEvent} or a {@link DeleteEvent}.
 */
export interface StepEvent {
  step: number;
  t: number;
  nfe: number;
  committed: {
    pos: number;
    id: number;
    text: string;
    p: number;
    /** The position's most likely tokens at that step, descending (`candidates`, 5 by default with onStep). */
    top?: { id: number; text: string; p: number }[];
  }[];
  masked: number;
  remasked?: number[];
  /** With `pending: true`: the positions this step predicted but left masked, with their candidates. */
  pending?: { pos: number; top: { id: number; text: string; p: number }[] }[];
  /**
   * Block diffusion (`attention: "block:N"`, BD3LM): the block of canvas positions this step
   * decodes, `start` to `end` exclusive (blocks of N from position 0, the last cut at the
   * canvas's end). Absent on other models.
   */
  block?: { start: number; end: number };
}

/** How `layout` and `measure` lay out holes of unknown length (`[MASK*?]`, `[MASK*A-B]`). */
export interface LayoutOptions {
  /** On a model whose holes grow: the length each starts at, as `InfillOptions.holeStart`. */
  holeStart?: number;
  /**
   * Each hole of unknown length at exactly these lengths, in template order: the chosen fill's
   * `lengths` (its {@link LengthsEvent}) on a model that ranks one fill per length, or a growing
   * fill's `hole_lengths`. Without it, a model that ranks lengths cannot `layout` such a
   * template (`BadTemplate`: its canvas is known only after the fill) and `measure`s the longest.
   */
  lengths?: number[];
}

/**
 * `layout(template)`: canvas length, and the slots in order. On a model whose holes grow, the
 * canvas its fill starts from: each {@link ExpandEvent} and {@link DeleteEvent} then moves the
 * positions after it.
 */
export interface Layout {
  tokens: number;
  slots: (
    | { known: string }
    | {
        /** Canvas positions `start..end` that this hole fills. */
        hole: [number, number];
        /** The text before ends with a space (or the hole starts the text): a fill's leading space is not shown. */
        afterSpace: boolean;
        /** For `[[words]]`: the words being rewritten. */
        original?: string;
      }
  )[];
}

export interface DoneEvent {
  done: true;
  text: string;
  steps: number;
  nfe: number;
  ms: number;
}

/**
 * A hole grew (a model whose holes grow committed `<|expand|>` at `expand` in the step just
 * before): canvas position `expand` and a new position `expand + 1` are masks now, and every
 * later position moved one to the right.
 */
export interface ExpandEvent {
  expand: number;
  step: number;
  /** Which hole of unknown length, in template order, from 0. */
  hole: number;
  /** Its length now. */
  length: number;
  /** Hole positions still masked. */
  masked: number;
}

/**
 * A hole shrank (the end token committed at `delete[0]` in the step just before): those canvas
 * positions (numbered before the change, ascending: the end token and the masks to its right in
 * its hole) are gone, and every later position moved left by the number removed before it.
 */
export interface DeleteEvent {
  delete: number[];
  step: number;
  hole: number;
  length: number;
  masked: number;
}

/**
 * What `onStep` sees and `steps()` yields: each step (on a model whose holes grow, each length
 * move right after its step), then the lengths tried (holes of unknown length on a model that
 * ranks them), then done.
 */
export type FillEvent = StepEvent | ExpandEvent | DeleteEvent | LengthsEvent | DoneEvent;

/** `measure(template)`: the canvas a template takes, without running it. */
export interface Measure {
  /** Canvas length, with the model's special tokens. */
  tokens: number;
  holes: number;
  /** The model's context. */
  maxTokens: number;
}

/** One fill of a template with holes of unknown length (`[MASK*?]`, `[MASK*A-B]`). */
export interface LengthCandidate {
  /** Tokens given to each hole of unknown length, in template order. */
  lengths: number[];
  text: string;
  /** Hole tokens scored (the fixed-length holes too). */
  tokens: number;
  /** The any-order bound on -log p(fill | known text), in nats. */
  nats: number;
  /** `nats / tokens`: the candidates are ranked by it, lowest first. */
  natsPerToken: number;
  /** @deprecated The same as `natsPerToken` (the CLI's `--trace` spelling). */
  nats_per_token: number;
  nfe: number;
  chosen: boolean;
}

/** Written after the chosen fill's steps and before `done`, when the template has holes of unknown length. */
export interface LengthsEvent {
  lengths: LengthCandidate[];
}

export interface InfillResult {
  text: string;
  holes: number;
  steps: number;
  nfe: number;
  ms: number;
  /** With holes of unknown length: every fill tried, with its score. */
  lengths?: LengthCandidate[];
  /** On a model whose holes grow: each hole of unknown length's final length, in template order. */
  hole_lengths?: number[];
}

/** The CPU path's thread pool and why it has that size. */
export interface ThreadPlan {
  count: number;
  reason: "requested" | "hardware-concurrency" | "single-core" | "not-cross-origin-isolated" | "main-thread" | "threads-failed" | "node";
}

export interface BackendReason {
  /** The same as `model.backend` (it used to say `"gpu"` or `"cpu"` here). */
  backend: Backend;
  /** The adapter used, or the one passed over; `null` when there was none. */
  adapter: string | null;
  reason: { kind: "requested" | "hardware-adapter" | "software-adapter-skipped" | "no-adapter" | "not-built"; error?: string };
  threads: ThreadPlan;
}

/**
 * A family of discrete diffusion, by its forward (noising) process:
 * - `absorbing` (D3PM-absorbing, MDLM): each token becomes the mask with probability `1 − α_t`;
 * - `uniform` (D3PM-uniform): each token, with the same probability, becomes a token drawn
 *   uniformly from the vocabulary (never the mask or a special token; it may draw itself);
 * - `gaussian` (Diffusion-LM, DiffuSeq): the token's embedding, scaled to unit RMS over the
 *   whole matrix, becomes `√ᾱ·z + √(1−ᾱ)·ε` with `ᾱ(t) = cos²(πt/2)`, read back as the most
 *   likely token, `argmin_v ‖x − √ᾱ·z_v‖²` (at t = 1 a uniform draw);
 * - `bits` (Analog Bits): the id's ⌈log₂ vocab⌉ binary digits as ±1, noised the same way and
 *   thresholded at 0; the pattern may be an id past the vocabulary (`valid: false`).
 */
export type Family = "absorbing" | "uniform" | "gaussian" | "bits";

export interface CorruptOptions {
  /** Default `"absorbing"`. */
  family?: Family;
  /** The noise level, in [0, 1]; default 0.5. Anything else (NaN too) is a `BadInput` error. */
  t?: number;
  /** The same text, family, t and seed give the same tokens; default 0. */
  seed?: number;
}

export interface CorruptedToken {
  /** The token after noising; `null` for a bits pattern past the vocabulary. */
  id: number | null;
  /** That token's text (the model's mask string for the mask, `"∅"` for an invalid id). */
  text: string;
  originalId: number;
  originalText: string;
  /** The token is the model's mask. */
  masked: boolean;
  /** The token differs from the original (a uniform draw of itself is unchanged). */
  changed: boolean;
  /** `false` only for a bits pattern past the vocabulary. */
  valid: boolean;
}

export interface CorruptResult {
  family: Family;
  t: number;
  /** How far the process has gone at t: `1 − α_t` (absorbing, uniform), `1 − ᾱ(t)` (gaussian, bits). */
  noise: number;
  /** One per token of the text, tokenized without the model's special tokens. */
  tokens: CorruptedToken[];
}

export interface NoiseSchedule {
  /** The discrete families' schedule: MDLM's log-linear, `1 − α_t = (1 − 10⁻³)·t`. */
  name: "loglinear";
  /** `[t, 1 − α_t]` pairs: the chance a token is masked (absorbing) or resampled (uniform) by t. */
  masked: [number, number][];
  /** `[t, 1 − ᾱ(t)]` pairs, `ᾱ(t) = cos²(πt/2)`: the noise variance of the continuous families. */
  continuous: [number, number][];
}

/**
 * The `name` (and `code`) of every error the package throws.
 *
 * Every public function checks its arguments before anything enters the module: a bad one is
 * `BadTemplate` (the template argument) or `BadInput` (any other argument or option), with a
 * message naming the function, the argument and the value given, e.g.
 * `infill: options.temperature must be a finite number, not NaN`. That covers wrong types
 * (a non-string template, `null` options, a non-function `onStep`), NaN and ±Infinity, numbers
 * that must be whole, unknown fields, getters or Proxies that throw, lone surrogates in any
 * text, and `load({ config, weights })` without a tokenizer. Options are read once, from the
 * object's own enumerable properties; `undefined` leaves one out, `null` does so only for
 * `onStep`, `onProgress`, `signal` and `tokenizer`. `steps()` throws these at once, before
 * iterating; the other methods reject with them.
 */
export type ErrorCode =
  /** A file is missing or malformed, or the server has no such file (HTTP 404, 403…); the message names the file (or URL), field or tensor. */
  | "BadModel"
  /** An argument or option has the wrong type or value; the message names it and the value given. */
  | "BadInput"
  /**
   * The template is not a string, has a lone surrogate (the message gives its index), is over
   * 1 MiB as UTF-8, cannot be read (hole syntax, no holes) or is longer than the model's context.
   */
  | "BadTemplate"
  /** The checkpoint cannot fit in wasm32 memory or the adapter's limits: found from its header, before the download. */
  | "ModelTooLarge"
  /** `device: "webgpu"` where there is no WebGPU or no adapter. */
  | "WebGPUUnavailable"
  | "DeviceLost"
  /** The GPU refused an allocation. */
  | "OutOfMemory"
  /** Any other GPU failure. */
  | "GpuError"
  /**
   * A download failed: no response (no connection, DNS, CORS), the server's trouble (HTTP
   * 5xx, 408, 429), or a download that broke off; the message names the URL. Worth retrying.
   */
  | "NetworkError"
  | "Aborted"
  /** A fill is already running on this model. */
  | "Busy"
  /** Any call on a model after its `dispose()` (`measure` and `schedule` included). */
  | "Disposed"
  /** A bug inside the module (a Rust panic) or the worker, with its message; load the model again. */
  | "InternalError"
  /**
   * The module worker could not start or failed, or the page and worker.js speak different
   * versions of the worker protocol (worker.js from another version of the package).
   */
  | "WorkerError";

/** Every error the package throws (an argument check, the module, a download, the worker) is one. */
export interface UnmaskError extends Error {
  name: ErrorCode;
  code: ErrorCode;
}

/**
 * A loaded model: what `Unmask.load` resolves to, in the page or thread that called it
 * ({@link Unmask}) or in a module worker ({@link RemoteUnmask}, `worker: true`). Both classes
 * implement it, so code written against `Model` takes either. Errors are {@link UnmaskError}s.
 */
export interface Model {
  readonly backend: Backend;
  /** The diffusion family the model was trained for: which strategies fit it ({@link strategies}). */
  readonly family: ModelFamily;
  readonly backendReason: BackendReason;
  /** Bytes read back from the GPU since loading (0 on the CPU); live during a fill (in a worker: as of its last step). */
  readonly readbackBytes: number;
  /** What the model holds (in a worker: as of its load). */
  readonly memory: ModelMemory;
  /** Threads of the CPU path (see `LoadOptions.threads`). */
  readonly threads: number;
  infill(template: string, options?: InfillOptions): Promise<InfillResult>;
  /**
   * How a template lays out on the canvas (tokens with the model's special tokens), without
   * running it. Holes of unknown length as `layout` lays them out, except that a model which
   * ranks lengths measures the longest combination (what must fit the context).
   */
  measure(template: string, options?: LayoutOptions): Promise<Measure>;
  /**
   * The template on the canvas, for drawing it: the user's text verbatim between the holes'
   * positions. Holes of unknown length: see {@link LayoutOptions} and {@link Layout}.
   */
  layout(template: string, options?: LayoutOptions): Promise<Layout>;
  /**
   * The forward (noising) process of a diffusion family on `text`, on this model's vocabulary
   * and embeddings (for teaching: what each family's training input looks like at time t).
   * Works while a fill runs. A bad family or t is a `BadInput` error naming it, and so is a
   * `text` that is not a string, has a lone surrogate or is over 1 MiB as UTF-8.
   */
  corrupt(text: string, options?: CorruptOptions): Promise<CorruptResult>;
  /**
   * The noise levels `corrupt` uses at `points` evenly spaced times in [0, 1] (default 101,
   * rounded and clamped to 2..1000; anything but a finite number is `BadInput`).
   */
  schedule(points?: number): Promise<NoiseSchedule>;
  /**
   * The events of one fill, yielded as each step happens; leaving the loop early stops the fill.
   * A bad argument throws from `steps()` itself (`BadTemplate`, `BadInput`).
   */
  steps(template: string, options?: InfillOptions): AsyncIterable<FillEvent>;
  /**
   * Frees the model now. A model in a worker ends the worker: a call still in flight there
   * fails with `Disposed`; a local fill in flight finishes, then the model is freed.
   */
  dispose(): void;
}

/**
 * Where `load` reads a model from: nothing (the default model), a {@link BundledModel}'s name,
 * a folder URL or path, a hub id, or bytes.
 */
export type ModelSource = BundledModel | string | URL | ModelFiles | null | undefined;

/** A model running in the calling page or thread. */
export declare class Unmask implements Model {
  #private;
  /** Made by `load`. */
  private constructor();
  /**
   * The default model with no source; a bundled model by its name (`"default"`, `"uniform"`,
   * `"gaussian"`, `"bits"`, `"dreamon"`: {@link BundledModel}; the name wins over a folder, which is written
   * `./uniform`); else a
   * folder URL or path, a hub id, or bytes. `owner/name` (no slash at either end) is a hub id;
   * write a folder as `./dir`, `/dir` or `dir/`. With `worker: true` the model runs in a module
   * worker and `load` resolves to a {@link RemoteUnmask}.
   */
  static load(source: ModelSource, options: LoadOptions & { worker: true }): Promise<RemoteUnmask>;
  static load(source?: ModelSource, options?: LoadOptions & { worker?: false }): Promise<Unmask>;
  static load(source?: ModelSource, options?: LoadOptions): Promise<Unmask | RemoteUnmask>;
  readonly backend: Backend;
  readonly backendReason: BackendReason;
  readonly family: ModelFamily;
  readonly readbackBytes: number;
  readonly memory: ModelMemory;
  readonly threads: number;
  infill(template: string, options?: InfillOptions): Promise<InfillResult>;
  measure(template: string, options?: LayoutOptions): Promise<Measure>;
  layout(template: string, options?: LayoutOptions): Promise<Layout>;
  corrupt(text: string, options?: CorruptOptions): Promise<CorruptResult>;
  schedule(points?: number): Promise<NoiseSchedule>;
  steps(template: string, options?: InfillOptions): AsyncIterable<FillEvent>;
  dispose(): void;
}

/**
 * A model running in the package's module worker: what `Unmask.load(source, { worker: true })`
 * resolves to (browsers). The same {@link Model} API; calls cross to the worker and back.
 */
export declare class RemoteUnmask implements Model {
  #private;
  /** Made by `Unmask.load` with `worker: true`. */
  private constructor();
  readonly backend: Backend;
  readonly backendReason: BackendReason;
  readonly family: ModelFamily;
  readonly readbackBytes: number;
  readonly memory: ModelMemory;
  readonly threads: number;
  infill(template: string, options?: InfillOptions): Promise<InfillResult>;
  measure(template: string, options?: LayoutOptions): Promise<Measure>;
  layout(template: string, options?: LayoutOptions): Promise<Layout>;
  corrupt(text: string, options?: CorruptOptions): Promise<CorruptResult>;
  schedule(points?: number): Promise<NoiseSchedule>;
  steps(template: string, options?: InfillOptions): AsyncIterable<FillEvent>;
  dispose(): void;
}
