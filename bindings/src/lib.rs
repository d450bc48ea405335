//! The JavaScript face of unmask, through wasm-bindgen: thin translations into the engine, so
//! the browser and Node run the very loop the CLI runs (`unmask::engine`, `Infiller::infill`)
//! and speak its JSON shapes (`InfillOptions` in; `InfillResult` and `TraceEvent` out).
//!
//! ```js
//! const loader = await Loader.create(configText, tokenizerBytes, { device: "auto" });
//! for await (const chunk of weightStream) loader.push(chunk); // header checked on arrival
//! const m = await loader.finish((phase) => console.log(phase));
//! const r = await m.infill({ template: "The [MASK*3] sat.", options: { seed: 7 }, onStep: console.log });
//! ```
//!
//! Errors are JS `Error`s whose `name` (and `code`) says what kind of failure it was
//! (`BadModel`, `BadInput`, `BadTemplate`, `ModelTooLarge`, `WebGPUUnavailable`, `DeviceLost`,
//! `OutOfMemory`, `GpuError`, `Aborted`) and whose message is the engine's own.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;
use wasm_bindgen::prelude::*;

use unmask::backend::Denoiser;
use unmask::diffusion::noising::{self, Family, NoisingContext};
use unmask::diffusion::proposal;
use unmask::diffusion::{Host, InfillOptions, Schedule, Strategy, TokenChoice, TraceEvent};
use unmask::engine::{self, BackendChoice, DeviceOptions, Engine, Selection, WeightFormat};
use unmask::model::config::Config;
use unmask::model::matrix::Precision;
use unmask::model::stream::{Header, WeightStream};
use unmask::model::{Architecture, Family as ModelFamily, Model};
use unmask::text::Tokenizer;

/// Runs once when the module is instantiated: the CPU matmul's simd128 kernels are chosen at
/// run time and are off until asked for (the module is built with `+simd128`); a panic's
/// message is kept for the JS layer, which would otherwise see only "unreachable".
#[wasm_bindgen(start)]
pub fn start() {
    gemm_common::set_wasm_simd128(true);
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        console_error(&format!("unmask: {msg}"));
        if let Ok(mut last) = PANIC.lock() {
            last.get_or_insert(msg);
        }
    }));
}

/// The message of the panic that stopped the module, if one did.
static PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// The message of the panic that stopped this module, if any: after one the module cannot be
/// used again, and the JS layer reports this instead of WebAssembly's "unreachable".
#[wasm_bindgen(js_name = lastPanic)]
pub fn last_panic() -> Option<String> {
    PANIC.lock().ok().and_then(|p| p.clone())
}

fn console_error(msg: &str) {
    js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("console"))
        .ok()
        .and_then(|c| {
            let f = js_sys::Reflect::get(&c, &JsValue::from_str("error")).ok()?;
            f.dyn_into::<js_sys::Function>()
                .ok()?
                .call1(&c, &JsValue::from_str(msg))
                .ok()
        });
}

/// The `name` (and `code`) of the JS `Error` for an engine error, stable for callers to
/// switch on.
fn error_name(e: &unmask::Error) -> &'static str {
    use unmask::error::GpuFault;
    use unmask::Error as E;
    match e {
        E::Io { .. }
        | E::File { .. }
        | E::Config { .. }
        | E::Tensor { .. }
        | E::Tokenizer { .. }
        | E::NonFinite { .. }
        | E::NonFiniteLogits { .. } => "BadModel",
        E::Input(_) => "BadInput",
        E::Template(_) => "BadTemplate",
        E::TooLarge(_) => "ModelTooLarge",
        E::Gpu { fault, .. } => match fault {
            GpuFault::Unavailable => "WebGPUUnavailable",
            GpuFault::DeviceLost => "DeviceLost",
            GpuFault::OutOfMemory => "OutOfMemory",
            GpuFault::Failed => "GpuError",
        },
        E::Aborted => "Aborted",
    }
}

fn js_error(name: &str, msg: &str) -> JsValue {
    let e = js_sys::Error::new(msg);
    e.set_name(name);
    let _ = js_sys::Reflect::set(&e, &JsValue::from_str("code"), &JsValue::from_str(name));
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
    /// Weight storage: `f16` (default; f16 on a GPU), `f32` (f32 on a GPU), or `q8` / `q4`
    /// (quantised at load to q8_0 / q4_0 on the CPU and the GPU alike, as the CLI's
    /// `--weights q8|q4`).
    weights: Option<String>,
    /// Qwen3 A2D only: `full` (the MDLM checkpoint, the default) or `block:N` (BD3LM, 32),
    /// which the checkpoint's files do not say.
    attention: Option<String>,
}

impl LoadOptions {
    /// Where the model runs and how a GPU stores its weights, and the precision the host's
    /// plan is prepared in ([`engine::prepare`]): `q8` and `q4` quantise every matrix at load
    /// (the CLI's `WeightsArg`: f16 storage for what a GPU does not quantise).
    fn device(&self) -> Result<(DeviceOptions, Precision), JsValue> {
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
        let (weights, precision) = match self.weights.as_deref().unwrap_or("f16") {
            "f16" => (WeightFormat::F16, Precision::Stored),
            "f32" => (WeightFormat::F32, Precision::Stored),
            "q8" => (WeightFormat::F16, Precision::Q8),
            "q4" => (WeightFormat::F16, Precision::Q4),
            other => {
                return Err(js_error(
                    "BadInput",
                    &format!("weights `{other}`: expected 'f16', 'f32', 'q8' or 'q4'"),
                ))
            }
        };
        Ok((DeviceOptions { backend, weights }, precision))
    }
}

/// Bytes of this module's linear memory now: a wasm memory never shrinks, so this is also the
/// peak so far (what a load cost).
#[wasm_bindgen(js_name = wasmMemoryBytes)]
pub fn wasm_memory_bytes() -> f64 {
    (core::arch::wasm32::memory_size::<0>() as f64) * 65536.0
}

/// Bytes a wasm32 module can address: the model, widened to f32, must fit in them.
const WASM_MEMORY: u64 = 4 << 30;

/// A model being loaded. `config.json` and `tokenizer.json` come first and the backend is
/// chosen at once; then the bytes of `model.safetensors` are pushed as they arrive. Its header
/// is checked against the memory and adapter limits before any tensor is read, and each tensor
/// is widened to f32 as it passes, so the checkpoint never sits whole in wasm memory.
#[wasm_bindgen]
pub struct Loader {
    attention: engine::Attention,
    precision: Precision,
    /// The architecture whose matrices stream to the GPU, when they do.
    streaming: Option<Architecture>,
    cfg: Config,
    tokenizer: Tokenizer,
    target: engine::Target,
    stream: WeightStream,
    checked: bool,
}

/// What a checkpoint's header says, returned by the push that completes it: its size, and the
/// memory it will take where it runs (before any tensor is read).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HeaderInfo {
    file_bytes: u64,
    f32_bytes: u64,
    tensors: usize,
    /// Bytes of weights wasm memory keeps.
    wasm_bytes: u64,
    /// Peak wasm bytes of the load: those, the largest tensor on its way to the GPU, and
    /// working memory.
    wasm_peak_bytes: u64,
    /// Bytes of weights in GPU buffers (0 on the wasm backend).
    gpu_bytes: u64,
    /// Whether the weight matrices stream straight to the GPU.
    to_gpu: bool,
    /// `"webgpu"` or `"wasm"`: where it would run.
    backend: &'static str,
    /// Why it cannot load here (`checkpointNeed` only: a load refuses with this message).
    refused: Option<String>,
}

impl HeaderInfo {
    fn new(
        h: &Header,
        need: engine::Need,
        target: &engine::Target,
        to_gpu: bool,
        refused: Option<String>,
    ) -> HeaderInfo {
        HeaderInfo {
            file_bytes: h.file_len(),
            f32_bytes: h.f32_bytes(),
            tensors: h.entries.len(),
            wasm_bytes: need.host,
            wasm_peak_bytes: need.host_peak(),
            gpu_bytes: need.device,
            to_gpu,
            backend: backend_name(&target.selection),
            refused,
        }
    }
}

/// The memory a checkpoint will need where it would run, before it downloads: from its
/// `config.json` and the first bytes of its `model.safetensors` (the header; `undefined` until
/// `head` holds all of it). Chooses the backend as `Loader.create` does with these options.
/// Returns `{ fileBytes, f32Bytes, tensors, wasmBytes, wasmPeakBytes, gpuBytes, toGpu,
/// backend, refused }`, `refused` being the reason a load would give when it does not fit.
#[wasm_bindgen(js_name = checkpointNeed)]
pub async fn checkpoint_need(
    config: String,
    head: Vec<u8>,
    options: JsValue,
) -> Result<JsValue, JsValue> {
    let opts: LoadOptions = read_options("load options", options)?;
    let (device, precision) = opts.device()?;
    let cfg = Config::parse("config.json", &config).map_err(engine_error)?;
    let arch = Architecture::from_model_type(&cfg).map_err(engine_error)?;
    let Some(h) = Header::parse("model.safetensors", &head).map_err(engine_error)? else {
        return Ok(JsValue::UNDEFINED);
    };
    let target = engine::target(device).await.map_err(engine_error)?;
    let streaming = target.streams(arch).then_some(arch);
    let path = "model.safetensors";
    let need = target.need(&h, streaming, precision);
    let refused = target
        .check_fits(path, &h, Some(WASM_MEMORY), streaming, precision)
        .err()
        .map(|e| e.to_string());
    let info = HeaderInfo::new(&h, need, &target, streaming.is_some(), refused);
    serde_wasm_bindgen::to_value(&info).map_err(|e| js_error("BadModel", &e.to_string()))
}

#[wasm_bindgen]
impl Loader {
    /// Parses the config and tokenizer and chooses the backend `options.device` asks for.
    pub async fn create(
        config: String,
        tokenizer: Vec<u8>,
        options: JsValue,
    ) -> Result<Loader, JsValue> {
        let opts: LoadOptions = read_options("load options", options)?;
        let (device, precision) = opts.device()?;
        let attention = match &opts.attention {
            None => engine::Attention::Auto,
            Some(a) => a.parse().map_err(engine_error)?,
        };
        let cfg = Config::parse("config.json", &config).map_err(engine_error)?;
        let tokenizer =
            Tokenizer::from_bytes("tokenizer.json", &tokenizer).map_err(engine_error)?;
        let target = engine::target(device).await.map_err(engine_error)?;
        let arch = Architecture::from_model_type(&cfg).map_err(engine_error)?;
        let mut stream = WeightStream::new("model.safetensors");
        // With WebGPU the large models' matrices go straight to the GPU as they arrive: wasm
        // memory then holds one tensor at a time, not the model
        let streaming = match target.sink(arch, precision) {
            Some((sink, rule)) => {
                stream.send_to(sink, rule);
                Some(arch)
            }
            None => None,
        };
        Ok(Loader {
            attention,
            precision,
            streaming,
            cfg,
            tokenizer,
            target,
            stream,
            checked: false,
        })
    }

    /// `"webgpu"` or `"wasm"`: where the model will run.
    #[wasm_bindgen(getter, unchecked_return_type = "Backend")]
    pub fn backend(&self) -> String {
        backend_name(&self.target.selection).into()
    }

    /// Takes the next bytes of `model.safetensors`. The push that completes the header checks
    /// that the model fits (an error named `ModelTooLarge` if not) and returns
    /// `{ fileBytes, f32Bytes, tensors }`; the others return `undefined`.
    pub fn push(&mut self, chunk: &[u8]) -> Result<JsValue, JsValue> {
        self.stream.push(chunk).map_err(engine_error)?;
        if self.checked {
            return Ok(JsValue::UNDEFINED);
        }
        let Some(h) = self.stream.header() else {
            return Ok(JsValue::UNDEFINED);
        };
        let need = self
            .target
            .check_fits(
                "model.safetensors",
                h,
                Some(WASM_MEMORY),
                self.streaming,
                self.precision,
            )
            .map_err(engine_error)?;
        self.checked = true;
        let info = HeaderInfo::new(h, need, &self.target, self.streaming.is_some(), None);
        serde_wasm_bindgen::to_value(&info).map_err(|e| js_error("BadModel", &e.to_string()))
    }

    /// Builds the model from everything pushed, attaches it to the backend (uploading the
    /// weights to a GPU), then calls `on_phase("warmup")` and warms the shaders up.
    pub async fn finish(self, on_phase: Option<js_sys::Function>) -> Result<Unmask, JsValue> {
        let Loader {
            attention,
            precision,
            cfg,
            tokenizer,
            target,
            stream,
            ..
        } = self;
        let model = {
            let weights = stream.finish().map_err(engine_error)?;
            Model::from_parts(&cfg, &weights, Some(tokenizer)).map_err(engine_error)?
        };
        let opts = engine::LoadOptions {
            attention,
            precision,
            ..engine::LoadOptions::default()
        };
        let model = engine::prepare(model, opts).map_err(engine_error)?;
        let selection = target.selection.clone();
        let mut inf = target.attach(model).await.map_err(engine_error)?;
        if let Some(f) = &on_phase {
            f.call1(&JsValue::NULL, &JsValue::from_str("warmup"))?;
        }
        inf.denoiser.warm_up().await.map_err(engine_error)?;
        let forward = Forward {
            tokenizer: inf.tokenizer().clone(),
            mask: inf.model.mask_id().map_err(engine_error)?,
            mask_text: inf.model.mask_text().unwrap_or_else(|| "[MASK]".into()),
            context: Lazy::Parts {
                embeddings: inf
                    .model
                    .plan()
                    .map_err(engine_error)?
                    .embeddings
                    .tokens
                    .clone(),
                allowed: inf.allowed.clone(),
            },
        };
        Ok(Unmask {
            family: inf.model.spec.family,
            forward: RefCell::new(Some(forward)),
            gpu: inf.denoiser.device().cloned(),
            gpu_weight_bytes: inf.denoiser.device_weight_bytes(),
            state: Rc::new(RefCell::new(State::Ready(Box::new(inf)))),
            selection,
        })
    }
}

/// The backend in the package's one vocabulary, `"webgpu"` or `"wasm"` (the engine's `gpu`
/// and `cpu`): `backend`, `backendReason.backend`, the progress events and `device` all say it.
fn backend_name(selection: &Selection) -> &'static str {
    match selection.backend {
        unmask::backend::Backend::Gpu => "webgpu",
        unmask::backend::Backend::Cpu => "wasm",
    }
}

/// `backendReason`: the engine's `Selection` with the backend in the package's vocabulary.
#[derive(serde::Serialize)]
struct BackendReason<'a> {
    backend: &'static str,
    /// `null` when no adapter was found (or none was looked for).
    adapter: &'a Option<String>,
    reason: &'a unmask::engine::Reason,
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

/// Why a model that is not `Ready` cannot take a call: `Busy` while a fill holds its engine,
/// `Disposed` once it was disposed or a `dispose` during a fill asked for it to be.
fn unavailable(state: &State) -> JsValue {
    match state {
        State::Busy { dispose: false } => {
            js_error("Busy", "this model is already filling a template")
        }
        _ => js_error("Disposed", "this model was disposed"),
    }
}

/// A model attached to its backend, ready to fill templates.
#[wasm_bindgen]
pub struct Unmask {
    /// Shared with the promise of a fill in flight, which takes the engine out for its run (no
    /// borrow is held across an await).
    state: Rc<RefCell<State>>,
    selection: Selection,
    /// The discrete diffusion the checkpoint was trained for (which strategies sample it).
    family: ModelFamily,
    /// The device, for its counters, readable while a fill holds the engine.
    gpu: Option<std::sync::Arc<unmask::backend::gpu::Gpu>>,
    /// Bytes of the weights the device holds.
    gpu_weight_bytes: u64,
    /// What `corrupt` needs, taken out of the engine at load time so that it works while a
    /// fill holds the engine; `None` once disposed.
    forward: RefCell<Option<Forward>>,
}

/// The forward process's view of a model: its tokenizer, mask and embeddings.
struct Forward {
    tokenizer: Tokenizer,
    mask: Option<u32>,
    mask_text: String,
    context: Lazy,
}

/// The context costs a pass over the embedding matrix (the norms of its rows), so it is built
/// by the first `corrupt`, not by every load.
enum Lazy {
    Parts {
        embeddings: std::sync::Arc<unmask::model::matrix::Matrix>,
        /// The sampler's own set of proposable tokens: the mask and special tokens are never
        /// drawn.
        allowed: Vec<bool>,
    },
    Built(NoisingContext),
}

impl Forward {
    fn context(&mut self) -> unmask::Result<&NoisingContext> {
        if let Lazy::Parts {
            embeddings,
            allowed,
        } = &self.context
        {
            if embeddings.on_device() {
                return Err(unmask::Error::Input(
                    "the noising views read the embeddings, and this model's went to the GPU as it streamed in: they are not in wasm memory".into(),
                ));
            }
            let ctx = NoisingContext::new(embeddings.as_tensor(), self.mask, allowed)?;
            self.context = Lazy::Built(ctx);
        }
        match &self.context {
            Lazy::Built(ctx) => Ok(ctx),
            Lazy::Parts { .. } => unreachable!("built above"),
        }
    }

    /// One token's text as the page shows it: the mask as the model writes it.
    fn text(&self, id: u32) -> unmask::Result<String> {
        if Some(id) == self.mask {
            return Ok(self.mask_text.clone());
        }
        self.tokenizer.decode(&[id], false)
    }
}

/// `layout`'s and `measure`'s options, as JS spells them: how holes of unknown length are laid
/// out (a template without them ignores both).
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
struct LayoutOptions {
    /// On a model that grows holes: the length each hole of unknown length starts at, clamped
    /// into its range (`InfillOptions.holeStart`; default DreamOn's 4).
    hole_start: Option<usize>,
    /// Each hole of unknown length at exactly these lengths, in template order: the chosen
    /// fill's `lengths` on a model that ranks lengths, or a growing fill's `hole_lengths`.
    lengths: Option<Vec<usize>>,
}

/// What `measure` and `layout` do with holes of unknown length on a model that ranks one fill
/// per length, when no `lengths` are given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ranked {
    /// The longest combination: what must fit the context (`measure`).
    Longest,
    /// A `BadTemplate` error saying why and what to pass (`layout`).
    Refuse,
}

/// A template's canvas for a view, holes of unknown length included (`Unmask::layout`).
fn canvas_with(
    inf: &Engine,
    template: &str,
    opts: &LayoutOptions,
    ranked: Ranked,
) -> unmask::Result<unmask::text::Canvas> {
    use unmask::Error;
    if opts.hole_start == Some(0) {
        return Err(Error::input(
            "holeStart: a hole starts at 1 token or more, not 0",
        ));
    }
    let t = inf.template(template)?;
    let specs = t.range_specs();
    if specs.is_empty() {
        return inf.canvas_of(&t);
    }
    let growing = inf.model.growth().is_some();
    // each hole's (min, max) as the fill reads it: a growing `[MASK*?]` reaches further
    let bounds: Vec<(usize, usize)> = if growing {
        unmask::diffusion::expand::plan(&specs, None)
            .iter()
            .map(|&(_, min, max)| (min, max))
            .collect()
    } else {
        t.ranges()
    };
    let names = t.range_names();
    if let Some(lengths) = &opts.lengths {
        if lengths.len() != bounds.len() {
            return Err(Error::input(format!(
                "lengths: {} given, but the template has {} hole{} of unknown length ({})",
                lengths.len(),
                bounds.len(),
                if bounds.len() == 1 { "" } else { "s" },
                names.join(", ")
            )));
        }
        for ((&n, &(min, max)), name) in lengths.iter().zip(&bounds).zip(&names) {
            if n < min || n > max {
                return Err(Error::input(format!(
                    "lengths: {n} for {name}, which takes {min} to {max} tokens here"
                )));
            }
        }
        // a growing hole keeps a slot of its own, as the fill laid it out
        let t = if growing {
            t.with_lengths_apart(lengths).0
        } else {
            t.with_lengths(lengths)
        };
        return inf.canvas_of(&t);
    }
    if growing {
        let start = unmask::diffusion::SamplerOptions {
            hole_start: opts.hole_start,
            ..Default::default()
        };
        return Ok(inf.growing(&t, &start)?.canvas);
    }
    match ranked {
        Ranked::Longest => {
            let longest: Vec<usize> = bounds.iter().map(|&(_, max)| max).collect();
            inf.canvas_of(&t.with_lengths(&longest))
        }
        Ranked::Refuse => Err(Error::template(format!(
            "{}: this model fills a hole of unknown length once per length and keeps the best \
             (it has no `<|expand|>` token to grow one), so its canvas is known only after the \
             fill: lay out the chosen fill with `{{ lengths }}` (from its `lengths` event), or \
             load a model whose holes grow (`dreamon`)",
            names.join(", ")
        ))),
    }
}

/// `corrupt`'s options, as JS spells them.
#[derive(Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
struct CorruptOptions {
    /// `absorbing`, `uniform`, `gaussian` or `bits`.
    family: String,
    /// The noise level, in [0, 1].
    t: f64,
    seed: u64,
}

impl Default for CorruptOptions {
    fn default() -> Self {
        CorruptOptions {
            family: "absorbing".into(),
            t: 0.5,
            seed: 0,
        }
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Corrupted {
    family: &'static str,
    t: f64,
    noise: f64,
    tokens: Vec<CorruptedToken>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct CorruptedToken {
    /// `null`: an Analog-Bits id past the vocabulary.
    id: Option<u32>,
    text: String,
    original_id: u32,
    original_text: String,
    masked: bool,
    changed: bool,
    valid: bool,
}

/// Both schedules of the teaching page on one time axis.
#[derive(serde::Serialize)]
struct Schedules {
    name: &'static str,
    /// `[t, 1 − α_t]`: the chance a token has been masked (or resampled) by t.
    masked: Vec<[f64; 2]>,
    /// `[t, 1 − ᾱ(t)]`: the variance of the continuous families' noise at t.
    continuous: Vec<[f64; 2]>,
}

/// Plain JSON shapes: `None` as `null` rather than `undefined`.
fn to_json_value<T: serde::Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_error("BadInput", &format!("result: {e}")))
}

/// Every family a model can be, in the order `family_name` lists them.
const MODEL_FAMILIES: [ModelFamily; 6] = [
    ModelFamily::Absorbing,
    ModelFamily::Uniform,
    ModelFamily::Score { uniform: false },
    ModelFamily::Score { uniform: true },
    ModelFamily::Gaussian,
    ModelFamily::Bits,
];

/// A model's family in the package's vocabulary (`ModelFamily` in the types): `"absorbing"`
/// (masked: MDLM, LLaDA, Dream, the MLMs), `"uniform"` (uniform-state: UDLM, Duo),
/// `"score-absorbing"` and `"score-uniform"` (SEDD on its two graphs), `"gaussian"` and `"bits"`
/// (the continuous families).
fn family_name(f: ModelFamily) -> &'static str {
    match f {
        ModelFamily::Absorbing => "absorbing",
        ModelFamily::Uniform => "uniform",
        ModelFamily::Score { uniform: false } => "score-absorbing",
        ModelFamily::Score { uniform: true } => "score-uniform",
        ModelFamily::Gaussian => "gaussian",
        ModelFamily::Bits => "bits",
    }
}

#[wasm_bindgen]
impl Unmask {
    /// `"webgpu"` or `"wasm"`: where this model runs.
    #[wasm_bindgen(getter, unchecked_return_type = "Backend")]
    pub fn backend(&self) -> String {
        backend_name(&self.selection).into()
    }

    /// The discrete diffusion this model was trained for: `"absorbing"`, `"uniform"`,
    /// `"score-absorbing"` or `"score-uniform"`; `strategies()` says which strategies fit each.
    #[wasm_bindgen(getter, unchecked_return_type = "ModelFamily")]
    pub fn family(&self) -> String {
        family_name(self.family).into()
    }

    /// Bytes of weights in GPU buffers (0 on the CPU).
    #[wasm_bindgen(getter, js_name = gpuWeightBytes)]
    pub fn gpu_weight_bytes(&self) -> f64 {
        self.gpu_weight_bytes as f64
    }

    /// Bytes read back from the GPU since the model was loaded (0 on the CPU); readable during
    /// a fill, so `onStep` can see what each step costs.
    #[wasm_bindgen(getter, js_name = readbackBytes)]
    pub fn readback_bytes(&self) -> f64 {
        self.gpu.as_ref().map_or(0.0, |g| g.readback_bytes() as f64)
    }

    /// Why that backend: `{ backend, adapter, reason: { kind, … } }`, the backend spelt as
    /// `backend` spells it (`"webgpu"` or `"wasm"`), the adapter `null` when there is none.
    #[wasm_bindgen(getter, js_name = backendReason, unchecked_return_type = "BackendSelection")]
    pub fn backend_reason(&self) -> JsValue {
        let s = &self.selection;
        to_json_value(&BackendReason {
            backend: backend_name(s),
            adapter: &s.adapter,
            reason: &s.reason,
        })
        .unwrap_or(JsValue::NULL)
    }

    /// Fills a template, all of the call in one object (`InfillCall`), read by name:
    /// `template`; `options`, the JSON shape of `InfillOptions` (`steps`, `strategy`,
    /// `temperature`, `topK`, `topP`, `seed`, `cfg`, `force`, …); `onStep`, which sees every
    /// trace event, the shape of a `--trace` line; `pause` (returning a promise), awaited before
    /// every step; and `signal` (an `AbortSignal`), which stops the run there once aborted.
    /// Resolves to `{ text, holes, steps, nfe, ms }`.
    #[wasm_bindgen(unchecked_return_type = "Promise<object>")]
    pub fn infill(&self, call: InfillCall) -> js_sys::Promise {
        let state = self.state.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let template = call
                .template()
                .as_string()
                .ok_or_else(|| js_error("BadTemplate", "infill: the template must be a string"))?;
            let request: InfillOptions = read_options("infill options", call.options())?;
            let on_step = call.on_step().dyn_into::<js_sys::Function>().ok();
            let pause = call.pause().dyn_into::<js_sys::Function>().ok();
            // any realm's AbortSignal: read as one, never tested with instanceof
            let signal = Some(call.signal())
                .filter(JsValue::is_object)
                .map(JsCast::unchecked_into::<js_sys::Object>);
            let mut inf = {
                let mut s = state.borrow_mut();
                match std::mem::replace(&mut *s, State::Busy { dispose: false }) {
                    State::Ready(e) => e,
                    other => {
                        *s = other;
                        return Err(unavailable(&s));
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

    /// The template on this model's canvas; `Busy` while a fill holds the engine, `Disposed`
    /// once the model was disposed (or asked to be, by a `dispose` during a fill). Holes of
    /// unknown length are laid out as `canvas_with` says.
    fn canvas_of(
        &self,
        template: &str,
        opts: &LayoutOptions,
        ranked: Ranked,
    ) -> Result<(unmask::text::Canvas, usize), JsValue> {
        let s = self.state.borrow();
        let State::Ready(inf) = &*s else {
            return Err(unavailable(&s));
        };
        let canvas = canvas_with(inf, template, opts, ranked).map_err(engine_error)?;
        Ok((canvas, inf.model.spec.max_len))
    }

    /// How a template lays out on this model's canvas, without running it: `{ tokens, holes,
    /// maxTokens }` (tokens with the model's special tokens). A template that cannot be read or
    /// is longer than the context is the same `BadTemplate` error `infill` would give. Holes of
    /// unknown length: on a model that grows them, the canvas its fill starts from (as
    /// `layout`); on one that ranks a fill per length, the longest combination (what must fit
    /// the context), unless `options.lengths` names one.
    pub fn measure(&self, template: String, options: JsValue) -> Result<JsValue, JsValue> {
        let opts: LayoutOptions = read_options("measure options", options)?;
        let (canvas, max_tokens) = self.canvas_of(&template, &opts, Ranked::Longest)?;
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Measure {
            tokens: usize,
            holes: usize,
            max_tokens: usize,
        }
        let m = Measure {
            tokens: canvas.ids.len(),
            holes: canvas.holes.len(),
            max_tokens,
        };
        serde_wasm_bindgen::to_value(&m).map_err(|e| js_error("BadInput", &e.to_string()))
    }

    /// Runs a diffusion family's forward (noising) process on `text`, tokenized without the
    /// model's special tokens, to time `options.t`: `{ family, t, noise, tokens: [{ id, text,
    /// originalId, originalText, masked, changed, valid }] }`. `options` is `{ family, t, seed }`
    /// (`absorbing` (the default), `uniform`, `gaussian` or `bits`; t in [0, 1], 0.5 by default;
    /// seed 0 by default). `noise` is the move chance for the discrete families and `1 − ᾱ(t)`
    /// for the continuous ones; a bits pattern past the vocabulary has `id: null`, `text: "∅"`
    /// and `valid: false`. Works while a fill runs.
    pub fn corrupt(&self, text: String, options: JsValue) -> Result<JsValue, JsValue> {
        // JSON has no NaN or Infinity (they would cross as null), so t is checked before the
        // options become JSON, with the engine's own message
        if let Some(t) = js_sys::Reflect::get(&options, &JsValue::from_str("t"))
            .ok()
            .and_then(|v| v.as_f64())
        {
            noising::check_t(t).map_err(engine_error)?;
        }
        let opts: CorruptOptions = read_options("corrupt options", options)?;
        let family = Family::parse(&opts.family).map_err(engine_error)?;
        let t = opts.t;
        let mut slot = self.forward.borrow_mut();
        let fw = slot
            .as_mut()
            .ok_or_else(|| js_error("Disposed", "this model was disposed"))?;
        // the text's size is bounded before tokenising, the token count after
        noising::check_text(&text).map_err(engine_error)?;
        let ids = fw.tokenizer.encode(&text, false).map_err(engine_error)?;
        let ctx = fw.context().map_err(engine_error)?;
        let noise = ctx.noise(family, t);
        let noised = noising::corrupt(family, &ids, t, opts.seed, ctx).map_err(engine_error)?;
        let tokens = noised
            .iter()
            .zip(&ids)
            .map(|(n, &orig)| {
                Ok(CorruptedToken {
                    id: n.id,
                    text: match n.id {
                        Some(id) => fw.text(id)?,
                        None => "∅".into(),
                    },
                    original_id: orig,
                    original_text: fw.text(orig)?,
                    masked: n.masked,
                    changed: n.changed,
                    valid: n.id.is_some(),
                })
            })
            .collect::<unmask::Result<Vec<_>>>()
            .map_err(engine_error)?;
        to_json_value(&Corrupted {
            family: family.name(),
            t,
            noise,
            tokens,
        })
    }

    /// The noise levels `corrupt` uses, at `points` evenly spaced times in [0, 1] (clamped to
    /// 2..=1000): `{ name: "loglinear", masked: [[t, 1 − α_t], …], continuous: [[t, 1 − ᾱ(t)],
    /// …] }`.
    pub fn schedule(&self, points: usize) -> Result<JsValue, JsValue> {
        let n = points.clamp(2, 1000);
        let schedule = Schedule::default();
        let times: Vec<f64> = (0..n).map(|i| i as f64 / (n - 1) as f64).collect();
        to_json_value(&Schedules {
            name: "loglinear",
            masked: times
                .iter()
                .map(|&t| [t, schedule.move_chance(t)])
                .collect(),
            continuous: times
                .iter()
                .map(|&t| [t, 1.0 - noising::alpha_bar(t)])
                .collect(),
        })
    }

    /// How a template lays out on the canvas, for a view that draws it: `{ tokens, slots }`, each
    /// slot `{ known: text }` (the user's text, verbatim) or `{ hole: [start, end], afterSpace,
    /// original? }` (the canvas positions a hole fills). Errors as `measure`. Holes of unknown
    /// length (`[MASK*?]`, `[MASK*A-B]`): on a model that grows them (its tokenizer has
    /// `<|expand|>`), the canvas the fill starts from, each such hole at `options.holeStart`
    /// (DreamOn's 4 by default) clamped into its range, which the fill's `expand` and
    /// `delete` events then re-index; on a model that ranks one fill per length, a
    /// `BadTemplate` error unless `options.lengths` gives each such hole's length (the chosen
    /// fill's, from the `lengths` event), since its canvas is known only after the fill.
    pub fn layout(&self, template: String, options: JsValue) -> Result<JsValue, JsValue> {
        let opts: LayoutOptions = read_options("layout options", options)?;
        let (canvas, _) = self.canvas_of(&template, &opts, Ranked::Refuse)?;
        serde_wasm_bindgen::to_value(&canvas.layout())
            .map_err(|e| js_error("BadInput", &e.to_string()))
    }

    /// Frees the model's memory (weights, GPU buffers) now instead of at garbage collection.
    pub fn dispose(&self) {
        self.forward.borrow_mut().take();
        let mut s = self.state.borrow_mut();
        *s = match *s {
            State::Busy { .. } => State::Busy { dispose: true },
            _ => State::Disposed,
        };
    }
}

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Where a model runs, in the package's one vocabulary. */
export type Backend = "webgpu" | "wasm";
/** `Unmask.backendReason` (the package adds `threads`). */
export interface BackendSelection {
  backend: Backend;
  adapter: string | null;
  reason: { kind: string; error?: string };
}
/** `Unmask.infill`'s one argument, read by name. */
export interface InfillCall {
  template: string;
  /** The JSON shape of `InfillOptions`, checked by the package. */
  options: object;
  onStep?: (event: any) => void;
  signal?: AbortSignal;
  /** Awaited before every step. */
  pause?: () => Promise<unknown> | void;
}
/** A model's family: which strategies sample it (`Unmask.family`). */
export type ModelFamily = "absorbing" | "uniform" | "score-absorbing" | "score-uniform";
/** One entry of `strategies()`. */
export interface StrategyEntry {
  name: string;
  usage: string;
  help: string;
  /** The model families it samples. */
  families: ModelFamily[];
  /** The families whose fills use it when no strategy is asked for. */
  defaultFor: ModelFamily[];
}
/** One entry of `reapply`'s answer, in the order of its probabilities. */
export interface Reweighed {
  tempered: number;
  kept: boolean;
  final: number;
}
"#;

#[wasm_bindgen]
extern "C" {
    /// `Unmask.infill`'s one argument: a plain JS object read by name (`InfillCall`).
    #[wasm_bindgen(typescript_type = "InfillCall")]
    pub type InfillCall;
    #[wasm_bindgen(method, getter)]
    fn template(this: &InfillCall) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn options(this: &InfillCall) -> JsValue;
    #[wasm_bindgen(method, getter, js_name = onStep)]
    fn on_step(this: &InfillCall) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn signal(this: &InfillCall) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn pause(this: &InfillCall) -> JsValue;
}

/// One entry of `strategies()`: the engine's `StrategyInfo` and the families it fits.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct StrategyEntry {
    #[serde(flatten)]
    info: unmask::diffusion::strategy::StrategyInfo,
    families: Vec<&'static str>,
    default_for: Vec<&'static str>,
}

/// Every unmasking strategy, from the engine's one list (`Strategy::ALL`), in the order the
/// CLI's help lists them: `[{ name, usage, help, families, defaultFor }]`, where `families` are
/// the model families it samples (`Strategy::family_fits`) and `defaultFor` those whose fills
/// use it when none is asked for (`Strategy::default_for`). The npm types and the web demo are
/// tested against it.
#[wasm_bindgen(unchecked_return_type = "StrategyEntry[]")]
pub fn strategies() -> Result<JsValue, JsValue> {
    let entries = Strategy::ALL
        .iter()
        .map(|info| {
            let s: Strategy = info
                .name
                .parse()
                .map_err(|e: String| js_error("InternalError", &e))?;
            let pick = |keep: &dyn Fn(ModelFamily) -> bool| {
                MODEL_FAMILIES
                    .into_iter()
                    .filter(|&f| keep(f))
                    .map(family_name)
                    .collect()
            };
            Ok(StrategyEntry {
                info: *info,
                families: pick(&|f| s.family_fits(f)),
                default_for: pick(&|f| Strategy::default_for(f) == s),
            })
        })
        .collect::<Result<Vec<_>, JsValue>>()?;
    to_json_value(&entries)
}

/// `reapply`'s options, as JS spells them.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
struct ReapplyOptions {
    temperature: Option<f64>,
    top_k: Option<usize>,
    top_p: Option<f64>,
}

/// What a temperature, top-k and top-p make of a few tokens' model probabilities (a step
/// event's `top` candidates), taken as the whole distribution: the sampler's own
/// `sampling_distribution` over them (`proposal::reweigh`). `options` is `{ temperature,
/// topK, topP }` (1, 0 and 1 by default: no change); the answer has one `{ tempered, kept,
/// final }` per probability, in their order.
#[wasm_bindgen(unchecked_return_type = "Reweighed[]")]
pub fn reapply(probs: &[f64], options: JsValue) -> Result<JsValue, JsValue> {
    let o: ReapplyOptions = read_options("reapply options", options)?;
    let d = TokenChoice::default();
    let choice = TokenChoice {
        temperature: o.temperature.unwrap_or(d.temperature),
        top_k: o.top_k.unwrap_or(d.top_k),
        top_p: o.top_p.unwrap_or(d.top_p),
    };
    to_json_value(&proposal::reweigh(probs, &choice))
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
    let mut model = random_mdlm(&shape, 0).map_err(engine_error)?;
    // as a model attached to the CPU is: its matrices in the panel kernel's layout
    unmask::engine::for_cpu(&mut model).map_err(engine_error)?;
    let mut d = unmask::backend::CpuDenoiser::new(model.plan().map_err(engine_error)?.clone());
    let m = measure(&model, &mut d, "mdlm-shape", len, iters, 1)
        .await
        .map_err(engine_error)?;
    serde_wasm_bindgen::to_value(&m).map_err(|e| js_error("BadInput", &e.to_string()))
}

// The threaded build (`threads`): `await init(); await initThreadPool(n);` starts the pool of n
// Web Workers the CPU path runs on; threadCount() says how many threads it has (1 without it).
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// The threads of the CPU path's pool: `rayon::current_num_threads()` in the threaded build
/// (after `initThreadPool(n)`: n), 1 in the single-thread build.
#[wasm_bindgen(js_name = threadCount)]
pub fn thread_count() -> usize {
    #[cfg(feature = "threads")]
    {
        rayon::current_num_threads()
    }
    #[cfg(not(feature = "threads"))]
    {
        1
    }
}
