//! unmask: masked-diffusion language models for text infilling.
//!
//! Layers, top to bottom (see ARCHITECTURE.md):
//! - [`text`] — tokenizer (and, later, hole templates → canvas)
//! - [`model`] — `config.json` → [`model::ModelSpec`], safetensors → [`model::Weights`] → [`model::plan::Plan`]
//! - [`backend`] — executes a plan — [`backend::cpu`] (reference and fallback); the wgpu backend later
//! - [`diffusion`] — reading logits as clean-token distributions (subs), and later the samplers
//! - surfaces — the `unmask` binary (`src/bin`), and later the wasm bindings and `www/`

pub mod backend;
pub mod batch;
#[cfg(not(target_arch = "wasm32"))]
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
