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
pub use target::{fits, target, DeviceFormat, Need, Target};

use crate::backend::{cpu, Denoiser, ForwardOutput};
use crate::batch::Batch;
use crate::diffusion::{reading, subs, Infiller};
use crate::error::{Error, Result};
use crate::model::matrix::Precision;
use crate::model::plan::Plan;
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
    /// The precision the weight matrices are held in: as stored (f16/bf16 in place), widened
    /// to f32, or quantised to q8_0 or q4_0.
    pub precision: Precision,
    /// Which attention a checkpoint whose files cannot say was trained with (Qwen3 A2D).
    pub attention: Attention,
}

/// The attention a Qwen3 A2D checkpoint runs with ([`Model::set_attention`]); as a string
/// `auto`, `full` or `block:N`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Attention {
    /// The config's `block_size` where it has one; else block-causal with blocks of 32 when the
    /// folder's path names `bd3lm`; else every position sees every other.
    #[default]
    Auto,
    /// Every position sees every other (the MDLM checkpoint).
    Full,
    /// Block-causal over blocks of this many positions (the BD3LM checkpoint: 32).
    Blocks(usize),
}

impl TryFrom<String> for Attention {
    type Error = crate::Error;
    fn try_from(s: String) -> Result<Attention> {
        s.parse()
    }
}

impl From<Attention> for String {
    fn from(a: Attention) -> String {
        match a {
            Attention::Auto => "auto".into(),
            Attention::Full => "full".into(),
            Attention::Blocks(n) => format!("block:{n}"),
        }
    }
}

impl std::str::FromStr for Attention {
    type Err = crate::Error;
    /// `auto`, `full` or `block:N`.
    fn from_str(s: &str) -> Result<Attention> {
        match s {
            "auto" => Ok(Attention::Auto),
            "full" => Ok(Attention::Full),
            _ => match s.strip_prefix("block:").map(str::parse::<usize>) {
                Some(Ok(n)) if n > 0 => Ok(Attention::Blocks(n)),
                _ => Err(crate::Error::input(format!(
                    "attention `{s}`: expected auto, full or block:N with N at least 1"
                ))),
            },
        }
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            fold_adaln: true,
            precision: Precision::Stored,
            attention: Attention::Auto,
        }
    }
}

impl LoadOptions {
    pub fn precision(precision: Precision) -> LoadOptions {
        LoadOptions {
            precision,
            ..LoadOptions::default()
        }
    }
}

/// Prepares a model's plan for any backend: with `fold_adaln`, a constant modulation becomes
/// plain norms and linears (`backend::cpu::modulate::fold_constant`); then the matrices are put
/// in the precision asked for (after folding, which computes new values in f32). A weight the
/// precision cannot hold (q8: NaN, ±∞, |w| past 8.3e6; q4: past 5.2e5) is an error naming the
/// matrix. What only one backend wants happens when the model is attached to it
/// ([`Target::attach`]): the CPU packs panels ([`for_cpu`]), a GPU uploads.
pub fn prepare(mut model: Model, opts: LoadOptions) -> Result<Model> {
    match opts.attention {
        Attention::Auto => {}
        Attention::Full => model.set_attention(None)?,
        Attention::Blocks(n) => model.set_attention(Some(n))?,
    }
    if let Some(plan) = model.plan_mut() {
        if opts.fold_adaln {
            cpu::modulate::fold_constant(plan);
        }
        if opts.precision != Precision::Stored {
            *plan = plan.converted(opts.precision)?;
        }
    }
    Ok(model)
}

/// The model in the form the CPU backend multiplies fastest: f32 matrices in panels where the
/// panel kernel runs (AVX2/AVX-512), in place when no one else holds the plan (a load peaks at
/// one matrix above the model), on a copy otherwise.
pub fn for_cpu(model: &mut Model) -> Result<()> {
    if let Ok(plan) = model.plan() {
        if plan.matrices().iter().any(|m| m.on_device()) {
            return Err(Error::Input(
                "this model's weights were streamed to the GPU as they loaded: it runs only there (load it again for the CPU)".into(),
            ));
        }
    }
    if !cpu::panels::available() {
        return Ok(());
    }
    if let Some(plan) = model.plan_mut() {
        plan.into_panels();
        return Ok(());
    }
    let mut plan = Plan::clone(model.plan()?);
    plan.into_panels();
    model.set_plan(plan);
    Ok(())
}

/// A model folder in Hugging Face layout, prepared for execution.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_model(dir: &std::path::Path) -> Result<Model> {
    load_model_with(dir, LoadOptions::default())
}

/// Refuses, before reading any weight, a checkpoint that this machine's memory cannot hold in
/// the precision asked for (see [`crate::model::memory`]).
#[cfg(not(target_arch = "wasm32"))]
pub fn load_model_with(dir: &std::path::Path, opts: LoadOptions) -> Result<Model> {
    // a folder whose weights do not open gets Model::load's own error instead
    if let Ok(w) = crate::model::Weights::open_dir(dir) {
        use crate::model::memory;
        let est = memory::estimate(&w, opts.precision);
        memory::check(
            &dir.display().to_string(),
            &w,
            &est,
            memory::machine_memory(),
        )?;
    }
    let mut model = Model::load(dir)?;
    if opts.attention == Attention::Auto {
        model.attention_from_name(dir)?;
    }
    prepare(model, opts)
}

/// What loading `dir` in `precision` will take, from the headers alone.
#[cfg(not(target_arch = "wasm32"))]
pub fn memory_estimate(
    dir: &std::path::Path,
    precision: Precision,
) -> Result<crate::model::memory::Estimate> {
    let w = crate::model::Weights::open_dir(dir)?;
    Ok(crate::model::memory::estimate(&w, precision))
}

/// The embedded default model, prepared for execution.
#[cfg(feature = "default-model")]
pub fn default_model() -> Result<Model> {
    default_model_with(LoadOptions::default())
}

#[cfg(feature = "default-model")]
pub fn default_model_with(opts: LoadOptions) -> Result<Model> {
    bundled_model_with("default", opts)
}

/// A bundled model by name (`default`, `uniform`: [`crate::model::embedded::names`]),
/// prepared for execution.
#[cfg(feature = "default-model")]
pub fn bundled_model_with(name: &str, opts: LoadOptions) -> Result<Model> {
    prepare(crate::model::embedded::load_named(name)?, opts)
}

/// An infiller on the CPU.
pub fn cpu_infiller(mut model: Model) -> Result<Engine> {
    for_cpu(&mut model)?;
    let d = AnyDenoiser::cpu(&model)?;
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
    /// Log-probabilities `[B, L, V]`: MDLM's "subs", UDLM's and Duo's plain log-softmax.
    pub log_probs: Option<Tensor>,
    /// SEDD's log score `[B, L, V]` (`SEDD.forward`: scaled by σ for absorb, 0 at the current
    /// token).
    pub log_score: Option<Tensor>,
}

/// The forward contract (`unmask forward`): checks the batch, runs every position and reads
/// the logits as the model's family does: MDLM through subs, UDLM and Duo through a plain
/// log-softmax, SEDD as a log score. A non-finite logit at a real position is an error
/// ([`Error::NonFiniteLogits`](crate::error::Error::NonFiniteLogits)), on every backend, as it
/// is for the sampler: logits are never handed on with a NaN in them.
pub async fn forward(
    model: &Model,
    denoiser: &mut impl Denoiser,
    batch: &Batch,
    capture: bool,
) -> Result<Forward> {
    model.check(batch)?;
    let out = denoiser.forward(batch, capture).await?;
    check_finite(&out.logits, batch)?;
    let (mut log_probs, mut log_score) = (None, None);
    match model.spec.logits {
        LogitReading::Subs => {
            let mask = model.mask_id()?.ok_or_else(|| {
                crate::error::Error::input("a subs model without a mask token id")
            })?;
            log_probs = Some(subs::log_probs(&out.logits, &batch.ids, mask));
        }
        LogitReading::LogSoftmax => log_probs = Some(reading::log_softmax(&out.logits)),
        LogitReading::LogScore { scale_by_sigma } => {
            let sigma = (0..batch.size)
                .map(|b| batch.row(b).sigma)
                .collect::<Vec<_>>();
            log_score = Some(reading::log_score(
                &out.logits,
                &batch.ids,
                &sigma,
                scale_by_sigma,
            ));
        }
        LogitReading::Raw | LogitReading::Shifted => {}
    }
    Ok(Forward {
        out,
        log_probs,
        log_score,
    })
}

/// The first non-finite logit at a real position of `[B, L, V]` logits, as an error.
fn check_finite(logits: &Tensor, batch: &Batch) -> Result<()> {
    let v = logits.cols();
    for (r, row) in logits.data.chunks_exact(v.max(1)).enumerate() {
        let (sequence, i) = (r / batch.len.max(1), r % batch.len.max(1));
        if !batch.is_real(sequence, i) {
            continue;
        }
        if let Some(column) = row.iter().position(|x| !x.is_finite()) {
            return Err(crate::error::Error::NonFiniteLogits {
                sequence,
                row: i,
                column,
                value: row[column],
            });
        }
    }
    Ok(())
}
