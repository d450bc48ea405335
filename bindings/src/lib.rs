//! The JavaScript face of unmask, through wasm-bindgen: thin translations into the engine, so
//! the browser and Node run the very loop the CLI runs (`unmask::engine`, `Infiller::infill`)
//! and speak its JSON shapes (`InfillOptions` in; `InfillResult` and `TraceEvent` out).
//!
//! ```js
//! const m = await Unmask.fromFiles(configText, weightBytes, tokenizerBytes, { device: "auto" });
//! const r = await m.infill("The [MASK*3] sat.", { seed: 7 }, (step) => console.log(step));
//! ```
//!
//! Errors are JS `Error`s whose `name` says what kind of failure it was (`BadModel`,
//! `BadInput`, `GpuError`) and whose message is the engine's own.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;
use wasm_bindgen::prelude::*;

use unmask::diffusion::{Host, InfillOptions, TraceEvent};
use unmask::engine::{self, BackendChoice, DeviceOptions, Engine, Selection, WeightFormat};
use unmask::model::config::Config;
use unmask::model::{Model, Weights};
use unmask::text::Tokenizer;

/// Runs once when the module is instantiated: the CPU matmul's simd128 kernels are chosen at
/// run time and are off until asked for (the module is built with `+simd128`).
#[wasm_bindgen(start)]
pub fn start() {
    gemm_common::set_wasm_simd128(true);
}

/// The `name` of the JS `Error` for an engine error, stable for callers to switch on.
fn error_name(e: &unmask::Error) -> &'static str {
    use unmask::Error as E;
    match e {
        E::Io { .. }
        | E::File { .. }
        | E::Config { .. }
        | E::Tensor { .. }
        | E::Tokenizer { .. } => "BadModel",
        E::Input(_) => "BadInput",
        E::Gpu(_) => "GpuError",
        E::Aborted => "Aborted",
    }
}

fn js_error(name: &str, msg: &str) -> JsValue {
    let e = js_sys::Error::new(msg);
    e.set_name(name);
    e.into()
}

fn engine_error(e: unmask::Error) -> JsValue {
    js_error(error_name(&e), &e.to_string())
}

/// Reads a JS options object (`undefined`/`null`: the defaults) strictly, through JSON: wrong
/// types, negative counts and unknown fields are errors naming the field.
fn read_options<T: serde::de::DeserializeOwned + Default>(
    what: &str,
    v: JsValue,
) -> Result<T, JsValue> {
    if v.is_undefined() || v.is_null() {
        return Ok(T::default());
    }
    let text: String = js_sys::JSON::stringify(&v)
        .map_err(|_| js_error("BadInput", &format!("{what}: not a plain object")))?
        .into();
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        let at = if at == "." {
            String::new()
        } else {
            format!(" `{at}`")
        };
        js_error("BadInput", &format!("{what}{at}: {}", e.inner()))
    })
}

/// Where a model runs, as JS spells it.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
struct LoadOptions {
    /// `auto` (WebGPU on a hardware adapter, else the CPU), `webgpu` or `wasm` (the CPU).
    device: Option<String>,
    /// GPU weight storage: `f16` (default) or `f32`.
    weights: Option<String>,
}

impl LoadOptions {
    fn device(&self) -> Result<DeviceOptions, JsValue> {
        let backend = match self.device.as_deref().unwrap_or("auto") {
            "auto" => BackendChoice::Auto,
            "webgpu" | "gpu" => BackendChoice::Gpu,
            "wasm" | "cpu" => BackendChoice::Cpu,
            other => {
                return Err(js_error(
                    "BadInput",
                    &format!("device `{other}`: expected 'auto', 'webgpu' or 'wasm'"),
                ))
            }
        };
        let weights = match self.weights.as_deref().unwrap_or("f16") {
            "f16" => WeightFormat::F16,
            "f32" => WeightFormat::F32,
            other => {
                return Err(js_error(
                    "BadInput",
                    &format!("weights `{other}`: expected 'f16' or 'f32'"),
                ))
            }
        };
        Ok(DeviceOptions { backend, weights })
    }
}

/// Where a model's engine is: ready, lent to the fill in flight, or gone.
enum State {
    Ready(Box<Engine>),
    /// A fill holds the engine; `dispose` asks for it to be dropped when the fill ends.
    Busy {
        dispose: bool,
    },
    Disposed,
}

/// A model attached to its backend, ready to fill templates.
#[wasm_bindgen]
pub struct Unmask {
    /// Shared with the promise of a fill in flight, which takes the engine out for its run (no
    /// borrow is held across an await).
    state: Rc<RefCell<State>>,
    selection: Selection,
}

#[wasm_bindgen]
impl Unmask {
    /// A model from the bytes of its Hugging Face files (`config.json` as text,
    /// `model.safetensors`, `tokenizer.json`), attached to the device `options.device` asks for.
    #[wasm_bindgen(js_name = fromFiles)]
    pub async fn from_files(
        config: String,
        weights: Vec<u8>,
        tokenizer: Vec<u8>,
        options: JsValue,
    ) -> Result<Unmask, JsValue> {
        let opts: LoadOptions = read_options("load options", options)?;
        let device = opts.device()?;
        let cfg = Config::parse("config.json", &config).map_err(engine_error)?;
        let tok = Tokenizer::from_bytes("tokenizer.json", &tokenizer).map_err(engine_error)?;
        let model = {
            let w = Weights::from_bytes("model.safetensors", weights).map_err(engine_error)?;
            Model::from_parts(&cfg, &w, Some(tok)).map_err(engine_error)?
        };
        let model = engine::prepare(model, engine::LoadOptions::default());
        let (inf, selection) = engine::infiller(model, device)
            .await
            .map_err(engine_error)?;
        Ok(Unmask {
            state: Rc::new(RefCell::new(State::Ready(Box::new(inf)))),
            selection,
        })
    }

    /// `"webgpu"` or `"wasm"`: where this model runs.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        match self.selection.backend {
            unmask::backend::Backend::Gpu => "webgpu".into(),
            unmask::backend::Backend::Cpu => "wasm".into(),
        }
    }

    /// Why that backend: `{ backend, adapter, reason: { kind, … } }`.
    #[wasm_bindgen(getter, js_name = backendReason)]
    pub fn backend_reason(&self) -> JsValue {
        serde_wasm_bindgen::to_value(&self.selection).unwrap_or(JsValue::NULL)
    }

    /// Fills a template. `options` is the JSON shape of `InfillOptions` (`steps`, `strategy`,
    /// `temperature`, `topK`, `topP`, `seed`, `cfg`, `force`, …); `on_step` sees every trace
    /// event, the shape of a `--trace` line; `pause` (returning a promise) is awaited before
    /// every step, and an aborted `signal` (an `AbortSignal`) stops the run there. Resolves to
    /// `{ text, holes, steps, nfe, ms }`.
    pub fn infill(
        &self,
        template: String,
        options: JsValue,
        on_step: Option<js_sys::Function>,
        signal: Option<js_sys::Object>,
        pause: Option<js_sys::Function>,
    ) -> js_sys::Promise {
        let state = self.state.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let request: InfillOptions = read_options("infill options", options)?;
            let mut inf = {
                let mut s = state.borrow_mut();
                match std::mem::replace(&mut *s, State::Busy { dispose: false }) {
                    State::Ready(e) => e,
                    other => {
                        let busy = matches!(other, State::Busy { .. });
                        *s = other;
                        return Err(if busy {
                            js_error("Busy", "this model is already filling a template")
                        } else {
                            js_error("Disposed", "this model was disposed")
                        });
                    }
                }
            };
            let mut host = JsHost {
                on_step,
                signal,
                pause,
                error: None,
            };
            let result = fill(&mut inf, &template, &request, &mut host).await;
            let mut s = state.borrow_mut();
            *s = match *s {
                State::Busy { dispose: true } => State::Disposed,
                _ => State::Ready(inf),
            };
            result
        })
    }

    /// Frees the model's memory (weights, GPU buffers) now instead of at garbage collection.
    pub fn dispose(&self) {
        let mut s = self.state.borrow_mut();
        *s = match *s {
            State::Busy { .. } => State::Busy { dispose: true },
            _ => State::Disposed,
        };
    }
}

/// The JS side of a run: `onStep` for every event, and between steps the JS `pause` (a turn of
/// the event loop, so a page repaints and an abort can arrive) and a look at the `AbortSignal`.
struct JsHost {
    on_step: Option<js_sys::Function>,
    signal: Option<js_sys::Object>,
    pause: Option<js_sys::Function>,
    /// The first exception `onStep` threw; it ends the run.
    error: Option<JsValue>,
}

impl Host for JsHost {
    fn event(&mut self, e: &TraceEvent) {
        if let (Some(f), None) = (&self.on_step, &self.error) {
            let event = serde_wasm_bindgen::to_value(e).unwrap_or(JsValue::NULL);
            if let Err(err) = f.call1(&JsValue::NULL, &event) {
                self.error = Some(err);
            }
        }
    }

    async fn before_pass(&mut self) -> unmask::Result<()> {
        if let Some(Ok(p)) = self.pause.as_ref().map(|f| f.call0(&JsValue::NULL)) {
            if let Ok(p) = p.dyn_into::<js_sys::Promise>() {
                let _ = wasm_bindgen_futures::JsFuture::from(p).await;
            }
        }
        let aborted = self.signal.as_ref().is_some_and(|s| {
            js_sys::Reflect::get(s, &JsValue::from_str("aborted")).is_ok_and(|v| v.is_truthy())
        });
        if aborted || self.error.is_some() {
            return Err(unmask::Error::Aborted);
        }
        Ok(())
    }
}

/// One fill on a borrowed engine.
async fn fill(
    inf: &mut Engine,
    template: &str,
    request: &InfillOptions,
    host: &mut JsHost,
) -> Result<JsValue, JsValue> {
    let opts = request.resolve(&inf.model).map_err(engine_error)?;
    let result = inf.infill_with(template, &opts, host).await;
    if let Some(err) = host.error.take() {
        return Err(err);
    }
    let result = result.map_err(engine_error)?;
    serde_wasm_bindgen::to_value(&result).map_err(|e| js_error("BadInput", &format!("result: {e}")))
}

/// Times the CPU forward pass of a random MDLM-shaped model (`blocks` × `hidden`, `heads`,
/// `vocab`, head over all rows) at canvas length `len`: the median of `iters` runs after one
/// warm-up, as `unmask bench` does natively. Resolves to the measurement
/// `{ backend, len, ms_median, ms_min, gflop, gflops_per_s, … }`.
#[wasm_bindgen(js_name = benchForward)]
pub async fn bench_forward(
    blocks: usize,
    hidden: usize,
    heads: usize,
    vocab: usize,
    len: usize,
    iters: usize,
) -> Result<JsValue, JsValue> {
    use unmask::bench::{measure, random_mdlm, Shape};
    let shape = Shape {
        vocab,
        hidden,
        blocks,
        heads,
        cond: 128,
        max_len: len.max(1),
    };
    let model = random_mdlm(&shape, 0).map_err(engine_error)?;
    let mut d = unmask::backend::CpuDenoiser::new(model.plan.clone());
    let m = measure(&model, &mut d, "mdlm-shape", len, iters, 1)
        .await
        .map_err(engine_error)?;
    serde_wasm_bindgen::to_value(&m).map_err(|e| js_error("BadInput", &e.to_string()))
}
