// The main-thread side of the worker: `RemoteUnmask`, a `Model` like a local `Unmask`, that
// runs its model in the package's module worker (worker.js) through the worker protocol
// (protocol.js). Weights given as bytes are transferred to the worker, not copied.
// Arguments are checked here, on the page's side, before anything is posted.
import { stepsOf } from "./unmask.js";
import * as args from "./args.js";
import { fromWire, mismatch, namedError, request } from "./protocol.js";

/** @typedef {import("./index.js").Model} Model */
/** @typedef {import("./protocol.js").Values} Values */
/** @typedef {import("./protocol.js").Call} Call */

let next = 0;

/**
 * @typedef {object} Pending
 * @property {(value: any) => void} resolve
 * @property {(error: Error) => void} reject
 * @property {(progress: import("./index.js").ProgressEvent) => void} [onProgress]
 * @property {(step: import("./index.js").FillEvent) => void} [onStep]
 */

class Channel {
  /** @param {Worker} worker */
  constructor(worker) {
    this.worker = worker;
    /** @type {Map<number, Pending>} */
    this.pending = new Map();
    this.readbackBytes = 0;
    worker.onmessage = ({ data }) => {
      const p = this.pending.get(data?.id);
      if (!p) return;
      const wrong = mismatch(data, "reply");
      if (wrong !== null) {
        this.pending.delete(data.id);
        p.reject(wrong);
        return;
      }
      /** @type {import("./protocol.js").Reply} */
      const r = data;
      switch (r.kind) {
        case "progress":
          p.onProgress?.(r.progress);
          return;
        case "step":
          this.readbackBytes = r.readbackBytes;
          p.onStep?.(r.step);
          return;
        case "value":
          if (r.readbackBytes !== undefined) this.readbackBytes = r.readbackBytes;
          this.pending.delete(r.id);
          p.resolve(r.value);
          return;
        case "error":
          this.pending.delete(r.id);
          p.reject(fromWire(r.error));
          return;
      }
    };
    worker.onerror = (e) => this.fail(namedError("WorkerError", e.message ?? "the worker failed"));
  }

  /**
   * Settles every call in flight with `error` (the worker is gone and will not answer).
   * @param {Error} error
   */
  fail(error) {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }

  /**
   * Posts one request; `done` settles with its reply's value.
   * @template {Exclude<Call["op"], "abort">} K
   * @param {Extract<Call, { op: K }>} call
   * @param {Omit<Pending, "resolve" | "reject">} [handlers]
   * @param {Transferable[]} [transfer]
   * @returns {{ id: number, done: Promise<Values[K]> }}
   */
  call(call, handlers = {}, transfer = []) {
    const id = next++;
    return {
      id,
      done: new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject, ...handlers });
        this.worker.postMessage(request(id, call), transfer);
      }),
    };
  }

  /**
   * Stops the fill whose request had the id `target` (no reply).
   * @param {number} target
   */
  abort(target) {
    this.worker.postMessage(request(next++, { op: "abort", target }));
  }
}

const disposed = () => namedError("Disposed", "this model was disposed");
const aborted = () => namedError("Aborted", "the operation was aborted");

/** @implements {Model} */
export class RemoteUnmask {
  #channel;
  #info;
  #disposed = false;

  /** After `dispose` the worker is gone: every call is `Disposed` (it would never be answered). */
  #live() {
    if (this.#disposed) throw disposed();
  }

  /**
   * Made by `load`, not by hand.
   * @param {Channel} channel
   * @param {import("./protocol.js").LoadInfo} info
   */
  constructor(channel, info) {
    this.#channel = channel;
    this.#info = info;
  }

  /**
   * `start` makes the worker (a literal `new Worker(new URL(…))` there lets bundlers see it).
   * `source` and `options` were checked by `Unmask.load`.
   * @param {string | URL | import("./index.js").ModelFiles | undefined} source
   * @param {import("./index.js").LoadOptions} options
   * @param {() => Worker} start
   * @returns {Promise<RemoteUnmask>}
   */
  static async load(source, options, start) {
    const { onProgress, signal, worker: _worker, workerUrl: _url, ...rest } = options;
    if (signal?.aborted) throw aborted();
    const worker = start();
    const channel = new Channel(worker);
    /** @type {ArrayBuffer[]} */
    const transfer = [];
    if (source && typeof source === "object" && "weights" in source) {
      for (const b of [source.weights, source.tokenizer, source.config]) {
        if (typeof b === "object" && b.buffer instanceof ArrayBuffer && !transfer.includes(b.buffer)) transfer.push(b.buffer);
      }
    }
    // URLs do not cross postMessage: strings do
    const { wasmUrl, wasmThreadsUrl, tokenizer, ...plain } = rest;
    const crossing = {
      ...plain,
      wasmUrl: wasmUrl ? String(wasmUrl) : undefined,
      wasmThreadsUrl: wasmThreadsUrl ? String(wasmThreadsUrl) : undefined,
      tokenizer: tokenizer ? String(tokenizer) : undefined,
    };
    const { done } = channel.call(
      { op: "load", source: source instanceof URL ? String(source) : source, options: crossing },
      { onProgress: onProgress ?? undefined },
      transfer,
    );
    try {
      return new RemoteUnmask(channel, await done);
    } catch (e) {
      worker.terminate(); // a worker without a model is of no use
      throw e;
    }
  }

  get backend() {
    return this.#info.backend;
  }

  get backendReason() {
    return this.#info.backendReason;
  }

  get family() {
    return this.#info.family;
  }

  /** What the model held in its worker when it loaded (wasm memory, GPU weight buffers). */
  get memory() {
    return this.#info.memory;
  }

  get threads() {
    return this.#info.backendReason.threads?.count ?? 1;
  }

  /** As the worker last reported it (with each step and at the end of a fill). */
  get readbackBytes() {
    return this.#channel.readbackBytes;
  }

  /**
   * @param {string} template
   * @param {import("./index.js").InfillOptions} [options]
   * @returns {Promise<import("./index.js").InfillResult>}
   */
  async infill(template, options) {
    args.template("infill", template);
    // the worker's own model applies the defaults (candidates with onStep) on its side
    const { onStep, signal, ...request } = args.infillOptions("infill", options);
    this.#live();
    if (signal?.aborted) throw aborted();
    // an exception from onStep ends the fill, which rejects with it, as on the page
    /** @type {{ error: unknown } | null} */
    let thrown = null;
    const { id, done } = this.#channel.call(
      { op: "infill", template, options: request },
      {
        onStep: (step) => {
          if (thrown !== null || !onStep) return;
          try {
            onStep(step);
          } catch (error) {
            thrown = { error };
            this.#channel.abort(id);
          }
        },
      },
    );
    const abort = () => this.#channel.abort(id);
    signal?.addEventListener("abort", abort, { once: true });
    let result;
    try {
      result = await done;
    } catch (e) {
      if (thrown === null) throw e;
    } finally {
      signal?.removeEventListener("abort", abort);
    }
    if (thrown !== null) throw /** @type {{ error: unknown }} */ (thrown).error;
    return /** @type {import("./index.js").InfillResult} */ (result);
  }

  /**
   * @param {string} template
   * @param {import("./index.js").LayoutOptions} [options]
   * @returns {Promise<import("./index.js").Measure>}
   */
  async measure(template, options) {
    args.template("measure", template);
    const checked = args.layoutOptions("measure", options);
    this.#live();
    return this.#channel.call({ op: "measure", template, options: checked }).done;
  }

  /**
   * @param {string} template
   * @param {import("./index.js").LayoutOptions} [options]
   * @returns {Promise<import("./index.js").Layout>}
   */
  async layout(template, options) {
    args.template("layout", template);
    const checked = args.layoutOptions("layout", options);
    this.#live();
    return this.#channel.call({ op: "layout", template, options: checked }).done;
  }

  /**
   * @param {string} text
   * @param {import("./index.js").CorruptOptions} [options]
   * @returns {Promise<import("./index.js").CorruptResult>}
   */
  async corrupt(text, options) {
    args.corruptText(text);
    const checked = args.corruptOptions(options);
    this.#live();
    return this.#channel.call({ op: "corrupt", text, options: checked }).done;
  }

  /**
   * @param {number} [points]
   * @returns {Promise<import("./index.js").NoiseSchedule>}
   */
  async schedule(points = 101) {
    args.schedulePoints(points);
    this.#live();
    return this.#channel.call({ op: "schedule", points }).done;
  }

  /**
   * @param {string} template
   * @param {import("./index.js").InfillOptions} [options]
   * @returns {AsyncIterable<import("./index.js").FillEvent>}
   */
  steps(template, options) {
    return stepsOf(this, template, options);
  }

  /** Frees the model and ends the worker; a fill or load still in flight fails with `Disposed`. */
  dispose() {
    this.#disposed = true;
    this.#channel.worker.terminate();
    this.#channel.fail(disposed());
  }
}
