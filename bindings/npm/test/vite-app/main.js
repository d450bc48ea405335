// A Vite app that imports the package by name, as a user's would; the browser test opens its
// production build and reads window.result.
import { Unmask } from "unmask";

try {
  const model = await Unmask.load(undefined, { device: "wasm" });
  const r = await model.infill("The [MASK*2] sat.", { seed: 3 });
  const worker = await Unmask.load(undefined, { device: "wasm", worker: true });
  const w = await worker.infill("The [MASK*2] sat.", { seed: 3 });
  worker.dispose();
  window.result = { text: r.text, workerText: w.text, backend: model.backend };
} catch (e) {
  window.result = { error: `${e.name}: ${e.message}` };
}
