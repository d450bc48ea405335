/** Where a model runs: a hardware WebGPU adapter when there is one, else the WASM CPU path. */
export type Device = "auto" | "webgpu" | "wasm";

export interface LoadOptions {
  device?: Device;
  /** GPU weight storage; arithmetic is f32 either way. */
  weights?: "f16" | "f32";
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
  /** Where the .wasm is, when a bundler moved it. */
  wasmUrl?: string | URL;
  /** Keep downloads in the Cache API (browsers; default true). */
  cache?: boolean;
  /**
   * Run the model in a module worker (browsers): the returned object has the same API and the
   * page's main thread stays free. Bytes given as the source are transferred, not copied.
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
   * worker decides; Node always runs one.
   */
  threads?: "auto" | number;
}

/** Whether every file of a source (nothing: the default model) is in the cache. */
export declare function isCached(source?: string | URL): Promise<boolean>;
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
  /** The weights are in: the model is built and, on WebGPU, uploaded. */
  | { phase: "compile"; backend: "webgpu" | "wasm"; parameters: number | null }
  /** A first pass compiles the shaders (WebGPU). */
  | { phase: "warmup"; backend: "webgpu" | "wasm" }
  | { phase: "ready"; backend: "webgpu" | "wasm" };

/** The bytes of a model's Hugging Face files. */
export interface ModelFiles {
  config: string | Uint8Array;
  weights: Uint8Array;
  tokenizer: Uint8Array;
}

/** The same options as `unmask infill`'s flags. */
export interface InfillOptions {
  strategy?:
    | "ancestral"
    | "first-hitting"
    | "top-prob"
    | "margin"
    | "entropy"
    | "threshold"
    | `threshold:${number}`
    | "mask-predict";
  steps?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  schedule?: "loglinear" | "cosine" | "linear";
  blockLength?: number;
  cfg?: number;
  force?: { hole: number; text: string }[];
  cache?: boolean;
  seed?: number;
  /** How many of each committed position's most likely tokens a step event lists (at most 16). */
  candidates?: number;
  /** Sees every step as a `--trace` line, then the done event; an exception it throws ends the fill. */
  onStep?: (event: StepEvent | DoneEvent) => void;
  /** Checked before every step; the fill gives the event loop a turn there, so it can fire. */
  signal?: AbortSignal;
}

/** One denoising step, as a `--trace` line. */
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
}

export interface DoneEvent {
  done: true;
  text: string;
  steps: number;
  nfe: number;
  ms: number;
}

export interface InfillResult {
  text: string;
  holes: number;
  steps: number;
  nfe: number;
  ms: number;
}

export interface BackendReason {
  backend: "cpu" | "gpu";
  adapter: string | null;
  reason: { kind: "requested" | "hardware-adapter" | "software-adapter-skipped" | "no-adapter" | "not-built"; error?: string };
  /** The CPU path's thread pool and why it has that size. */
  threads: {
    count: number;
    reason: "requested" | "hardware-concurrency" | "single-core" | "not-cross-origin-isolated" | "main-thread" | "threads-failed" | "node";
  };
}

/** The `name` (and `code`) of every error the package throws. */
export type ErrorCode =
  /** A file is missing or malformed; the message names the file, field or tensor. */
  | "BadModel"
  /** An option has the wrong type or value; the message names it. */
  | "BadInput"
  /** The template cannot be read (hole syntax, no holes) or is longer than the model's context. */
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
  | "Aborted"
  /** A fill is already running on this model. */
  | "Busy"
  | "Disposed"
  /** A bug inside the module (a Rust panic), with its message; load the model again. */
  | "InternalError"
  | "WorkerError";

/** Errors are `Error`s with a stable `name` and `code` (an {@link ErrorCode}) and the engine's message. */
export declare class Unmask {
  /**
   * The default model with no source; else a folder URL or path, a hub id, or bytes. `owner/name`
   * (no slash at either end) is a hub id; write a folder as `./dir`, `/dir` or `dir/`.
   */
  static load(source?: string | URL | ModelFiles, options?: LoadOptions): Promise<Unmask>;
  readonly backend: "webgpu" | "wasm";
  readonly backendReason: BackendReason;
  /** Bytes read back from the GPU since loading (0 on the CPU); live during a fill. */
  readonly readbackBytes: number;
  /** Threads of the CPU path (see `LoadOptions.threads`). */
  readonly threads: number;
  infill(template: string, options?: InfillOptions): Promise<InfillResult>;
  /** How a template lays out on the canvas (tokens with the model's special tokens), without running it. */
  measure(template: string): Promise<{ tokens: number; holes: number; maxTokens: number }>;
  /** The events of one fill, yielded as each step happens; leaving the loop early stops the fill. */
  steps(template: string, options?: InfillOptions): AsyncIterable<StepEvent | DoneEvent>;
  dispose(): void;
}
