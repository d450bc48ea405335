// The models shipped with the page besides the one loaded (the family race's lanes, the forward
// rows' samplers): each loaded by name the first time it is asked for, in its own worker, and
// kept for the session; one fill at a time on each (a race lane and a row sampler asking for
// the same model take turns instead of one failing with Busy).
import { Unmask } from "/unmask/index.web.js";
import { THREADS } from "./ui.js";

/**
 * The backend a bundled model of `family` is loaded for, when the page asks for `device`: the
 * page's choice for every family (the continuous ones have a WGSL step too, `estimate.wgsl` and
 * `vector_update.wgsl`); "auto" skips software adapters as for any model.
 */
export function deviceFor(_family, device) {
  return device;
}

export class BundledModels {
  constructor() {
    this.own = new Map(); // name -> { device, model: Promise<RemoteUnmask> }
    this.turns = new Map(); // name -> the promise of the last fill queued on it
  }

  /** Whether `name` is loaded (or loading) for `device` already. */
  has(name, device) {
    return this.own.get(name)?.device === device;
  }

  /** A bundled model, loaded once per backend choice, in its own worker. */
  load(name, device) {
    let m = this.own.get(name);
    if (m && m.device !== device) {
      m.model.then((x) => x.dispose()).catch(() => {});
      m = null;
    }
    if (!m) {
      const entry = { device, model: Unmask.load(name, { worker: true, device, threads: THREADS }) };
      // a failed load is forgotten, so that the next ask tries again
      entry.model.catch(() => this.own.get(name) === entry && this.own.delete(name));
      this.own.set(name, entry);
      m = entry;
    }
    return m.model;
  }

  /**
   * `fn(model)` once every earlier `use` of `name` has ended; resolves or rejects as `fn` does
   * (a load that fails rejects with the load's error).
   * @template T
   * @param {string} name
   * @param {string} device
   * @param {(model: import("/unmask/index.web.js").Model) => Promise<T>} fn
   * @returns {Promise<T>}
   */
  use(name, device, fn) {
    const before = this.turns.get(name) ?? Promise.resolve();
    const run = before.then(async () => fn(await this.load(name, device)));
    const settled = run.catch(() => {});
    this.turns.set(name, settled);
    settled.then(() => this.turns.get(name) === settled && this.turns.delete(name));
    return run;
  }
}
