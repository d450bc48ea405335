//! Models in Hugging Face layout: `config.json` → [`ModelSpec`] (the per-architecture facts),
//! `model.safetensors` → [`Weights`] → a [`Plan`] of ops, `tokenizer.json` → [`Tokenizer`].

pub mod arch;
pub mod config;
#[cfg(feature = "default-model")]
pub mod embedded;
pub mod plan;
pub mod weights;

use std::collections::HashMap;
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::backend::gpu::forward::{GpuModel, GpuSession};
use crate::backend::gpu::Gpu;
use crate::backend::{cpu, Backend, ForwardOutput};
use crate::batch::Batch;
use crate::diffusion::subs;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::text::{CanvasRule, Tokenizer};
use config::Config;
use plan::Plan;
pub use weights::Weights;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    Mdlm,
    Bert,
    DistilBert,
    Roberta,
    ModernBert,
    Llada,
}

impl Architecture {
    pub const ALL: [(&'static str, Architecture); 6] = [
        ("mdlm", Architecture::Mdlm),
        ("bert", Architecture::Bert),
        ("distilbert", Architecture::DistilBert),
        ("roberta", Architecture::Roberta),
        ("modernbert", Architecture::ModernBert),
        ("llada", Architecture::Llada),
    ];

    pub fn from_model_type(cfg: &Config) -> Result<Architecture> {
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

/// How the raw logits are read as a distribution over clean tokens (dlm-reference §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogitReading {
    /// MDLM "subs": mask column to −∞-like, log-softmax, unmasked rows carried over.
    Subs,
    /// MLMs and LLaDA: raw logits; the sampler must suppress the mask and special tokens.
    Raw,
}

/// The mask token, by id (in the config) or by its text (resolved through the tokenizer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MaskToken {
    Id(u32),
    Text(&'static str),
}

/// Per-architecture facts, all decided in `model/arch/<name>.rs` and nowhere else.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    pub arch: Architecture,
    /// Rows of the output logits.
    pub vocab_size: usize,
    /// Longest canvas the model accepts.
    pub max_len: usize,
    pub mask: MaskToken,
    pub pad_id: Option<u32>,
    /// Number of token types (`token_type_ids` must be below it); 0 = none.
    pub type_vocab: usize,
    /// MDLM time conditioning: σ changes the output.
    pub time_conditioning: bool,
    pub logits: LogitReading,
    /// The field of config.json that `max_len` comes from, for error messages.
    pub max_len_field: &'static str,
    /// How an infill canvas is framed with special tokens.
    pub canvas: CanvasRule,
}

#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// Fold MDLM's constant adaLN modulation into the weights when `time_conditioning` is false.
    pub fold_adaln: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { fold_adaln: true }
    }
}

/// A loaded model: its facts, its forward plan and (when the folder has one) its tokenizer.
pub struct Model {
    pub spec: ModelSpec,
    pub plan: Plan,
    pub tokenizer: Option<Tokenizer>,
    /// The plan's weights on a GPU, once attached.
    pub gpu: Option<GpuState>,
}

/// A model's weights on the device and its per-canvas-length sessions.
pub struct GpuState {
    pub model: GpuModel,
    sessions: Mutex<HashMap<usize, GpuSession>>,
}

impl GpuState {
    /// Head rows one call may take: the canvas, or fewer when the logits would pass a binding.
    pub fn max_rows(&self, len: usize) -> usize {
        let per_row = (self.model.vocab * 4) as u64;
        (self.model.gpu.max_binding() / per_row).clamp(1, len.max(1) as u64) as usize
    }

    /// Runs `f` on the session for canvases of `len` tokens, creating it on first use.
    pub fn with_session<T>(
        &self,
        len: usize,
        f: impl FnOnce(&GpuModel, &mut GpuSession) -> Result<T>,
    ) -> Result<T> {
        let mut sessions = self
            .sessions
            .lock()
            .map_err(|_| Error::Gpu(String::from("a previous call panicked")))?;
        let session = match sessions.entry(len) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(self.model.session(len, self.max_rows(len))?)
            }
        };
        f(&self.model, session)
    }
}

/// The output of [`Model::forward`].
pub struct Forward {
    pub out: ForwardOutput,
    /// MDLM "subs" log-probabilities `[B, L, V]`.
    pub log_probs: Option<Tensor>,
}

impl Model {
    /// Loads `config.json`, `model.safetensors` (or its sharded index) and, if present,
    /// `tokenizer.json` from a folder.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &Path) -> Result<Model> {
        Model::load_with(dir, LoadOptions::default())
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_with(dir: &Path, opts: LoadOptions) -> Result<Model> {
        if !dir.is_dir() {
            return Err(Error::file(
                dir.display(),
                "not a folder (expected config.json, model.safetensors, tokenizer.json)",
            ));
        }
        let cfg_path = dir.join("config.json");
        let text =
            std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(cfg_path.display(), e))?;
        let cfg = Config::parse(cfg_path.display().to_string(), &text)?;
        let weights = Weights::open_dir(dir)?;
        let tok_path = dir.join("tokenizer.json");
        let tokenizer = if tok_path.is_file() {
            Some(Tokenizer::from_file(&tok_path)?)
        } else {
            None
        };
        Model::from_parts(&cfg, &weights, tokenizer, opts)
    }

    /// Builds a model from an already-parsed config, weights and tokenizer (the browser,
    /// embedded models, benchmarks).
    pub fn from_parts(
        cfg: &Config,
        weights: &Weights,
        tokenizer: Option<Tokenizer>,
        opts: LoadOptions,
    ) -> Result<Model> {
        let (spec, plan) = arch::build(cfg, weights, opts)?;
        let model = Model {
            spec,
            plan,
            tokenizer,
            gpu: None,
        };
        model.mask_id()?;
        Ok(model)
    }

    /// The mask token id. For architectures that name their mask by text it needs the tokenizer.
    pub fn mask_id(&self) -> Result<Option<u32>> {
        match &self.spec.mask {
            MaskToken::Id(id) => Ok(Some(*id)),
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
        Ok(())
    }

    /// Uploads the plan's weights to `gpu` (f16 pairs, or f32 when `f16` is false), so that
    /// `Backend::Gpu` can run it.
    /// Natively this also warms the shaders up: a one-token forward pass compiles every
    /// pipeline the plan uses, so the first real step does not pay for it.
    pub fn attach_gpu(&mut self, gpu: Arc<Gpu>, f16: bool) -> Result<()> {
        let state = GpuState {
            model: GpuModel::upload(gpu, &self.plan, f16)?,
            sessions: Mutex::new(HashMap::new()),
        };
        #[cfg(not(target_arch = "wasm32"))]
        {
            let mut warm = state.model.session(1, 1)?;
            let row = cpu::Row {
                ids: &[0],
                key_mask: None,
                token_types: None,
                sigma: 0.0,
            };
            pollster::block_on(warm.logits(&state.model, &row, &[0]))?;
        }
        self.gpu = Some(state);
        Ok(())
    }

    pub fn gpu_state(&self) -> Result<&GpuState> {
        self.gpu.as_ref().ok_or_else(|| {
            Error::input("the GPU backend was asked for, but no GPU is attached to this model")
        })
    }

    /// GPU logits of `rows` of one canvas, in as many head calls as the binding limit needs.
    /// Blocking; the browser uses `GpuSession`'s async methods directly.
    #[cfg(target_arch = "wasm32")]
    fn gpu_logits(&self, _row: &cpu::Row, _rows: &[usize]) -> Result<Vec<f32>> {
        Err(Error::input(
            "the blocking GPU path is native-only; await GpuSession in the browser",
        ))
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn gpu_logits(&self, row: &cpu::Row, rows: &[usize]) -> Result<Vec<f32>> {
        let st = self.gpu_state()?;
        let cap = st.max_rows(row.ids.len());
        let mut out = Vec::with_capacity(rows.len() * self.spec.vocab_size);
        for part in rows.chunks(cap) {
            out.extend(st.with_session(row.ids.len(), |m, s| {
                pollster::block_on(s.logits(m, row, part))
            })?);
        }
        Ok(out)
    }

    /// The model's own mask string (`<mask>`, `<|mdm_mask|>`), when its tokenizer has one.
    pub fn mask_text(&self) -> Option<String> {
        match &self.spec.mask {
            MaskToken::Text(t) => Some(t.to_string()),
            MaskToken::Id(id) => self.tokenizer.as_ref().and_then(|t| t.id_to_token(*id)),
        }
    }

    /// Logits `[rows.len(), V]` at the given positions of one canvas: the backbone over the whole
    /// canvas, the head only on those rows (the masked ones, in the sampler).
    pub fn denoise(
        &self,
        ids: &[u32],
        rows: &[usize],
        sigma: f32,
        backend: Backend,
    ) -> Result<Vec<f32>> {
        let mut batch = Batch::single(ids.to_vec());
        batch.sigma = Some(vec![sigma]);
        self.check(&batch)?;
        if let Some(&r) = rows.iter().find(|&&r| r >= ids.len()) {
            return Err(Error::input(format!(
                "row {r} is outside the canvas of {} tokens",
                ids.len()
            )));
        }
        match backend {
            Backend::Gpu => self.gpu_logits(&batch.row(0), rows),
            Backend::Cpu => {
                let enc = cpu::encode(&self.plan, &batch.row(0), false);
                let h = self.plan.hidden;
                let mut picked = Vec::with_capacity(rows.len() * h);
                for &r in rows {
                    picked.extend_from_slice(&enc.hidden[r * h..(r + 1) * h]);
                }
                Ok(cpu::head(
                    &self.plan,
                    &picked,
                    rows.len(),
                    enc.cond.as_deref(),
                ))
            }
        }
    }

    /// Runs the forward pass; for MDLM also returns the subs log-probabilities.
    pub fn forward(&self, batch: &Batch, backend: Backend, capture: bool) -> Result<Forward> {
        self.check(batch)?;
        let out = match backend {
            Backend::Cpu => cpu::forward(&self.plan, batch, capture),
            Backend::Gpu => {
                let all: Vec<usize> = (0..batch.len).collect();
                let mut logits = Vec::with_capacity(batch.size * batch.len * self.spec.vocab_size);
                for b in 0..batch.size {
                    logits.extend(self.gpu_logits(&batch.row(b), &all)?);
                }
                ForwardOutput {
                    logits: Tensor::new(vec![batch.size, batch.len, self.spec.vocab_size], logits),
                    hidden_states: Vec::new(),
                    final_norm: None,
                }
            }
        };
        let log_probs = match self.spec.logits {
            LogitReading::Subs => {
                let mask = self.mask_id()?.expect("subs models carry their mask id");
                Some(subs::log_probs(&out.logits, &batch.ids, mask))
            }
            LogitReading::Raw => None,
        };
        Ok(Forward { out, log_probs })
    }
}
