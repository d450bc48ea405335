// The package's module worker: `Unmask.load(source, { worker: true })` starts it and talks to
// it in the worker protocol (protocol.js), so a page runs inference off its main thread without
// writing postMessage itself. One `load` first, then any number of the other ops; a request
// this worker cannot take (another protocol version, an unknown op, an op before `load`, a
// second `load`) is answered with a `WorkerError`, never left unanswered.
import { Unmask } from "./index.web.js";
import { namedError, mismatch, reply, OPS } from "./protocol.js";

/** @typedef {import("./protocol.js").Request} Request */

/**
 * This worker's global scope (the DOM's types, which the package is checked with, call it a window).
 * @type {{ postMessage(msg: unknown): void, onmessage: ((e: MessageEvent) => void) | null }}
 */
const scope = /** @type {any} */ (self);

/** @type {InstanceType<typeof Unmask> | null} */
let model = null;
let loading = false;
/** @type {Map<number, AbortController>} id -> the AbortController of a fill in flight */
const fills = new Map();

/** @param {import("./protocol.js").Reply} msg */
function post(msg) {
  scope.postMessage(msg);
}

/** The model, once loaded. */
function loaded() {
  if (model === null) throw namedError("WorkerError", "this worker has no model yet: the page must send `load` first");
  return model;
}

/**
 * @param {Request} data
 * @returns {Promise<void>}
 */
async function handle(data) {
  const { id } = data;
  switch (data.op) {
    case "load": {
      if (model !== null || loading) throw namedError("WorkerError", "this worker already holds a model: one `load` per worker");
      loading = true;
      try {
        model = await Unmask.load(data.source, {
          ...data.options,
          worker: false,
          onProgress: (progress) => post(reply.progress(id, progress)),
        });
      } finally {
        loading = false;
      }
      const m = model;
      post(reply.value(id, { backend: m.backend, backendReason: m.backendReason, family: m.family, memory: m.memory }));
      return;
    }
    case "infill": {
      const m = loaded();
      const controller = new AbortController();
      fills.set(id, controller);
      try {
        const value = await m.infill(data.template, {
          ...data.options,
          signal: controller.signal,
          onStep: (step) => post(reply.step(id, step, m.readbackBytes)),
        });
        post(reply.value(id, value, m.readbackBytes));
      } finally {
        fills.delete(id);
      }
      return;
    }
    case "measure":
      post(reply.value(id, await loaded().measure(data.template, data.options)));
      return;
    case "layout":
      post(reply.value(id, await loaded().layout(data.template, data.options)));
      return;
    case "corrupt":
      post(reply.value(id, await loaded().corrupt(data.text, data.options)));
      return;
    case "schedule":
      post(reply.value(id, await loaded().schedule(data.points)));
      return;
    case "abort":
      fills.get(data.target)?.abort();
      return;
    default: {
      /** @type {never} */
      const unknown = data;
      const op = /** @type {any} */ (unknown).op;
      throw namedError("WorkerError", `unknown op ${JSON.stringify(op)}; this worker takes ${OPS.join(", ")}`);
    }
  }
}

scope.onmessage = async ({ data }) => {
  const id = typeof data?.id === "number" ? data.id : -1;
  const wrong = mismatch(data, "request");
  if (wrong !== null) return post(reply.error(id, wrong));
  try {
    await handle(/** @type {Request} */ (data));
  } catch (e) {
    post(reply.error(id, e));
  }
};
