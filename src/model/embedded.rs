//! The project's own models, compiled into the library and the binary (feature
//! `default-model`, on by default): `default`, a small MDLM, `uniform`, a uniform-state
//! (UDLM) model of the same shape, the continuous `gaussian` and `bits`, and `dreamon`, the default continued with DreamOn's
//! length moves (its holes grow and shrink), all trained on public-domain children's books by `train/`
//! (see models/*/REPORT.md). It loads through the same code as any checkpoint (`crate::engine::default_model` adds
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

/// One model compiled in: its name and its three files.
struct Bundled {
    name: &'static str,
    config: &'static str,
    weights: &'static [u8],
    tokenizer: &'static [u8],
}

/// The models compiled in, addressed by name (`--model default`, `Unmask.load("uniform")`).
const BUNDLED: [Bundled; 5] = [
    Bundled {
        name: "default",
        config: include_str!("../../models/default/config.json"),
        weights: include_bytes!("../../models/default/model.safetensors"),
        tokenizer: include_bytes!("../../models/default/tokenizer.json"),
    },
    Bundled {
        name: "uniform",
        config: include_str!("../../models/uniform/config.json"),
        weights: include_bytes!("../../models/uniform/model.safetensors"),
        tokenizer: include_bytes!("../../models/uniform/tokenizer.json"),
    },
    Bundled {
        name: "gaussian",
        config: include_str!("../../models/gaussian/config.json"),
        weights: include_bytes!("../../models/gaussian/model.safetensors"),
        tokenizer: include_bytes!("../../models/gaussian/tokenizer.json"),
    },
    Bundled {
        name: "bits",
        config: include_str!("../../models/bits/config.json"),
        weights: include_bytes!("../../models/bits/model.safetensors"),
        tokenizer: include_bytes!("../../models/bits/tokenizer.json"),
    },
    Bundled {
        name: "dreamon",
        config: include_str!("../../models/dreamon/config.json"),
        weights: include_bytes!("../../models/dreamon/model.safetensors"),
        tokenizer: include_bytes!("../../models/dreamon/tokenizer.json"),
    },
];

/// The names of the bundled models, the default first.
pub fn names() -> Vec<&'static str> {
    BUNDLED.iter().map(|b| b.name).collect()
}

/// What messages call the embedded default model's files.
pub const NAME: &str = "<embedded default model>";

/// The embedded default model (see [`load_named`]).
pub fn load() -> Result<Model> {
    load_named("default")
}

/// A bundled model by name, natively after the memory check every checkpoint gets
/// (`memory::check`, so `UNMASK_MEMORY` holds here too), made for its weights as stored (f16,
/// used in place). (A wasm module's bound is its address space, checked by the bindings.)
pub fn load_named(name: &str) -> Result<Model> {
    let b = BUNDLED.iter().find(|b| b.name == name).ok_or_else(|| {
        crate::error::Error::input(format!(
            "no bundled model is called `{name}`; the bundled models are {}",
            names().join(", ")
        ))
    })?;
    let label = format!("<embedded {name} model>");
    let cfg = Config::parse(format!("{label}/config.json"), b.config)?;
    let weights = Weights::from_static(&format!("{label}/model.safetensors"), b.weights)?;
    #[cfg(not(target_arch = "wasm32"))]
    {
        let est = memory::estimate(&weights, Precision::Stored);
        memory::check(&label, &weights, &est, memory::machine_memory())?;
    }
    let tok = Tokenizer::from_bytes(&format!("{label}/tokenizer.json"), b.tokenizer)?;
    Model::from_parts(&cfg, &weights, Some(tok))
}
