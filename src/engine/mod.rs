//! The engine layer: turns a loaded [`Model`] (data) into something that runs. It prepares the
//! plan for execution (load-time folding), chooses a backend (`auto` skips software adapters,
//! and says why as data), attaches it, and offers the entry points every surface shares:
//! [`infiller`] for filling templates and [`forward`] for the raw forward contract.
//!
//! `diffusion/` never sees which backend runs: it is generic over [`Denoiser`], and
//! [`AnyDenoiser`] is the one place that matches on the backend.

mod denoiser;
mod select;
mod target;

pub use denoiser::AnyDenoiser;
pub use select::{BackendChoice, DeviceOptions, Reason, Selection, WeightFormat};
pub use target::{fits, target, Target};

use crate::backend::{cpu, Denoiser, ForwardOutput};
use crate::batch::Batch;
use crate::diffusion::{subs, Infiller};
use crate::error::Result;
use crate::model::{LogitReading, Model};
use crate::tensor::Tensor;

/// A model attached to the backend the engine chose.
pub type Engine = Infiller<AnyDenoiser>;

/// How a checkpoint is prepared for execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LoadOptions {
    /// Fold MDLM's constant adaLN modulation into the weights when σ is always zero.
    pub fold_adaln: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { fold_adaln: true }
    }
}

/// Prepares a model's plan for execution: with `fold_adaln`, a constant modulation becomes
/// plain norms and linears (`backend::cpu::modulate::fold_constant`).
pub fn prepare(mut model: Model, opts: LoadOptions) -> Model {
    if opts.fold_adaln {
        if let Some(plan) = model.plan_mut() {
            cpu::modulate::fold_constant(plan);
        }
    }
    model
}

/// A model folder in Hugging Face layout, prepared for execution.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_model(dir: &std::path::Path) -> Result<Model> {
    load_model_with(dir, LoadOptions::default())
}

#[cfg(not(target_arch = "wasm32"))]
pub fn load_model_with(dir: &std::path::Path, opts: LoadOptions) -> Result<Model> {
    Ok(prepare(Model::load(dir)?, opts))
}

/// The embedded default model, prepared for execution.
#[cfg(feature = "default-model")]
pub fn default_model() -> Result<Model> {
    Ok(prepare(
        crate::model::embedded::load()?,
        LoadOptions::default(),
    ))
}

/// An infiller on the CPU.
pub fn cpu_infiller(model: Model) -> Result<Engine> {
    let d = AnyDenoiser::cpu(&model);
    Infiller::new(model, d)
}

/// An infiller on the backend `device` asks for, warmed up; the selection says which and why.
pub async fn infiller(model: Model, device: DeviceOptions) -> Result<(Engine, Selection)> {
    let target = target(device).await?;
    let selection = target.selection.clone();
    let mut engine = target.attach(model).await?;
    engine.denoiser.warm_up().await?;
    Ok((engine, selection))
}

/// The output of [`forward`].
pub struct Forward {
    pub out: ForwardOutput,
    /// MDLM "subs" log-probabilities `[B, L, V]`.
    pub log_probs: Option<Tensor>,
}

/// The forward contract (`unmask forward`): checks the batch, runs every position and, for
/// MDLM, reads the logits through subs.
pub async fn forward(
    model: &Model,
    denoiser: &mut impl Denoiser,
    batch: &Batch,
    capture: bool,
) -> Result<Forward> {
    model.check(batch)?;
    let out = denoiser.forward(batch, capture).await?;
    let log_probs = match model.spec.logits {
        LogitReading::Subs => {
            let mask = model.mask_id()?.expect("subs models carry their mask id");
            Some(subs::log_probs(&out.logits, &batch.ids, mask))
        }
        LogitReading::Raw | LogitReading::Shifted => None,
    };
    Ok(Forward { out, log_probs })
}
