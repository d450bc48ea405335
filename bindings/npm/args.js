// The package's argument checks, run by every public function before anything enters the
// module, and its typed errors. A bad argument is an `Error` named `BadTemplate` (the template
// argument) or `BadInput` (anything else) whose message names the function, the argument and
// the value given: `infill: options.temperature must be a finite number, not NaN`. Checked
// options come back as a fresh plain object holding only the checked values, so what reaches
// the module (through JSON) is exactly what was checked: no getter runs twice, no NaN or
// Infinity turns into JSON's null (and so into a default), no BigInt or Symbol reaches
// `JSON.stringify`.

import { namedError } from "./protocol.js";

/** @typedef {import("./protocol.js").ErrorCode} ErrorCode */
/** @typedef {import("./index.js").InfillOptions} InfillOptions */
/** @typedef {import("./index.js").LoadOptions} LoadOptions */
/** @typedef {import("./index.js").CorruptOptions} CorruptOptions */
/** @typedef {import("./index.js").ModelFiles} ModelFiles */

/**
 * One checker per kind of option: `(fn, name, value)` gives the value to pass on (`undefined`:
 * leave it out) or throws a `BadInput` naming `fn` and `name`.
 * @template T
 * @typedef {(fn: string, name: string, v: unknown) => T} Checker
 */

/** The longest template (and `corrupt` text) read, in UTF-8 bytes: the engine's own limit. */
export const MAX_TEXT_BYTES = 1 << 20;

/** The most threads `threads` may ask for. */
export const MAX_THREADS = 256;

const MAX_WHOLE = Number.MAX_SAFE_INTEGER;

/**
 * A value as a message shows it, whatever it is: never throws, never runs a getter of it.
 * @param {unknown} v
 * @returns {string}
 */
export function show(v) {
  try {
    switch (typeof v) {
      case "string":
        return v.length > 60 ? `${JSON.stringify(v.slice(0, 40)).slice(0, -1)}…" (${v.length} characters)` : JSON.stringify(v);
      case "number":
        return Object.is(v, -0) ? "-0" : String(v);
      case "bigint": {
        const s = `${v}n`;
        return s.length > 40 ? `a BigInt of ${s.length - 1} digits` : s;
      }
      case "symbol": {
        const s = v.toString();
        return s.length > 60 ? `${s.slice(0, 40)}…)` : s;
      }
      case "undefined":
      case "boolean":
        return String(v);
      case "function":
        return "a function";
      default:
        break;
    }
    if (v === null) return "null";
    if (Array.isArray(v)) return "an array";
    if (ArrayBuffer.isView(v)) return `a ${Object.prototype.toString.call(v).slice(8, -1)} of ${v.byteLength} bytes`;
    if (typeof URL !== "undefined" && v instanceof URL) return `the URL ${show(v.href)}`;
    const proto = Object.getPrototypeOf(v);
    if (proto === null) return "an object with no prototype";
    const name = proto.constructor?.name;
    return typeof name === "string" && name !== "" && name !== "Object" ? `a ${name}` : "an object";
  } catch {
    return "an unreadable value";
  }
}

/**
 * What an exception says, whatever was thrown.
 * @param {unknown} e
 */
function why(e) {
  try {
    if (e instanceof Error) return String(e.message);
  } catch {
    // a Proxy or an Error whose message cannot be read: fall through
  }
  return show(e);
}

/**
 * @param {string} fn
 * @param {string} what
 * @param {string} expected
 * @param {unknown} v
 */
function bad(fn, what, expected, v) {
  return namedError("BadInput", `${fn}: ${what} must be ${expected}, not ${show(v)}`);
}

/**
 * `options.key`, or `options["odd key"]`, as a message names a field.
 * @param {string} path
 * @param {string} key
 */
function field(path, key) {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${show(key)}]`;
}

/**
 * The index of the first lone surrogate in `s`, or -1 (well-formed pairs are one code point in /u).
 * @param {string} s
 */
function loneSurrogate(s) {
  const m = /\p{Surrogate}/u.exec(s);
  return m === null ? -1 : m.index;
}

/** @param {string} s */
function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i += 1;
    } else n += 3;
  }
  return n;
}

/**
 * @param {string} s
 * @param {number} at
 */
function unit(s, at) {
  return `\\u${s.charCodeAt(at).toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * A string of valid Unicode (no lone surrogate, which UTF-8 cannot carry), else `code`.
 * @param {string} fn
 * @param {string} what
 * @param {string} s
 * @param {ErrorCode} code
 */
function wellFormed(fn, what, s, code) {
  const at = loneSurrogate(s);
  if (at >= 0) {
    throw namedError(
      code,
      `${fn}: ${what} ${show(s)} has a lone surrogate ${unit(s, at)} at index ${at}: text must be valid Unicode ` +
        "(half of a surrogate pair, e.g. an emoji cut in two, cannot become UTF-8)",
    );
  }
}

/**
 * A text the module reads whole: a string, valid Unicode, at most 1 MiB as UTF-8.
 * @param {string} fn
 * @param {string} what
 * @param {unknown} v
 * @param {ErrorCode} code
 * @returns {string}
 */
function text(fn, what, v, code) {
  if (typeof v !== "string") throw namedError(code, `${fn}: ${what} must be a string, not ${show(v)}`);
  wellFormed(fn, what, v, code);
  if (v.length * 3 > MAX_TEXT_BYTES) {
    const bytes = utf8Length(v);
    if (bytes > MAX_TEXT_BYTES) {
      throw namedError(code, `${fn}: ${what} is ${bytes} bytes; the most unmask reads is ${MAX_TEXT_BYTES} bytes (1 MiB)`);
    }
  }
  return v;
}

/**
 * `infill`, `steps`, `measure`, `layout`: the template, else `BadTemplate`.
 * @param {string} fn
 * @param {unknown} v
 */
export function template(fn, v) {
  return text(fn, "template", v, "BadTemplate");
}

/**
 * `corrupt`'s text, else `BadInput`.
 * @param {unknown} v
 */
export function corruptText(v) {
  return text("corrupt", "text", v, "BadInput");
}

/**
 * The own enumerable keys of an options object; `undefined` is no options (`[]`), anything
 * that is not a plain object (null, an array, a function, a primitive) is `BadInput`, and so
 * is an object whose keys cannot be listed (a Proxy whose traps throw).
 * @param {string} fn
 * @param {string} what
 * @param {unknown} v
 * @returns {string[]}
 */
function keysOf(fn, what, v) {
  if (v === undefined) return [];
  if (v === null || typeof v !== "object") throw bad(fn, what, "an object (or left out)", v);
  try {
    if (Array.isArray(v)) throw bad(fn, what, "an object (or left out)", v);
    return Object.keys(v);
  } catch (e) {
    if (/** @type {any} */ (e)?.code === "BadInput") throw e;
    throw namedError("BadInput", `${fn}: ${what} could not be read (${why(e)})`);
  }
}

/**
 * `v[key]`, a getter's or Proxy's exception as `BadInput` naming it.
 * @param {string} fn
 * @param {string} what
 * @param {any} v
 * @param {string | number} key
 * @returns {unknown}
 */
function get(fn, what, v, key) {
  try {
    return v[key];
  } catch (e) {
    throw namedError("BadInput", `${fn}: ${field(what, String(key))} could not be read (${why(e)})`);
  }
}

/**
 * `v instanceof URL`, false where asking throws (a revoked Proxy).
 * @param {unknown} v
 * @returns {v is URL}
 */
function isURL(v) {
  try {
    return typeof URL !== "undefined" && v instanceof URL;
  } catch {
    return false;
  }
}

/** @type {(v: unknown) => v is number} */
const isWhole = (v) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= MAX_WHOLE;

// One checker per kind of option (a Checker): (fn, name, value) => the value to pass on, or throws.
/** @type {Checker<number>} */
const finite = (fn, name, v) => {
  if (typeof v !== "number" || !Number.isFinite(v)) throw bad(fn, name, "a finite number", v);
  return v;
};
/** @type {Checker<number>} */
const whole = (fn, name, v) => {
  if (!isWhole(v)) throw bad(fn, name, "a whole number from 0 to 2^53 − 1", v);
  return v;
};
/** @type {Checker<number>} */
const atLeastOne = (fn, name, v) => {
  if (!isWhole(v) || v < 1) throw bad(fn, name, "a whole number from 1 to 2^53 − 1", v);
  return v;
};
/** @type {Checker<boolean>} */
const bool = (fn, name, v) => {
  if (typeof v !== "boolean") throw bad(fn, name, "true or false", v);
  return v;
};
/** @type {Checker<string>} A name (a strategy, a schedule, a family): a short string of valid Unicode. */
const string = (fn, name, v) => {
  if (typeof v !== "string" || v.length > 1000) throw bad(fn, name, "a string (of at most 1000 characters)", v);
  wellFormed(fn, name, v, "BadInput");
  return v;
};
/**
 * @template {string} T
 * @param {T[]} values
 * @returns {Checker<T>}
 */
const oneOf =
  (...values) =>
  (fn, name, v) => {
    if (!values.includes(/** @type {T} */ (v))) throw bad(fn, name, values.map((x) => `'${x}'`).join(", ").replace(/, ([^,]*)$/, " or $1"), v);
    return /** @type {T} */ (v);
  };
/** @type {Checker<((...a: any[]) => any) | undefined>} A callback; null is none. */
const callback = (fn, name, v) => {
  if (v === null) return undefined;
  if (typeof v !== "function") throw bad(fn, name, "a function (or left out)", v);
  return /** @type {(...a: any[]) => any} */ (v);
};
/** @type {Checker<AbortSignal | undefined>} An AbortSignal (any realm's: it is read as one, not tested with instanceof); null is none. */
const signal = (fn, name, v) => {
  if (v === null) return undefined;
  const s = /** @type {any} */ (v);
  let ok = false;
  try {
    ok = typeof s === "object" && typeof s.aborted === "boolean" && typeof s.addEventListener === "function" && typeof s.removeEventListener === "function";
  } catch {
    ok = false;
  }
  if (!ok) throw bad(fn, name, "an AbortSignal (or left out)", v);
  return /** @type {AbortSignal} */ (v);
};
/** @type {Checker<string | URL>} A folder or file location: a non-empty string or a URL. */
const location = (fn, name, v) => {
  if (typeof v === "string" && v !== "") return v;
  if (isURL(v)) return v;
  throw bad(fn, name, "a URL or a non-empty string", v);
};
/** @type {Checker<string | URL | undefined>} As `location`; null is none. */
const optionalLocation = (fn, name, v) => (v === null ? undefined : location(fn, name, v));
/** @type {Checker<"auto" | number>} */
const threads = (fn, name, v) => {
  if (v === "auto" || (typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= MAX_THREADS)) return v;
  throw bad(fn, name, `'auto' or a whole number from 1 to ${MAX_THREADS}`, v);
};
/** @type {Checker<number>} */
const noiseLevel = (fn, name, v) => {
  if (typeof v !== "number" || !(v >= 0 && v <= 1)) throw bad(fn, name, "a noise level in [0, 1]", v);
  return v;
};
/** @type {Checker<number>} */
const probability = (fn, name, v) => {
  if (typeof v !== "number" || !(v >= 0 && v <= 1)) throw bad(fn, name, "a probability in [0, 1]", v);
  return v;
};
/** @type {Checker<number>} */
const nonNegative = (fn, name, v) => {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw bad(fn, name, "a finite number of at least 0", v);
  return v;
};
/** @type {Checker<number>} top-p: a mass in (0, 1]. */
const nucleus = (fn, name, v) => {
  if (typeof v !== "number" || !(v > 0 && v <= 1)) throw bad(fn, name, "a number in (0, 1]", v);
  return v;
};
/** @type {Checker<{ hole: number, text: string }[]>} */
const force = (fn, name, v) => {
  let n;
  try {
    if (!Array.isArray(v)) throw bad(fn, name, "an array of { hole, text }", v);
    n = v.length;
  } catch (e) {
    if (/** @type {any} */ (e)?.code === "BadInput") throw e;
    throw namedError("BadInput", `${fn}: ${name} could not be read (${why(e)})`);
  }
  if (!isWhole(n) || n > 1 << 16) throw bad(fn, name, "an array of at most 65536 { hole, text }", v);
  /** @type {{ hole: number, text: string }[]} */
  const out = [];
  for (let i = 0; i < n; i++) {
    const at = `${name}[${i}]`;
    const item = get(fn, name, v, i);
    const one = checked(fn, at, item, { hole: whole, text: (f, w, x) => text(f, w, x, "BadInput") }, ["hole", "text"]);
    out.push(/** @type {{ hole: number, text: string }} */ (one));
  }
  return out;
};

/**
 * Checks an options object against `spec` (key → checker): unknown keys are refused, each
 * known one is read once and checked, and a plain object of the checked values (without the
 * ones left out or `undefined`) comes back. `required` keys must be there.
 * @template {Record<string, Checker<unknown>>} S
 * @param {string} fn
 * @param {string} what
 * @param {unknown} v
 * @param {S} spec
 * @param {(keyof S)[]} [required]
 * @returns {{ [K in keyof S]?: Exclude<ReturnType<S[K]>, undefined> }}
 */
function checked(fn, what, v, spec, required = []) {
  const keys = keysOf(fn, what, v);
  for (const key of keys) {
    if (!Object.hasOwn(spec, key)) {
      throw namedError(
        "BadInput",
        `${fn}: ${field(what, key)} is not an option (unknown field); expected one of ${Object.keys(spec).join(", ")}`,
      );
    }
  }
  /** @type {Record<string, unknown>} */
  const out = {};
  for (const key of Object.keys(spec)) {
    // a key not among the own keys is left out, whatever a prototype might say
    const value = keys.includes(key) ? get(fn, what, v, key) : undefined;
    if (value === undefined) {
      if (required.includes(key)) throw namedError("BadInput", `${fn}: ${field(what, key)} is missing`);
      continue;
    }
    const c = spec[key](fn, field(what, key), value);
    if (c !== undefined) out[key] = c;
  }
  return /** @type {any} */ (out);
}

const INFILL = {
  strategy: string,
  steps: whole,
  temperature: finite,
  topK: whole,
  topP: finite,
  schedule: string,
  blockLength: whole,
  cfg: finite,
  force,
  cache: bool,
  dualCache: bool,
  seed: whole,
  candidates: whole,
  pending: bool,
  holeStart: atLeastOne,
  onStep: callback,
  signal,
};

/**
 * `infill`'s and `steps`' options, checked: a plain object of the given, checked values (the
 * names, such as `strategy`, are checked as strings here and by the engine after).
 * @param {string} fn
 * @param {unknown} v
 * @returns {Omit<InfillOptions, "onStep" | "signal"> & { onStep?: (e: import("./index.js").FillEvent) => void, signal?: AbortSignal }}
 */
export function infillOptions(fn, v) {
  return /** @type {any} */ (checked(fn, "options", v, INFILL));
}

/** @type {Checker<number[]>} Each hole of unknown length's length: an array of whole numbers of at least 1. */
const lengths = (fn, name, v) => {
  let n;
  try {
    if (!Array.isArray(v)) throw bad(fn, name, "an array of lengths (whole numbers of at least 1)", v);
    n = v.length;
  } catch (e) {
    if (/** @type {any} */ (e)?.code === "BadInput") throw e;
    throw namedError("BadInput", `${fn}: ${name} could not be read (${why(e)})`);
  }
  if (!isWhole(n) || n > 1 << 16) throw bad(fn, name, "an array of at most 65536 lengths", v);
  /** @type {number[]} */
  const out = [];
  for (let i = 0; i < n; i++) out.push(atLeastOne(fn, `${name}[${i}]`, get(fn, name, v, i)));
  return out;
};

const LAYOUT = { holeStart: atLeastOne, lengths };

/**
 * `layout`'s and `measure`'s options `{ holeStart, lengths }`: how holes of unknown length are
 * laid out.
 * @param {string} fn
 * @param {unknown} v
 * @returns {import("./index.js").LayoutOptions}
 */
export function layoutOptions(fn, v) {
  return checked(fn, "options", v, LAYOUT);
}

const CORRUPT = { family: string, t: noiseLevel, seed: whole };

/**
 * @param {unknown} v
 * @returns {CorruptOptions}
 */
export function corruptOptions(v) {
  return /** @type {CorruptOptions} */ (checked("corrupt", "options", v, CORRUPT));
}

/**
 * `schedule(points)`: a finite number (rounded and clamped to 2..1000 by the caller).
 * @param {unknown} v
 */
export function schedulePoints(v) {
  return finite("schedule", "points", v);
}

/** @type {Checker<string>} Qwen3 A2D's attention: `auto`, `full` or `block:N` (N ≥ 1). */
const attention = (fn, name, v) => {
  if (typeof v !== "string" || !/^(auto|full|block:[1-9][0-9]{0,6})$/.test(v)) throw bad(fn, name, "'auto', 'full' or 'block:N' (N a whole number from 1)", v);
  return v;
};

const LOAD = {
  device: oneOf("auto", "webgpu", "wasm", "gpu", "cpu"),
  weights: oneOf("f16", "f32", "q8", "q4"),
  attention,
  onProgress: callback,
  signal,
  wasmUrl: location,
  cache: bool,
  worker: bool,
  workerUrl: location,
  wasmThreadsUrl: location,
  threads,
  tokenizer: optionalLocation,
};

/**
 * @param {unknown} v
 * @returns {Omit<LoadOptions, "onProgress" | "signal" | "tokenizer"> & { onProgress?: (e: import("./index.js").ProgressEvent) => void, signal?: AbortSignal, tokenizer?: string | URL }}
 */
export function loadOptions(v) {
  return /** @type {any} */ (checked("load", "options", v, LOAD));
}

/** @type {(v: unknown) => v is Uint8Array} */
const isBytes = (v) => ArrayBuffer.isView(v) && Object.prototype.toString.call(v) === "[object Uint8Array]";
/** @type {Checker<Uint8Array>} */
const bytes = (fn, name, v) => {
  if (!isBytes(v)) throw bad(fn, name, "a Uint8Array (the file's bytes)", v);
  return v;
};
/** @type {Checker<string | Uint8Array>} */
const textOrBytes = (fn, name, v) => {
  if (typeof v === "string") return v;
  if (!isBytes(v)) throw bad(fn, name, "a string or a Uint8Array (the file's bytes)", v);
  return v;
};

/** The models shipped with the package, by the name `load` takes (index.d.ts's `BundledModel`). */
export const BUNDLED = /** @type {const} */ (["default", "uniform", "gaussian", "bits", "dreamon"]);

/**
 * Whether `v` is the name of a model shipped with the package: exactly `"default"`,
 * `"uniform"`, `"gaussian"`, `"bits"` or `"dreamon"` (`"./uniform"` is a folder).
 * @param {unknown} v
 * @returns {v is import("./index.js").BundledModel}
 */
export function isBundled(v) {
  return typeof v === "string" && /** @type {readonly string[]} */ (BUNDLED).includes(v);
}

/**
 * `load`'s source: `{ kind: "bundled", name }` (undefined or null: the default model; or a
 * bundled model's name, which wins over a folder of that name), `{ kind: "folder", where }` (a
 * non-empty string or a URL), or `{ kind: "files", files }` (`{ config, weights, tokenizer }`;
 * `tokenizer` may be left out only when `options.tokenizer` says where to read it).
 * @param {unknown} v
 * @param {LoadOptions} options
 * @returns {{ kind: "bundled", name: import("./index.js").BundledModel } | { kind: "folder", where: string | URL } | { kind: "files", files: ModelFiles }}
 */
export function loadSource(v, options) {
  if (v === undefined || v === null) return { kind: "bundled", name: "default" };
  if (isBundled(v)) return { kind: "bundled", name: v };
  if (typeof v === "string" || isURL(v)) {
    return { kind: "folder", where: location("load", "source", v) };
  }
  if (typeof v !== "object") {
    const names = BUNDLED.map((b) => `'${b}'`);
    throw bad("load", "source", `a bundled model's name (${names.slice(0, -1).join(", ")} or ${names.at(-1)}), a folder URL or path, a hub id, or { config, weights, tokenizer } (or left out)`, v);
  }
  const files = checked("load", "source", v, { config: textOrBytes, weights: bytes, tokenizer: textOrBytes }, ["config", "weights"]);
  if (files.tokenizer === undefined && options.tokenizer === undefined) {
    throw namedError(
      "BadInput",
      "load: source.tokenizer is missing: give tokenizer.json's bytes, or options.tokenizer (a folder or hub id to read it from)",
    );
  }
  return { kind: "files", files: /** @type {ModelFiles} */ (files) };
}

/**
 * `reapply`'s candidates: an array of objects with a probability `p` in [0, 1] (a step event's
 * `top`), as the probabilities the module reads.
 * @param {unknown} v
 * @returns {Float64Array}
 */
export function candidates(v) {
  let n;
  try {
    if (!Array.isArray(v)) throw bad("reapply", "candidates", "an array of { p } (a step event's `top`)", v);
    n = v.length;
  } catch (e) {
    if (/** @type {any} */ (e)?.code === "BadInput") throw e;
    throw namedError("BadInput", `reapply: candidates could not be read (${why(e)})`);
  }
  if (!isWhole(n) || n > 1 << 16) throw bad("reapply", "candidates", "an array of at most 65536 { p }", v);
  const probs = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const item = get("reapply", "candidates", v, i);
    if (item === null || typeof item !== "object") throw bad("reapply", `candidates[${i}]`, "an object with a probability p", item);
    probs[i] = probability("reapply", `candidates[${i}].p`, get("reapply", `candidates[${i}]`, item, "p"));
  }
  return probs;
}

const REAPPLY = { temperature: nonNegative, topK: whole, topP: nucleus };

/**
 * `reapply`'s options `{ temperature, topK, topP }`.
 * @param {unknown} v
 * @returns {import("./index.js").ReapplyOptions}
 */
export function reapplyOptions(v) {
  return checked("reapply", "options", v, REAPPLY);
}

/**
 * `isCached(source, options)`: as `load`'s bundled names and folder forms; options `{ tokenizer }`.
 * @param {unknown} source
 * @param {unknown} options
 */
export function cacheQuery(source, options) {
  if (source !== undefined && source !== null) location("isCached", "source", source);
  return checked("isCached", "options", options, { tokenizer: optionalLocation });
}

/**
 * A location the platform cannot make a URL of, as `BadInput` naming it.
 * @param {unknown} where
 * @param {string} file
 * @param {unknown} e
 */
export function badLocation(where, file, e) {
  return namedError("BadInput", `load: ${show(String(where))} is not a folder URL or path a URL can be made of (${file}: ${why(e)})`);
}

// --- network failures: a typed error naming the URL

/**
 * A fetch that did not get a response (no connection, DNS, CORS, TLS), naming the URL.
 * @param {URL} url
 * @param {unknown} e
 */
export function networkError(url, e) {
  const c = /** @type {any} */ (e)?.cause;
  const cause = c?.code ?? c?.message;
  return namedError("NetworkError", `${url}: could not be fetched (${why(e)}${cause ? `: ${cause}` : ""})`);
}

/**
 * A download that broke off after `n` bytes, naming the URL.
 * @param {URL} url
 * @param {number} n
 * @param {unknown} e
 */
export function brokenDownload(url, n, e) {
  return namedError("NetworkError", `${url}: the download broke off after ${n} bytes (${why(e)})`);
}

/**
 * A response that is not OK, naming the URL and its status: the server's trouble (5xx, 408,
 * 429) is `NetworkError`, worth trying again later; anything else (404, 403…) says the model
 * is not there: `BadModel`.
 * @param {URL} url
 * @param {Response} res
 */
export function httpError(url, res) {
  const s = res.status;
  const transient = s >= 500 || s === 408 || s === 429;
  const text = res.statusText ? ` ${res.statusText}` : "";
  return namedError(transient ? "NetworkError" : "BadModel", `${url}: HTTP ${s}${text}`);
}
