// The main-thread side of the worker: a proxy with the same API as a local model. Weights
// given as bytes are transferred to the worker, not copied.
// Arguments are checked here, on the page's side, before anything is posted.
import { stepsOf } from "./unmask.js";
import * as args from "./args.js";

let next = 0;

function rebuild(error) {
  const e = new Error(error.message);
  e.name = error.name;
  e.code = error.code ?? error.name;
  return e;
}

class Channel {
  constructor(worker) {
    this.worker = worker;
    this.pending = new Map();
    this.readbackBytes = 0;
    worker.onmessage = ({ data }) => {
      const p = this.pending.get(data.id);
      if (!p) return;
      if ("readbackBytes" in data) this.readbackBytes = data.readbackBytes;
      if ("progress" in data) p.onProgress?.(data.progress);
      else if ("step" in data) p.onStep?.(data.step);
      else {
        this.pending.delete(data.id);
        if (data.error) p.reject(rebuild(data.error));
        else p.resolve(data.value);
      }
    };
    worker.onerror = (e) => this.fail({ name: "WorkerError", message: e.message ?? "the worker failed" });
  }

  /** Settles every call in flight with `error` (the worker is gone and will not answer). */
  fail(error) {
    for (const p of this.pending.values()) p.reject(rebuild(error));
    this.pending.clear();
  }

  call(message, handlers = {}, transfer = []) {
    const id = next++;
    return {
      id,
      done: new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject, ...handlers });
        this.worker.postMessage({ id, ...message }, transfer);
      }),
    };
  }
}

export class RemoteUnmask {
  #channel;
  #info;
  #disposed = false;

  /** After `dispose` the worker is gone: every call is `Disposed` (it would never be answered). */
  #live() {
    if (this.#disposed) throw rebuild({ name: "Disposed", message: "this model was disposed" });
  }

  constructor(channel, info) {
    this.#channel = channel;
    this.#info = info;
  }

  /**
   * `start` makes the worker (a literal `new Worker(new URL(…))` there lets bundlers see it).
   * `source` and `options` were checked by `Unmask.load`.
   */
  static async load(source, options, start) {
    const { onProgress, signal, worker: _worker, workerUrl: _url, ...rest } = options;
    if (signal?.aborted) throw rebuild({ name: "Aborted", message: "the operation was aborted" });
    const worker = start();
    const channel = new Channel(worker);
    const transfer = [];
    if (source && typeof source === "object" && "weights" in source) {
      for (const b of [source.weights, source.tokenizer, source.config]) {
        if (b?.buffer instanceof ArrayBuffer && !transfer.includes(b.buffer)) transfer.push(b.buffer);
      }
    }
    // URLs do not cross postMessage: strings do
    const wasmUrl = rest.wasmUrl ? String(rest.wasmUrl) : undefined;
    const wasmThreadsUrl = rest.wasmThreadsUrl ? String(rest.wasmThreadsUrl) : undefined;
    const tokenizer = rest.tokenizer ? String(rest.tokenizer) : undefined;
    const { done } = channel.call({ op: "load", source: source instanceof URL ? String(source) : source, options: { ...rest, wasmUrl, wasmThreadsUrl, tokenizer } }, { onProgress }, transfer);
    const info = await done;
    return new RemoteUnmask(channel, info);
  }

  get backend() {
    return this.#info.backend;
  }

  get backendReason() {
    return this.#info.backendReason;
  }

  get threads() {
    return this.#info.backendReason.threads?.count ?? 1;
  }

  /** As the worker last reported it (with each step and at the end of a fill). */
  get readbackBytes() {
    return this.#channel.readbackBytes;
  }

  async infill(template, options) {
    args.template("infill", template);
    // the worker's own model applies the defaults (candidates with onStep) on its side
    const { onStep, signal, ...request } = args.infillOptions("infill", options);
    this.#live();
    if (signal?.aborted) throw rebuild({ name: "Aborted", message: "the operation was aborted" });
    const { id, done } = this.#channel.call({ op: "infill", template, options: request }, { onStep });
    const abort = () => this.#channel.worker.postMessage({ id: next++, op: "abort", target: id });
    signal?.addEventListener("abort", abort, { once: true });
    try {
      return await done;
    } finally {
      signal?.removeEventListener("abort", abort);
    }
  }

  async measure(template) {
    args.template("measure", template);
    this.#live();
    return this.#channel.call({ op: "measure", template }).done;
  }

  async layout(template) {
    args.template("layout", template);
    this.#live();
    return this.#channel.call({ op: "layout", template }).done;
  }

  async corrupt(text, options) {
    args.corruptText(text);
    const checked = args.corruptOptions(options);
    this.#live();
    return this.#channel.call({ op: "corrupt", text, options: checked }).done;
  }

  async schedule(points = 101) {
    args.schedulePoints(points);
    this.#live();
    return this.#channel.call({ op: "schedule", points }).done;
  }

  steps(template, options) {
    return stepsOf(this, template, options);
  }

  /** Frees the model and ends the worker; a fill or load still in flight fails with `Disposed`. */
  dispose() {
    this.#disposed = true;
    this.#channel.worker.terminate();
    this.#channel.fail({ name: "Disposed", message: "this model was disposed" });
  }
}
