//! The project's default model, compiled into the library and the binary (feature
//! `default-model`, on by default): a small MDLM trained on public-domain children's books by
//! `train/` (see models/default/REPORT.md). It loads through the same code as any checkpoint (`crate::engine::default_model` adds
//! the same load-time folding as for a folder).

use super::config::Config;
#[cfg(not(target_arch = "wasm32"))]
use super::matrix::Precision;
#[cfg(not(target_arch = "wasm32"))]
use super::memory;
use super::weights::Weights;
use super::Model;
use crate::error::Result;
use crate::text::Tokenizer;

const CONFIG: &str = include_str!("../../models/default/config.json");
const WEIGHTS: &[u8] = include_bytes!("../../models/default/model.safetensors");
const TOKENIZER: &[u8] = include_bytes!("../../models/default/tokenizer.json");

/// What messages call the embedded files.
pub const NAME: &str = "<embedded default model>";

/// The embedded model, natively after the memory check every checkpoint gets
/// (`memory::check`, so `UNMASK_MEMORY` holds here too), made for its weights as stored (f16,
/// used in place). (A wasm module's bound is its address space, checked by the bindings.)
pub fn load() -> Result<Model> {
    let cfg = Config::parse(format!("{NAME}/config.json"), CONFIG)?;
    let weights = Weights::from_static(&format!("{NAME}/model.safetensors"), WEIGHTS)?;
    #[cfg(not(target_arch = "wasm32"))]
    {
        let est = memory::estimate(&weights, Precision::Stored);
        memory::check(NAME, &weights, &est, memory::machine_memory())?;
    }
    let tok = Tokenizer::from_bytes(&format!("{NAME}/tokenizer.json"), TOKENIZER)?;
    Model::from_parts(&cfg, &weights, Some(tok))
}
