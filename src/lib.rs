//! unmask: masked-diffusion language models for text infilling.
//!
//! Layers, each importing only those below it (see ARCHITECTURE.md; `.ci/module_graph.py`
//! checks it):
//! - [`text`] — tokenizer, hole templates → canvas of token ids
//! - [`model`] — data only: `config.json` → [`model::ModelSpec`], safetensors →
//!   [`model::Weights`] → [`model::plan::Plan`], `tokenizer.json`
//! - [`backend`] — the [`backend::Denoiser`] contract, run by [`backend::cpu`] (reference and
//!   fallback) and `backend::gpu` (WGSL through wgpu, feature `gpu`)
//! - [`diffusion`] — logit reading, proposals, schedules, strategies, the async sampler loop
//!   ([`diffusion::Infiller`]), its trace, `eval`, and the request types every surface shares
//! - [`engine`] — preparing a model, choosing and attaching a backend, the forward contract
//! - surfaces — the `unmask` binary (`src/bin`), which blocks on the engine through
//!   [`blocking`]; the wasm bindings await it instead
//!
//! ```
//! # #[cfg(feature = "default-model")] fn main() -> unmask::Result<()> {
//! use unmask::blocking::block_on;
//! use unmask::diffusion::InfillOptions;
//! use unmask::engine::{self, BackendChoice, DeviceOptions};
//!
//! let model = engine::default_model()?; // or engine::load_model(dir)?
//! let device = DeviceOptions { backend: BackendChoice::Cpu, ..Default::default() };
//! let (mut inf, selection) = block_on(engine::infiller(model, device))?;
//! assert_eq!(selection.notice("--backend"), None); // the CPU was asked for: nothing to say
//! let opts = InfillOptions { seed: 7, ..Default::default() }.resolve(&inf.model)?;
//! let mut steps = 0;
//! let result = block_on(inf.infill("The [MASK*3] sat.", &opts, &mut |event| {
//!     steps += 1; // event.to_json() is one `--trace` line
//! }))?;
//! assert!(result.text.starts_with("The ") && result.text.ends_with(" sat."));
//! assert_eq!(steps, result.steps + 1); // every step, then the done event
//! # Ok(()) }
//! # #[cfg(not(feature = "default-model"))] fn main() {}
//! ```

pub mod backend;
pub mod batch;
pub mod bench;
#[cfg(not(target_arch = "wasm32"))]
pub mod blocking;
pub mod diffusion;
pub mod engine;
pub mod error;
pub mod model;
pub mod tensor;
pub mod text;

pub use error::{Error, Result};
pub use model::Model;
