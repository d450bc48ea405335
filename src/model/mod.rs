//! Models in Hugging Face layout: `config.json` → [`ModelSpec`] (the per-architecture facts),
//! `model.safetensors` → [`Weights`] → a [`Plan`] of ops, `tokenizer.json` → [`Tokenizer`].

pub mod arch;
pub mod config;
#[cfg(feature = "default-model")]
pub mod embedded;
pub mod matrix;
#[cfg(not(target_arch = "wasm32"))]
pub mod memory;
pub mod plan;
#[cfg(not(target_arch = "wasm32"))]
pub mod quantize;
pub mod stream;
pub mod weights;

#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;
use std::sync::Arc;

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::text::{CanvasRule, Tokenizer};
use config::Config;
use plan::Plan;
pub use weights::Weights;

/// The longest context a config may declare, in tokens (`model_length`,
/// `max_position_embeddings`, `max_sequence_length`): twice the longest of the supported
/// families (ModernBERT's 8192). One attention head's scores over a canvas this long take
/// 1 GiB of f32 on the CPU; a config beyond it is refused at load, naming the field.
pub const MAX_CONTEXT: usize = 16384;

/// dllm's block length for Qwen3 A2D BD3LM (`examples/a2d/bd3lm`, `block_size 32` in training
/// and sampling).
pub const BD3LM_BLOCK: usize = 32;

/// The most layers a config may declare (the largest released checkpoints have about 128);
/// every layer's tensors must also be in the weights.
pub const MAX_LAYERS: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    Mdlm,
    Bert,
    DistilBert,
    Roberta,
    ModernBert,
    Llada,
    Dream,
    /// UDLM (`kuleshov-group/udlm-lm1b`): MDLM's DiT, uniform-state.
    Udlm,
    /// Duo (`s-sahoo/duo`, `s-sahoo/duo-distilled`): MDLM's DiT, uniform-state.
    Duo,
    /// SEDD (`louaaron/sedd-small`): MDLM's DiT giving a log score, absorb or uniform graph.
    Sedd,
    /// Our Gaussian embedding diffusion (`train/continuous.py`): MDLM's DiT fed vectors.
    Gaussian,
    /// Our Analog Bits model (`train/continuous.py`): MDLM's DiT fed 12 bits per token.
    Bits,
    /// Qwen3 A2D (dllm's Tiny-A2D: `dllm-hub/Qwen3-0.6B-diffusion-{mdlm,bd3lm}-v0.1`).
    A2dQwen3,
}

impl Architecture {
    /// `model_type` as each family's config.json spells it (Dream's and Duo's are capitalised;
    /// Duo's is also seen lower-case). SEDD's config.json has none: it is recognised by its
    /// `tokens` or `graph` ([`Architecture::from_model_type`]).
    pub const ALL: [(&'static str, Architecture); 14] = [
        ("mdlm", Architecture::Mdlm),
        ("bert", Architecture::Bert),
        ("distilbert", Architecture::DistilBert),
        ("roberta", Architecture::Roberta),
        ("modernbert", Architecture::ModernBert),
        ("llada", Architecture::Llada),
        ("Dream", Architecture::Dream),
        ("udlm", Architecture::Udlm),
        ("DUO", Architecture::Duo),
        ("duo", Architecture::Duo),
        ("sedd", Architecture::Sedd),
        ("unmask-gaussian", Architecture::Gaussian),
        ("unmask-bits", Architecture::Bits),
        ("a2d-qwen3", Architecture::A2dQwen3),
    ];

    pub fn from_model_type(cfg: &Config) -> Result<Architecture> {
        // SEDD's config.json is its Hydra training config, written by PyTorchModelHubMixin
        // (louaaron/Score-Entropy-Discrete-Diffusion `SEDD(config)`): no model_type, but the
        // vocabulary in `tokens` and a `graph` section (one is enough to name what the other
        // lacks)
        if !cfg.has("model_type") && (cfg.has("tokens") || cfg.has("graph")) {
            return Ok(Architecture::Sedd);
        }
        let t = cfg.str("model_type")?;
        Architecture::ALL
            .iter()
            .find(|(name, _)| *name == t)
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                let names: Vec<&str> = Architecture::ALL.iter().map(|(n, _)| *n).collect();
                Error::config(
                    &cfg.path,
                    "model_type",
                    format!("unknown model type `{t}`; supported: {}", names.join(", ")),
                )
            })
    }

    pub fn name(self) -> &'static str {
        Architecture::ALL
            .iter()
            .find(|(_, a)| *a == self)
            .expect("listed")
            .0
    }
}

/// A tokenizer whose ids run past the model's rows is refused at load (its extra tokens have
/// no embedding and no logit); one with fewer ids is fine, since checkpoints pad their
/// embedding to a multiple of 8, 64 or 128 rows (ModernBERT 50368 rows for 50280 tokens,
/// LLaDA, MDLM's appended mask) and those rows are simply never proposed.
fn check_vocabulary(cfg: &Config, spec: &ModelSpec, tok: &Tokenizer) -> Result<()> {
    let ids = tok.id_bound();
    if ids > spec.vocab_size {
        let field = match spec.arch {
            Architecture::Llada if cfg.has("embedding_size") => "embedding_size",
            Architecture::Sedd => "tokens",
            _ => "vocab_size",
        };
        return Err(Error::Tokenizer {
            path: tok.path().to_string(),
            msg: format!(
                "has {ids} tokens but {} `{field}` is {}: ids {}..{ids} would have no row in the model (a tokenizer from another checkpoint?)",
                cfg.path, spec.vocab_size, spec.vocab_size
            ),
        });
    }
    Ok(())
}

/// How the raw logits are read as a distribution over clean tokens: MDLM's `_subs_parameterization`
/// (kuleshov-group/mdlm@c112c526d1:diffusion.py), Dream's `_sample` (its `generation_utils.py`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogitReading {
    /// MDLM "subs": mask column to −∞-like, log-softmax, unmasked rows carried over.
    Subs,
    /// MLMs and LLaDA: raw logits; the sampler must suppress the mask and special tokens.
    Raw,
    /// Dream: raw logits, but the prediction for position i sits in output row i − 1 (row 0 for
    /// position 0), as the model's `logits[:, :-1]` shift reads them.
    Shifted,
    /// UDLM and Duo: `log_softmax` over all columns; no column is suppressed and no row is
    /// carried over, since any position may change at every step (Duo's
    /// `DUO_BASE._process_model_output`, UDLM's `Diffusion.forward` with `d3pm`).
    LogSoftmax,
    /// SEDD: the output is a log score `log p_t(y)/p_t(x)` (`SEDD.forward`). With
    /// `scale_by_sigma` (absorb only), `log(e^σ − 1) + log(V − 1)` is subtracted; then the
    /// current token's entry is set to 0. The sampler uses `exp` of it.
    LogScore { scale_by_sigma: bool },
}

/// Which discrete diffusion a checkpoint was trained for: what a hole starts as and how a step moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Masking (MDLM, LLaDA, Dream, the MLMs): holes start as the mask token; committed tokens stay.
    Absorbing,
    /// Uniform-state (UDLM, Duo): holes start as uniform-random ids over `vocab_size` ids; any hole
    /// may change every step; time-conditioned on σ = −log α_t.
    Uniform,
    /// SEDD: the output is a log score (ratio p_t(y)/p_t(x)); `graph` says absorb or uniform.
    Score { uniform: bool },
    /// Continuous: VP Gaussian noise on learned unit-norm embeddings (Plaid, Diffusion-LM);
    /// holes start as N(0, I) vectors and condense into tokens.
    Gaussian,
    /// Continuous: VP Gaussian noise on a token's bits scaled to ±b (Analog Bits).
    Bits,
}

/// The noise schedule a checkpoint was trained with: the total noise σ(t) for t ∈ [0, 1] that
/// the model is conditioned on, and its rate g(t) = dσ/dt. SEDD's config names it (`noise.type`,
/// `noise.sigma_min`, `noise.sigma_max`; `noise_lib.py`); UDLM's and Duo's training configs use
/// the log-linear one with ε = 1e-3, which their config.json does not record.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Noise {
    /// `σ(t) = −log(1 − (1 − ε)·t)` (`LogLinearNoise`, ε = 1e-3; SEDD's config keeps
    /// `sigma_min`/`sigma_max` but this schedule ignores them).
    LogLinear { eps: f64 },
    /// `σ(t) = σ_min^(1−t) · σ_max^t` (`GeometricNoise`).
    Geometric { sigma_min: f64, sigma_max: f64 },
    /// The continuous families are variance-preserving and conditioned on γ = −log SNR, which
    /// stands in for σ here: α² = sigmoid(−γ), σ_z² = sigmoid(γ). Plaid's fixed linear γ(t) =
    /// γ0 + (γ1 − γ0)·t (`lib/models.py:NoiseSchedule` without the learned warp).
    LinearGamma { gamma_min: f64, gamma_max: f64 },
    /// Analog Bits' cosine ᾱ(t) = cos(((t + 2e-4)/(1 + 2.5e-4))·π/2)², so γ(t) = 2·log tan θ
    /// (`cosine_schedule_simple`).
    Cosine,
}

/// The levels of a variance-preserving schedule at one t.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Levels {
    pub alpha: f64,
    pub sigma: f64,
    /// −log SNR, what the network is conditioned on.
    pub gamma: f64,
}

/// θ(t) of the cosine schedule.
fn cosine_theta(t: f64) -> f64 {
    (t + 2e-4) / (1.0 + 2.5e-4) * std::f64::consts::FRAC_PI_2
}

impl Noise {
    /// The total noise σ(t) (`total_noise`).
    pub fn sigma(self, t: f64) -> f64 {
        match self {
            Noise::LogLinear { eps } => -(-(1.0 - eps) * t).ln_1p(),
            Noise::Geometric {
                sigma_min,
                sigma_max,
            } => sigma_min.powf(1.0 - t) * sigma_max.powf(t),
            Noise::LinearGamma {
                gamma_min,
                gamma_max,
            } => gamma_min + (gamma_max - gamma_min) * t,
            Noise::Cosine => 2.0 * cosine_theta(t).tan().ln(),
        }
    }

    /// α, σ and γ at t for a variance-preserving schedule (the continuous families), with
    /// α² = sigmoid(−γ) and σ² = sigmoid(γ) computed without cancelling.
    pub fn levels(self, t: f64) -> Levels {
        let gamma = self.sigma(t);
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        Levels {
            alpha: sig(-gamma).sqrt(),
            sigma: sig(gamma).sqrt(),
            gamma,
        }
    }

    /// The rate g(t) = dσ/dt (`rate_noise`).
    pub fn rate(self, t: f64) -> f64 {
        match self {
            Noise::LogLinear { eps } => (1.0 - eps) / (1.0 - (1.0 - eps) * t),
            Noise::Geometric {
                sigma_min,
                sigma_max,
            } => self.sigma(t) * (sigma_max.ln() - sigma_min.ln()),
            Noise::LinearGamma {
                gamma_min,
                gamma_max,
            } => gamma_max - gamma_min,
            Noise::Cosine => {
                let th = cosine_theta(t);
                4.0 * (std::f64::consts::FRAC_PI_2 / (1.0 + 2.5e-4)) / (2.0 * th).sin()
            }
        }
    }
}

impl Family {
    /// The family in words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Family::Absorbing => "masked (absorbing-state)",
            Family::Uniform => "uniform-state",
            Family::Score { uniform: false } => "score-entropy (SEDD, absorbing graph)",
            Family::Score { uniform: true } => "score-entropy (SEDD, uniform graph)",
            Family::Gaussian => "continuous (Gaussian on embeddings)",
            Family::Bits => "continuous (Analog Bits)",
        }
    }

    /// Whether the canvas holds vectors (the continuous families) rather than ids.
    pub fn is_continuous(self) -> bool {
        matches!(self, Family::Gaussian | Family::Bits)
    }
}

impl ModelSpec {
    /// The output row that holds the model's prediction for canvas position `pos`.
    pub fn logit_row(&self, pos: usize) -> usize {
        match self.logits {
            LogitReading::Shifted => pos.saturating_sub(1),
            LogitReading::Subs
            | LogitReading::Raw
            | LogitReading::LogSoftmax
            | LogitReading::LogScore { .. } => pos,
        }
    }

    /// [`logit_row`](ModelSpec::logit_row) of each position: the rows a denoiser's head reads
    /// to predict `positions`.
    pub fn logit_rows(&self, positions: &[usize]) -> Vec<usize> {
        positions.iter().map(|&p| self.logit_row(p)).collect()
    }
}

/// The expand token's text (families-reference §6(a)). It lives with the model, which detects
/// it in the tokenizer; `diffusion::expand` re-exports it (model/ never imports diffusion/).
pub const EXPAND: &str = "<|expand|>";

/// The token ids of DreamOn's two length moves (families-reference §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Growth {
    /// `<|expand|>`: committed in a hole, it becomes two masks.
    pub expand: u32,
    /// `<|endoftext|>`: committed in a hole, it deletes itself and the masks to its right.
    pub end: u32,
}

/// A model grows holes when its tokenizer has an `<|expand|>` token inside the model's
/// vocabulary and an `<|endoftext|>` to delete with. DreamOn's config is plain Dream, so the
/// tokenizer is where it shows (its expand id, 151667, is hard-coded in DreamOn's code; the
/// string `<|expand|>` is the one its checkpoint's tokenizer carries, families-reference §6(a)).
fn growth_ids(tok: &crate::text::Tokenizer, spec: &ModelSpec) -> Option<Growth> {
    if spec.family != Family::Absorbing {
        return None;
    }
    let v = spec.vocab_size as u32;
    let expand = tok.token_to_id(EXPAND).filter(|&i| i < v)?;
    let end = tok.token_to_id("<|endoftext|>").filter(|&i| i < v)?;
    Some(Growth { expand, end })
}

/// The mask token, by id (in the config) or by its text (resolved through the tokenizer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MaskToken {
    Id(u32),
    Text(&'static str),
    /// No mask state: a uniform-state model (UDLM, Duo, SEDD's uniform graph) starts its holes
    /// as random ids, so no id means "masked".
    None,
}

/// Per-architecture facts, all decided in `model/arch/<name>.rs` and nowhere else.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    pub arch: Architecture,
    /// The discrete diffusion the checkpoint was trained for.
    pub family: Family,
    /// The noise schedule σ(t) it was trained with, where the config or the family fixes one
    /// (UDLM, Duo, SEDD); `None` for the others.
    pub noise: Option<Noise>,
    /// Rows of the output logits.
    pub vocab_size: usize,
    /// Longest canvas the model accepts.
    pub max_len: usize,
    pub mask: MaskToken,
    pub pad_id: Option<u32>,
    /// Number of token types (`token_type_ids` must be below it); 0 = none.
    pub type_vocab: usize,
    /// Time conditioning (MDLM with `time_conditioning`, UDLM, Duo, SEDD): σ changes the output.
    pub time_conditioning: bool,
    pub logits: LogitReading,
    /// The field of config.json that `max_len` comes from, for error messages.
    pub max_len_field: &'static str,
    /// How an infill canvas is framed with special tokens.
    pub canvas: CanvasRule,
    /// The continuous families: the width of a position's vector, the clean vector of each id
    /// and how the output reads (shared with the plan; kept when a GPU takes the weights).
    pub vectors: Option<VectorSpec>,
    /// Block diffusion (BD3LM): attention is block-causal over blocks of this many positions
    /// from position 0, and the sampler finishes each block before the next. `None`: every
    /// position attends to every other.
    pub attention_blocks: Option<usize>,
}

/// What the sampler of a continuous family needs beside the network.
#[derive(Clone, Debug)]
pub struct VectorSpec {
    pub width: usize,
    /// `[V, width]` f32: unit-norm embeddings, or each id's bits at ±scale.
    pub table: Arc<matrix::Matrix>,
    pub readout: plan::Readout,
}

impl VectorSpec {
    /// The clean vector of `id`.
    pub fn clean(&self, id: u32, out: &mut [f32]) {
        self.table.rows_f32(id as usize, id as usize + 1, out);
    }
}

/// A loaded model: its facts, its forward plan (the checkpoint as it is, shared with the
/// backends that run it) and, when the folder has one, its tokenizer. Data only: which backend
/// runs it is decided in [`crate::engine`].
pub struct Model {
    pub spec: ModelSpec,
    /// The forward plan while the host holds it ([`Model::plan`]). A GPU attach natively drops
    /// it once the device holds the weights: the model then keeps its spec and tokenizer only,
    /// so no half-released plan exists to be read.
    plan: Option<Arc<Plan>>,
    pub tokenizer: Option<Tokenizer>,
    /// What the load tolerated but a user may want to know (tensors of the checkpoint the
    /// model does not use), one sentence each; surfaces print them on stderr.
    pub warnings: Vec<String>,
}

impl Model {
    /// Loads `config.json`, `model.safetensors` (or its sharded index) and, if present,
    /// `tokenizer.json` from a folder.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &Path) -> Result<Model> {
        if !dir.is_dir() {
            return Err(Error::file(
                dir.display(),
                "not a folder (expected config.json, model.safetensors, tokenizer.json)",
            ));
        }
        let cfg_path = dir.join("config.json");
        if cfg_path.exists() {
            weights::regular_file(&cfg_path)?;
        }
        let text =
            std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(cfg_path.display(), e))?;
        let cfg = Config::parse(cfg_path.display().to_string(), &text)?;
        let weights = Weights::open_dir(dir)?;
        let tok_path = dir.join("tokenizer.json");
        // a tokenizer.json that is not a regular file is refused, not taken for no tokenizer
        let tokenizer = if std::fs::symlink_metadata(&tok_path).is_ok() {
            weights::regular_file(&tok_path)?;
            Some(Tokenizer::from_file(&tok_path)?)
        } else {
            None
        };
        Model::from_parts(&cfg, &weights, tokenizer)
    }

    /// Qwen3 A2D's MDLM and BD3LM checkpoints share a config, and no file of theirs says which
    /// attention they were trained with; their repositories' names do
    /// (`dllm-hub/Qwen3-0.6B-diffusion-bd3lm-v0.1`), and so does every path the Hugging Face
    /// cache stores them under (`models--dllm-hub--…-bd3lm-v0.1/snapshots/…`). A folder path
    /// naming `bd3lm` loads with dllm's block of 32 and says so (`engine::Attention::Auto`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn attention_from_name(&mut self, dir: &Path) -> Result<()> {
        if self.spec.arch != Architecture::A2dQwen3 || self.spec.attention_blocks.is_some() {
            return Ok(());
        }
        let path = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let named = path.components().any(|c| {
            c.as_os_str()
                .to_string_lossy()
                .to_lowercase()
                .contains("bd3lm")
        });
        if named {
            self.set_attention(Some(BD3LM_BLOCK))?;
            self.warnings.push(format!(
                "{}: taken as a BD3LM checkpoint from its path (block-causal attention, blocks of {BD3LM_BLOCK}); `--attention full` or `block:N` says otherwise",
                dir.display()
            ));
        }
        Ok(())
    }

    /// Builds a model from an already-parsed config, weights and tokenizer (the browser,
    /// embedded models, benchmarks).
    pub fn from_parts(
        cfg: &Config,
        weights: &Weights,
        tokenizer: Option<Tokenizer>,
    ) -> Result<Model> {
        let (spec, plan) = arch::build(cfg, weights)?;
        let mut warnings = Vec::new();
        let unused = weights.unused();
        if !unused.is_empty() {
            const SHOWN: usize = 5;
            let mut list = unused[..unused.len().min(SHOWN)].join("`, `");
            if unused.len() > SHOWN {
                list.push_str(&format!("` and {} more", unused.len() - SHOWN));
            } else {
                list.push('`');
            }
            warnings.push(format!(
                "{}: {} tensor(s) not used by a {} model, ignored: `{list}",
                weights.origin(),
                unused.len(),
                spec.arch.name()
            ));
        }
        let tokenizer = match tokenizer {
            Some(tok) if spec.arch == Architecture::A2dQwen3 => {
                Some(arch::qwen3::add_mask_token(&spec, tok, cfg, &mut warnings)?)
            }
            t => t,
        };
        if let Some(tok) = &tokenizer {
            check_vocabulary(cfg, &spec, tok)?;
        }
        let mut spec = spec;
        let growth = tokenizer.as_ref().and_then(|t| growth_ids(t, &spec));
        if growth.is_some() && spec.arch == Architecture::Dream {
            // DreamOn: a Dream checkpoint taught `<|expand|>`, prompted `[BOS] … [EOS]`
            spec.canvas = crate::text::CanvasRule::BosEos("<|beginoftext|>", "<|endoftext|>");
        }
        let model = Model {
            spec,
            plan: Some(Arc::new(plan)),
            tokenizer,
            warnings,
        };
        model.mask_id()?;
        Ok(model)
    }

    /// The mask token id. For architectures that name their mask by text it needs the tokenizer.
    pub fn mask_id(&self) -> Result<Option<u32>> {
        match &self.spec.mask {
            MaskToken::Id(id) => Ok(Some(*id)),
            MaskToken::None => Ok(None),
            MaskToken::Text(t) => match &self.tokenizer {
                None => Ok(None),
                Some(tok) => tok
                    .token_to_id(t)
                    .map(Some)
                    .ok_or_else(|| Error::Tokenizer {
                        path: tok.path().to_string(),
                        msg: format!(
                            "has no `{t}` token, which a {} model uses as its mask",
                            self.spec.arch.name()
                        ),
                    }),
            },
        }
    }

    /// Checks a batch against the model before anything is computed.
    pub fn check(&self, batch: &Batch) -> Result<()> {
        let spec = &self.spec;
        if batch.size == 0 || batch.len == 0 {
            return Err(Error::input("empty input: no tokens to run"));
        }
        let cells = batch.size * batch.len;
        let lengths = [
            ("input_ids", Some(batch.ids.len()), cells),
            (
                "attention_mask",
                batch.attention_mask.as_ref().map(Vec::len),
                cells,
            ),
            (
                "token_type_ids",
                batch.token_types.as_ref().map(Vec::len),
                cells,
            ),
            ("sigma", batch.sigma.as_ref().map(Vec::len), batch.size),
        ];
        for (name, got, want) in lengths {
            if let Some(got) = got.filter(|&g| g != want) {
                return Err(Error::input(format!(
                    "{name} has {got} values, expected {want} for a batch of {} x {}",
                    batch.size, batch.len
                )));
            }
        }
        if batch.len > spec.max_len {
            return Err(Error::input(format!(
                "sequence length {} exceeds the model's maximum of {} (config.json `{}`)",
                batch.len, spec.max_len, spec.max_len_field
            )));
        }
        if let Some(i) = batch
            .ids
            .iter()
            .position(|&t| t as usize >= spec.vocab_size)
        {
            return Err(Error::input(format!(
                "input_ids[{}, {}] = {} is outside the vocabulary (size {})",
                i / batch.len,
                i % batch.len,
                batch.ids[i],
                spec.vocab_size
            )));
        }
        if let Some(tt) = &batch.token_types {
            if let Some(i) = tt
                .iter()
                .position(|&t| t as usize >= spec.type_vocab.max(1))
            {
                return Err(Error::input(format!(
                    "token_type_ids[{}, {}] = {} is out of range (the model has {} token types)",
                    i / batch.len,
                    i % batch.len,
                    tt[i],
                    spec.type_vocab.max(1)
                )));
            }
        }
        if let Some(s) = &batch.sigma {
            if let Some(i) = s.iter().position(|v| !v.is_finite() || *v < 0.0) {
                return Err(Error::input(format!(
                    "sigma[{i}] = {} is not a finite, non-negative noise level",
                    s[i]
                )));
            }
        }
        if spec.logits
            == (LogitReading::LogScore {
                scale_by_sigma: true,
            })
        {
            // SEDD absorb divides its score by e^σ − 1: σ = 0 (or none given) has no score
            let zero = match &batch.sigma {
                None => Some(0),
                Some(s) => s.iter().position(|&v| v <= 0.0),
            };
            if let Some(i) = zero {
                return Err(Error::input(format!(
                    "sigma[{i}] is 0 (or no sigma was given): a SEDD absorb model's score is scaled by 1/(e^σ − 1), so each row needs σ > 0"
                )));
            }
        }
        Ok(())
    }

    /// The forward plan, or an error naming why it is gone: the weights were handed to a GPU
    /// and the host copy dropped ([`Model::drop_plan`]).
    pub fn plan(&self) -> Result<&Arc<Plan>> {
        self.plan.as_ref().ok_or_else(|| {
            Error::input(
                "this model's weights live on the GPU (the host copy was dropped after the upload); load it again to run it on the CPU",
            )
        })
    }

    /// The plan, to change it in place (preparing it for a backend; tests that break one
    /// convention). Only possible while the host holds it and no backend shares it.
    pub fn plan_mut(&mut self) -> Option<&mut Plan> {
        self.plan.as_mut().and_then(Arc::get_mut)
    }

    /// Which attention the checkpoint was trained with, where its files cannot say: Qwen3 A2D's
    /// MDLM and BD3LM checkpoints share one config (families-reference §7). `None`: every
    /// position sees every other (MDLM); `Some(n)`: block-causal over blocks of `n` positions
    /// from position 0 (BD3LM, trained with blocks of 32). Before a backend takes the weights.
    pub fn set_attention(&mut self, blocks: Option<usize>) -> Result<()> {
        if self.spec.arch != Architecture::A2dQwen3 {
            return Err(Error::input(format!(
                "the attention option applies to Qwen3 A2D checkpoints (a2d-qwen3), whose MDLM and BD3LM variants share one config; a {} model's attention is fixed by its architecture",
                self.spec.arch.name()
            )));
        }
        if blocks == Some(0) {
            return Err(Error::input(
                "a block-causal attention needs blocks of at least 1 position",
            ));
        }
        let keys = blocks.map_or(plan::Keys::All, plan::Keys::BlockCausal);
        let plan = self.plan_mut().ok_or_else(|| {
            Error::input("the attention is set before the model is attached to a backend")
        })?;
        for b in &mut plan.blocks {
            b.keys = keys;
        }
        self.spec.attention_blocks = blocks;
        Ok(())
    }

    /// Puts `plan` in place of the model's own (a backend's form of the same weights).
    pub fn set_plan(&mut self, plan: Plan) {
        self.plan = Some(Arc::new(plan));
    }

    /// Drops the host's plan once a GPU holds the weights (a memory map natively is unmapped
    /// once no matrix borrows it). The spec and tokenizer stay: the sampler needs nothing else.
    pub fn drop_plan(&mut self) {
        self.plan = None;
    }

    /// The tokens that grow and shrink holes (DreamOn, `diffusion::expand`), when the model's
    /// vocabulary has them: `<|expand|>`, and the end token that deletes.
    pub fn growth(&self) -> Option<Growth> {
        growth_ids(self.tokenizer.as_ref()?, &self.spec)
    }

    /// The model's own mask string (`<mask>`, `<|mdm_mask|>`), when its tokenizer has one.
    pub fn mask_text(&self) -> Option<String> {
        match &self.spec.mask {
            MaskToken::Text(t) => Some(t.to_string()),
            MaskToken::Id(id) => self.tokenizer.as_ref().and_then(|t| t.id_to_token(*id)),
            MaskToken::None => None,
        }
    }
}
