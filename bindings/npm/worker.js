// The package's module worker: `Unmask.load(source, { worker: true })` starts it and talks to
// it with { id, op, … } messages, so a page runs inference off its main thread without writing
// postMessage itself. Replies: { id, progress } / { id, step } while working, then
// { id, value } or { id, error: { name, message } }.
import { Unmask } from "./index.web.js";

let model = null;
const fills = new Map(); // id -> AbortController of a fill in flight

function reply(msg) {
  self.postMessage(msg);
}

function failure(e) {
  return { name: e?.name ?? "Error", code: e?.code, message: e?.message ?? String(e) };
}

self.onmessage = async ({ data }) => {
  const { id, op } = data;
  try {
    switch (op) {
      case "load": {
        model?.dispose();
        const { source, options } = data;
        model = await Unmask.load(source, {
          ...options,
          worker: false,
          onProgress: (progress) => reply({ id, progress }),
        });
        reply({ id, value: { backend: model.backend, backendReason: model.backendReason } });
        break;
      }
      case "infill": {
        const controller = new AbortController();
        fills.set(id, controller);
        try {
          const value = await model.infill(data.template, {
            ...data.options,
            signal: controller.signal,
            onStep: (step) => reply({ id, step, readbackBytes: model.readbackBytes }),
          });
          reply({ id, value, readbackBytes: model.readbackBytes });
        } finally {
          fills.delete(id);
        }
        break;
      }
      case "measure":
        reply({ id, value: await model.measure(data.template) });
        break;
      case "layout":
        reply({ id, value: await model.layout(data.template) });
        break;
      case "corrupt":
        reply({ id, value: await model.corrupt(data.text, data.options) });
        break;
      case "schedule":
        reply({ id, value: await model.schedule(data.points) });
        break;
      case "abort":
        fills.get(data.target)?.abort();
        break;
      case "dispose":
        model?.dispose();
        model = null;
        reply({ id, value: null });
        break;
      default:
        throw new Error(`unknown op ${op}`);
    }
  } catch (e) {
    reply({ id, error: failure(e) });
  }
};
