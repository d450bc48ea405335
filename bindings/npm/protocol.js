// The package's wire formats, in one module that every side imports:
// - the error codec: how an error is made (`namedError`), how it crosses a boundary as
//   `{ code, message }` (`toWire`) and how it is made again on the other side (`fromWire`);
//   the module's errors (lib.rs `js_error`), the argument checks (args.js), the package's own
//   (unmask.js) and the worker's replies (worker.js → remote.js) all go through it;
// - the worker protocol between the page (remote.js) and the package's module worker
//   (worker.js): the ops, the shape of each request and reply, and a version both sides check.

/** @typedef {import("./index.js").ErrorCode} ErrorCode */
/** @typedef {import("./index.js").UnmaskError} UnmaskError */

/** The `name` (and `code`) of every error the package throws (index.d.ts's `ErrorCode`). */
export const CODES = new Set(
  /** @type {const} */ ([
    "BadModel",
    "BadInput",
    "BadTemplate",
    "ModelTooLarge",
    "WebGPUUnavailable",
    "DeviceLost",
    "OutOfMemory",
    "GpuError",
    "NetworkError",
    "Aborted",
    "Busy",
    "Disposed",
    "InternalError",
    "WorkerError",
  ]),
);

/**
 * An `Error` whose `name` and `code` are the stable kind callers switch on.
 * @param {ErrorCode} code
 * @param {string} message
 * @returns {UnmaskError}
 */
export function namedError(code, message) {
  const e = /** @type {UnmaskError} */ (new Error(message));
  e.name = code;
  e.code = code;
  return e;
}

/**
 * Whether `e` is one of the package's errors: an `Error` with an {@link ErrorCode} as `code`.
 * @param {unknown} e
 * @returns {e is UnmaskError}
 */
export function isNamed(e) {
  return e instanceof Error && CODES.has(/** @type {any} */ (e).code);
}

/** @typedef {{ code: ErrorCode, message: string }} WireError An error as it crosses a boundary. */

/**
 * An error as it crosses a boundary. The package's errors keep their code and message; anything
 * else thrown where only the package's code runs (a worker) is a bug there: `InternalError`,
 * with what it said.
 * @param {unknown} e
 * @returns {WireError}
 */
export function toWire(e) {
  if (isNamed(e)) return { code: e.code, message: e.message };
  const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return { code: "InternalError", message: `unmask failed: ${what} (this is a bug)` };
}

/**
 * The error a `{ code, message }` stands for, on this side of the boundary.
 * @param {WireError} w
 * @returns {UnmaskError}
 */
export function fromWire(w) {
  return namedError(CODES.has(w.code) ? w.code : "InternalError", String(w.message));
}

// ---------- the worker protocol ----------

/**
 * Both sides put it in every message and refuse one with another version (a worker.js cached
 * from an older package, say) with a `WorkerError` that names the two. 2: `load`'s reply
 * carries the model's `family`. 3: `measure` and `layout` carry their `options` (how holes of
 * unknown length are laid out).
 */
export const PROTOCOL_VERSION = 3;

/** Every op the page may ask of the worker. */
export const OPS = /** @type {const} */ (["load", "infill", "measure", "layout", "corrupt", "schedule", "abort"]);

/**
 * What the page sends, by op. `load` comes first and once: the worker holds one model (its
 * `source` a bundled model's name, a folder, or bytes).
 * `abort` stops the fill whose request had the id `target`; it gets no reply.
 * @typedef {{ op: "load", source: string | import("./index.js").ModelFiles | undefined, options: WorkerLoadOptions }
 *   | { op: "infill", template: string, options: Omit<import("./index.js").InfillOptions, "onStep" | "signal"> }
 *   | { op: "measure", template: string, options?: import("./index.js").LayoutOptions }
 *   | { op: "layout", template: string, options?: import("./index.js").LayoutOptions }
 *   | { op: "corrupt", text: string, options: import("./index.js").CorruptOptions }
 *   | { op: "schedule", points: number }
 *   | { op: "abort", target: number }} Call
 */

/**
 * `load`'s options as they cross: no callbacks, no signal, URLs as strings.
 * @typedef {Omit<import("./index.js").LoadOptions, "onProgress" | "signal" | "worker" | "workerUrl" | "wasmUrl" | "wasmThreadsUrl" | "tokenizer">
 *   & { wasmUrl?: string, wasmThreadsUrl?: string, tokenizer?: string }} WorkerLoadOptions
 */

/**
 * What each op's request resolves to.
 * @typedef {{
 *   load: LoadInfo,
 *   infill: import("./index.js").InfillResult,
 *   measure: import("./index.js").Measure,
 *   layout: import("./index.js").Layout,
 *   corrupt: import("./index.js").CorruptResult,
 *   schedule: import("./index.js").NoiseSchedule,
 *   abort: never,
 * }} Values
 */

/** @typedef {{ backend: import("./index.js").Backend, backendReason: import("./index.js").BackendReason, family: import("./index.js").ModelFamily, memory: import("./index.js").ModelMemory }} LoadInfo */

/** @typedef {Call & { v: number, id: number }} Request */

/**
 * What the worker sends back, told apart by `kind`: any number of `progress` (a load) or `step`
 * (a fill) replies, then one `value` or one `error`.
 * @typedef {{ v: number, id: number } & (
 *   | { kind: "progress", progress: import("./index.js").ProgressEvent }
 *   | { kind: "step", step: import("./index.js").FillEvent, readbackBytes: number }
 *   | { kind: "value", value: unknown, readbackBytes?: number }
 *   | { kind: "error", error: WireError }
 * )} Reply
 */

/**
 * @param {number} id
 * @param {Call} call
 * @returns {Request}
 */
export function request(id, call) {
  return { v: PROTOCOL_VERSION, id, ...call };
}

/** The worker's replies. */
export const reply = {
  /**
   * @param {number} id
   * @param {import("./index.js").ProgressEvent} progress
   * @returns {Reply}
   */
  progress: (id, progress) => ({ v: PROTOCOL_VERSION, id, kind: "progress", progress }),
  /**
   * @param {number} id
   * @param {import("./index.js").FillEvent} step
   * @param {number} readbackBytes
   * @returns {Reply}
   */
  step: (id, step, readbackBytes) => ({ v: PROTOCOL_VERSION, id, kind: "step", step, readbackBytes }),
  /**
   * @param {number} id
   * @param {unknown} value
   * @param {number} [readbackBytes]
   * @returns {Reply}
   */
  value: (id, value, readbackBytes) =>
    readbackBytes === undefined
      ? { v: PROTOCOL_VERSION, id, kind: "value", value }
      : { v: PROTOCOL_VERSION, id, kind: "value", value, readbackBytes },
  /**
   * @param {number} id
   * @param {unknown} e
   * @returns {Reply}
   */
  error: (id, e) => ({ v: PROTOCOL_VERSION, id, kind: "error", error: toWire(e) }),
};

/**
 * Why a message cannot be taken as this version's (`null` when it can): another version, or
 * not a message of the protocol at all. Both sides ask it of what they receive.
 * @param {unknown} data
 * @param {"request" | "reply"} what
 * @returns {UnmaskError | null}
 */
export function mismatch(data, what) {
  const v = data !== null && typeof data === "object" ? /** @type {any} */ (data).v : undefined;
  if (v === PROTOCOL_VERSION) return null;
  const from = what === "request" ? "the page" : "the worker";
  return namedError(
    "WorkerError",
    `${from} speaks worker protocol ${v === undefined ? "(none)" : String(v)}, this side ${PROTOCOL_VERSION}: ` +
      "the page and worker.js come from different versions of the package",
  );
}
