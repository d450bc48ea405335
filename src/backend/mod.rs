//! Backends execute a model's [`Plan`](crate::model::plan::Plan). `cpu` is plain Rust: the
//! reference for every test and the fallback where no GPU adapter exists. `gpu` (feature `gpu`)
//! runs the same plan as WGSL compute shaders through wgpu, tested op by op and end to end
//! against `cpu`.
//!
//! Both meet the rest of the crate through one contract, [`Denoiser`]: what one denoising step
//! needs from a forward pass. The sampler, `eval` and `unmask forward` talk only to it.

pub mod cpu;
#[cfg(feature = "gpu")]
pub mod gpu;

/// u32 words per weight block in the GPU's matrix buffers (`shaders/matmul.wgsl`, `weight()`),
/// known without the `gpu` feature so that a header can be sized for a device before a load.
pub mod gpu_words {
    /// q8_0: 32 int8 values in 8 words, then the f16 scale in the low half of a ninth.
    pub const Q8: usize = 9;
    /// q4_0: its 16 bytes of packed values in 4 words, then the f16 scale in a fifth.
    pub const Q4: usize = 5;
}
mod summary;

use crate::batch::{Batch, Row};
use crate::error::Result;
use crate::tensor::Tensor;

pub use cpu::CpuDenoiser;
#[cfg(feature = "gpu")]
pub use gpu::GpuDenoiser;
pub use summary::{
    probe, summarize, summarize_rows, tail_draw, tail_uniform, RowSummary, PROBES, TOP_K,
};

/// What one forward pass over a batch returns.
pub struct ForwardOutput {
    /// `[B, L, V]`, the model's raw output.
    pub logits: Tensor,
    /// When captured: index 0 is the embedding output, index i the output of block i; `[B, L, H]`.
    pub hidden_states: Vec<Tensor>,
    /// When captured: the final norm's output, the decoder's input; `[B, L, H]`.
    pub final_norm: Option<Tensor>,
}

/// Which engine runs the forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Cpu,
    Gpu,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Gpu => "gpu",
        }
    }
}

/// The shape of one attention call, shared by both backends' kernels.
pub struct AttentionShape {
    pub len: usize,
    pub heads: usize,
    /// Key/value heads; query head h reads kv head `h / (heads / kv_heads)`.
    pub kv_heads: usize,
    pub head_dim: usize,
}

impl AttentionShape {
    /// Width of one fused qkv row.
    pub fn qkv_dim(&self) -> usize {
        (self.heads + 2 * self.kv_heads) * self.head_dim
    }
}

/// What a step asks of the reduction beside each row's summary.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ask<'a> {
    /// Empty, or [`PROBES`] ids per row (row-major) whose logits come back in
    /// [`RowSummary::probed`].
    pub probes: &'a [u32],
    /// Seeds one draw per row from the tail of its candidates ([`RowSummary::tail`]), for a
    /// step that samples; a backend with the logits on the host ignores it.
    pub tail_seed: Option<u32>,
    /// Reuse of keys and values between passes (DualCache, BD3LM); a backend or model without
    /// a cache runs the whole canvas instead.
    pub cache: Option<CachePass>,
}

/// A pass that keeps or reuses every layer's keys and values (`cpu::kv_cache`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CachePass {
    /// The whole canvas, keeping the keys and values.
    Refresh,
    /// Only positions `start..end` (which hold every row asked for) over the kept keys and
    /// values, theirs replaced.
    Span { start: usize, end: usize },
}

/// The per-row summaries of one step's rows.
#[derive(Clone, Debug)]
pub struct Summaries {
    pub rows: Vec<RowSummary>,
    /// `[rows, V]` logits when they are on the host anyway (the CPU, or a GPU call with more
    /// rows than one head dispatch holds): then a draw inverts the whole row's CDF directly.
    /// `None` when the logits stayed on the device; a draw that needs the tail then asks
    /// [`Denoiser::last_row_logits`].
    pub logits: Option<std::sync::Arc<Vec<f32>>>,
}

/// One step of a continuous family, everything but the host's bookkeeping: the pass over the
/// vector canvas (`row.vectors`), the clean estimate x̂0 and readout of every position, and the
/// update `z' = z_coef·z + x0_coef·x̂0 + noise_coef·noise` with known positions set to their
/// clean vectors. One call is one submission on a GPU.
#[derive(Clone, Copy, Debug)]
pub struct VectorStep<'a> {
    /// The canvas: its length, −log SNR in `sigma`, the scaled input and the output prior.
    pub row: Row<'a>,
    /// `[L, width]`, the noisy canvas z_t as it is (unscaled).
    pub z: &'a [f32],
    /// `[L, width]` standard normal draws (DDPM), or empty when `noise_coef` is 0.
    pub noise: &'a [f32],
    /// `[L]`: positions whose clean vector is known (the user's text and the frame).
    pub known: &'a [bool],
    /// `[L, width]`: the clean vectors of known positions (anything elsewhere).
    pub clean: &'a [f32],
    pub z_coef: f32,
    pub x0_coef: f32,
    pub noise_coef: f32,
    /// Diffusion-LM's rounding: x̂0 replaced by the vector of its token before the update.
    pub round: bool,
    /// `[V]`: the tokens a readout may name (never a special token in the user's text).
    pub allowed: &'a [bool],
}

/// What [`Denoiser::vector_step`] returns, per position.
#[derive(Clone, Debug, Default)]
pub struct VectorOut {
    /// `[L, width]` the estimate x̂0 (rounded when asked).
    pub x0: Vec<f32>,
    /// `[L]` the readout: the most likely token (Gaussian) or the token the bits spell.
    pub tokens: Vec<u32>,
    /// `[L]` the readout token's probability under the model's x0 distribution.
    pub p: Vec<f32>,
    /// `[L, width]` the canvas after the update.
    pub z: Vec<f32>,
}

impl VectorStep<'_> {
    /// Checks every array against the canvas length and the model's vector width.
    pub fn check(&self, width: usize) -> Result<()> {
        let len = self.row.ids.len();
        let v = self.row.vectors.ok_or_else(|| {
            crate::error::Error::input("a continuous step needs the vector input of its canvas")
        })?;
        let sizes = [
            ("input", v.input.len(), 2 * len * width),
            ("z", self.z.len(), len * width),
            ("clean", self.clean.len(), len * width),
            ("known", self.known.len(), len),
            ("allowed", self.allowed.len(), self.allowed.len().max(1)),
        ];
        for (name, got, want) in sizes {
            if got != want {
                return Err(crate::error::Error::input(format!(
                    "continuous step: `{name}` has {got} values, expected {want} ({len} positions of width {width})"
                )));
            }
        }
        if !v.prior.is_empty() && v.prior.len() != len * width {
            return Err(crate::error::Error::input(format!(
                "continuous step: `prior` has {} values, expected 0 or {}",
                v.prior.len(),
                len * width
            )));
        }
        if self.noise_coef != 0.0 && self.noise.len() != len * width {
            return Err(crate::error::Error::input(format!(
                "continuous step: `noise` has {} values, expected {} for a step that adds noise",
                self.noise.len(),
                len * width
            )));
        }
        Ok(())
    }
}

/// A row for a model: a continuous model (`vectors`) needs the vector input, a token model
/// must not get one.
pub(crate) fn check_input(plan: &crate::model::plan::Plan, row: &Row<'_>) -> Result<()> {
    match (&plan.vectors, row.vectors) {
        (Some(io), Some(v))
            if !v.prior.is_empty()
                && !matches!(io.readout, crate::model::plan::Readout::Softmax) =>
        {
            Err(crate::error::Error::input(
                "an output prior is only defined for a model whose head gives logits over the \
                 vocabulary (the Gaussian family), not per-bit logits",
            ))
        }
        (Some(io), Some(v)) if v.input.len() == row.ids.len() * 2 * io.width => Ok(()),
        (Some(io), Some(v)) => Err(crate::error::Error::input(format!(
            "the vector input has {} values, expected {} ({} positions of 2 x {})",
            v.input.len(),
            row.ids.len() * 2 * io.width,
            row.ids.len(),
            io.width
        ))),
        (Some(_), None) => Err(crate::error::Error::input(
            "this is a continuous model: its canvas holds vectors, not token ids, so it runs \
             through infill and eval, not a raw forward pass over ids",
        )),
        (None, Some(_)) => Err(crate::error::Error::input(
            "this model reads token ids; a vector input is only for the continuous families",
        )),
        (None, None) => Ok(()),
    }
}

/// One forward pass's worth of work for the sampler, `eval` and `unmask forward`. Async
/// because a GPU can only be awaited in the browser; the CPU implementation never suspends.
///
/// A denoiser owns whatever state it keeps between calls (GPU sessions per canvas length), so
/// every method takes `&mut self`: no locks, no closures.
#[allow(async_fn_in_trait)] // futures are not Send on wasm32 anyway; callers drive one at a time
pub trait Denoiser {
    fn backend(&self) -> Backend;

    /// Summaries of output `rows` after one pass over `row`'s canvas: the backbone over the
    /// whole canvas, the head only on `rows`, then the reduction over `allowed` tokens at
    /// `temperature` (only `lse_t` depends on it). A row is an output row, not a position to
    /// predict: callers map positions through
    /// [`ModelSpec::logit_rows`](crate::model::ModelSpec::logit_rows) (Dream reads position i
    /// from row i − 1), so no backend knows about the shift.
    /// `ask` names what else the step needs from each row.
    async fn summaries(
        &mut self,
        row: &Row<'_>,
        rows: &[usize],
        ask: &Ask<'_>,
        allowed: &[bool],
        temperature: f64,
    ) -> Result<Summaries>;

    /// The logits of the k-th row of the last [`summaries`](Denoiser::summaries) call.
    async fn last_row_logits(&mut self, k: usize) -> Result<Vec<f32>>;

    /// Logits `[rows.len(), V]` of `rows` after one pass over `row`'s canvas.
    async fn logits(&mut self, row: &Row<'_>, rows: &[usize]) -> Result<Vec<f32>>;

    /// The raw forward pass over a batch (`unmask forward`): logits of every position. `capture`
    /// asks for the hidden states too, where the backend keeps them (the CPU).
    async fn forward(&mut self, batch: &Batch, capture: bool) -> Result<ForwardOutput>;

    /// Prepares whatever the first real call would otherwise pay for (shader compilation).
    async fn warm_up(&mut self) -> Result<()>;

    /// One step of a continuous family ([`VectorStep`]).
    async fn vector_step(&mut self, step: &VectorStep<'_>) -> Result<VectorOut>;
}

/// Checks the rows a caller asks for against the canvas.
pub(crate) fn check_rows(rows: &[usize], len: usize) -> Result<()> {
    if let Some(&r) = rows.iter().find(|&&r| r >= len) {
        return Err(crate::error::Error::input(format!(
            "row {r} is outside the canvas of {len} tokens"
        )));
    }
    Ok(())
}
