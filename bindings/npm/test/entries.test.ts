// `tsc --noEmit` (bindings/npm/tsconfig.json): the entry points' JS, as tsc reads it from its
// JSDoc, exports what index.d.ts declares, with the declared signatures. Nothing here runs.
import * as web from "../index.web.js";
import * as node from "../index.node.js";
import type * as Declared from "../index.js";

/** The functions, exactly as declared. */
type Functions = Pick<typeof Declared, "strategies" | "reapply" | "isCached" | "clearCache">;
export const webFunctions: Functions = web;
export const nodeFunctions: Functions = node;

/** No declared export is missing from either entry. */
type Missing<T> = Exclude<keyof typeof Declared, keyof T>;
export const webHasAll: [Missing<typeof web>] extends [never] ? true : Missing<typeof web> = true;
export const nodeHasAll: [Missing<typeof node>] extends [never] ? true : Missing<typeof node> = true;

/** `load` resolves as the declared overloads say, and both classes' instances are Models. */
type Loads = {
  local: (source?: Declared.ModelSource, options?: Declared.LoadOptions & { worker?: false }) => Promise<Declared.Model>;
  worker: (source: Declared.ModelSource, options: Declared.LoadOptions & { worker: true }) => Promise<Declared.Model>;
};
export const webLoads: Loads = { local: web.Unmask.load, worker: web.Unmask.load };
export const nodeLoads: Loads = { local: node.Unmask.load, worker: node.Unmask.load };
export type Instances = [InstanceType<typeof web.Unmask>, InstanceType<typeof node.Unmask>, web.RemoteUnmask] extends Declared.Model[] ? true : never;
export const instancesAreModels: Instances = true;
