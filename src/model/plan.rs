//! The forward plan: every supported architecture is described as the same few ops
//! (embedding, norm, linear, RoPE, attention, activation, residual, head), so any backend
//! that executes a `Plan` runs every model. A new architecture is a new builder in
//! `model/arch`, not a new backend.

use std::sync::Arc;

use super::matrix::{DeviceRows, Matrix, Precision, Storage};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// `y = x · Wᵀ + b`, W stored `[out, in]` as in PyTorch, in the checkpoint's precision.
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Arc<Matrix>,
    pub bias: Option<Vec<f32>>,
}

impl Linear {
    /// An f32 linear from a 2-D tensor (tests, models built in memory).
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Linear {
        let (r, c) = (weight.shape[0], weight.shape[1]);
        Linear::from_matrix(Matrix::f32(r, c, weight.data), bias.map(|b| b.data))
    }
    pub fn from_matrix(weight: Matrix, bias: Option<Vec<f32>>) -> Linear {
        Linear {
            weight: Arc::new(weight),
            bias,
        }
    }
    pub fn out_dim(&self) -> usize {
        self.weight.rows
    }
    pub fn in_dim(&self) -> usize {
        self.weight.cols
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKind {
    /// `(x − mean) / sqrt(var + eps) · w (+ b)`
    LayerNorm,
    /// `x / sqrt(mean(x²) + eps) · w`
    RmsNorm,
}

#[derive(Clone, Debug)]
pub struct Norm {
    pub kind: NormKind,
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub eps: f32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU, `0.5·x·(1 + erf(x/√2))` (HF "gelu").
    GeluErf,
    /// Tanh-approximated GELU (HF "gelu_new", `nn.GELU(approximate='tanh')`).
    GeluTanh,
    Silu,
}

#[derive(Clone, Debug)]
pub enum Ffn {
    /// `down(act(up(x)))`
    Plain {
        up: Linear,
        act: Activation,
        down: Linear,
    },
    /// `down(act(a) ⊙ b)` where `[a | b] = up(x)`: the first half of `up`'s outputs is
    /// activated (ModernBERT GeGLU `input, gate = Wi(x).chunk(2)`; LLaDA `ff_proj` then `up_proj`).
    Gated {
        up: Linear,
        act: Activation,
        down: Linear,
    },
}

impl Ffn {
    pub fn down(&self) -> &Linear {
        match self {
            Ffn::Plain { down, .. } | Ffn::Gated { down, .. } => down,
        }
    }
}

/// Where the norms of a block sit relative to the residual adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormPlacement {
    /// `x = x + f(norm(x))` (MDLM, LLaDA, ModernBERT)
    Pre,
    /// `x = norm(x + f(x))` (BERT, DistilBERT, RoBERTa)
    Post,
}

/// Rotary position embedding, GPT-NeoX "rotate-half" layout over the whole head dimension.
#[derive(Clone, Debug)]
pub struct Rope {
    /// `1/θ^(2j/d)`, j < d/2, in f32 as the references compute it.
    pub inv_freq: Vec<f32>,
}

impl Rope {
    pub fn new(theta: f64, head_dim: usize) -> Rope {
        // torch: 1.0 / (base ** (arange(0, d, 2).float() / d)) — every step in f32
        let inv_freq = (0..head_dim / 2)
            .map(|j| {
                let e = (2 * j) as f32 / head_dim as f32;
                1.0f32 / (theta as f32).powf(e)
            })
            .collect();
        Rope { inv_freq }
    }
}

/// Time conditioning of MDLM's DiT: σ → sinusoidal features → MLP → `c`, then each adaLN
/// projects `c` to shifts, scales and gates.
#[derive(Clone, Debug)]
pub struct Conditioning {
    /// Number of sinusoidal features (256 in MDLM: 128 cos then 128 sin).
    pub freq_dim: usize,
    pub mlp_in: Linear,
    pub mlp_out: Linear,
    /// MDLM with `time_conditioning: false` zeroes σ before embedding it.
    pub zero_sigma: bool,
}

/// Which keys a query may attend to, padding aside.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Keys {
    #[default]
    All,
    /// Sliding window: keys with `|i − j| ≤ w` (ModernBERT's local layers).
    Window(usize),
    /// Block-causal: keys in the query's block of `n` positions (counted from position 0) or an
    /// earlier one (BD3LM; dllm's `_prepare_for_sampling`).
    BlockCausal(usize),
}

impl Keys {
    /// The keys `lo..hi` query `i` of a canvas of `len` may see.
    pub fn range(self, i: usize, len: usize) -> (usize, usize) {
        match self {
            Keys::All => (0, len),
            Keys::Window(w) => (i.saturating_sub(w), (i + w + 1).min(len)),
            Keys::BlockCausal(n) => (0, ((i / n.max(1) + 1) * n.max(1)).min(len)),
        }
    }
}

/// Qwen3's per-head RMSNorms on queries and keys, before RoPE (`q_norm`, `k_norm`: one weight
/// of `head_dim` shared by every head).
#[derive(Clone, Debug)]
pub struct HeadNorms {
    pub q: Norm,
    pub k: Norm,
}

#[derive(Clone, Debug)]
pub struct Block {
    pub placement: NormPlacement,
    /// `None` is the identity (ModernBERT's first layer has no attention norm).
    pub attn_norm: Option<Norm>,
    /// Fused projection, rows `[q | k | v]`: q has `heads × head_dim` rows, k and v
    /// `kv_heads × head_dim` each, head-major.
    pub qkv: Linear,
    /// Per-head norms of q and k (Qwen3), applied before RoPE.
    pub head_norms: Option<HeadNorms>,
    pub rope: Option<Rope>,
    pub keys: Keys,
    pub attn_out: Linear,
    pub ffn_norm: Option<Norm>,
    pub ffn: Ffn,
    /// adaLN for time-conditioned MDLM: `c → [shift1, scale1, gate1, shift2, scale2, gate2]`.
    /// When the conditioning is constant it is folded into the norms and linears instead.
    pub modulation: Option<Linear>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PositionIds {
    /// 0..L−1
    FromZero,
    /// RoBERTa: `pad + 1 + cumsum(id != pad)` for real tokens, `pad` for padding.
    AfterPadding { pad_id: u32 },
}

#[derive(Clone, Debug)]
pub struct Embeddings {
    /// `[vocab, hidden]`, in the checkpoint's precision (a tied decoder shares it).
    pub tokens: Arc<Matrix>,
    pub positions: Option<(Tensor, PositionIds)>,
    pub token_types: Option<Tensor>,
    pub norm: Option<Norm>,
}

#[derive(Clone, Debug)]
pub struct Head {
    /// The final norm of the backbone (`ln_f`, `final_norm`, MDLM `norm_final`).
    pub final_norm: Option<Norm>,
    /// MDLM's output adaLN `c → [shift, scale]` when not folded.
    pub final_modulation: Option<Linear>,
    /// The MLM transform `norm(act(dense(x)))` of BERT-family heads.
    pub transform: Option<(Linear, Activation, Norm)>,
    pub decoder: Linear,
}

/// How a continuous model's head output becomes the clean estimate x̂0 and a token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Readout {
    /// Logits over the vocabulary (the caller adds Plaid's output prior through
    /// [`VectorInput::prior`](crate::batch::VectorInput)): x̂0 = softmax(logits)·table, the
    /// token is the argmax (Plaid's categorical reparameterisation).
    Softmax,
    /// One logit per bit, most significant first: x̂0 = (2σ(ℓ) − 1)·scale (Analog Bits'
    /// `x_sigmoid_xent`), the token is the bits above 0.
    Bits { scale: f32 },
}

/// The input path of a model whose canvas holds vectors, not ids (the continuous families):
/// the canvas and the self-conditioning estimate, side by side in one row, enter the backbone
/// through one product; `embeddings.tokens` then holds each id's clean vector `[V, width]`
/// (unit-norm embeddings, or ±scale bits) instead of an embedding of `hidden` columns.
#[derive(Clone, Debug)]
pub struct VectorIo {
    /// Width of one position's vector (16 embedding dimensions, 12 bits).
    pub width: usize,
    /// `[input_linear | selfcond_linear]`: `[hidden, 2·width]`, with the input linear's bias.
    pub input: Linear,
    pub readout: Readout,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub hidden: usize,
    pub heads: usize,
    /// Key/value heads: `heads` for plain multi-head attention, fewer for grouped-query
    /// attention, where query head h reads kv head `h / (heads / kv_heads)` (the order of
    /// `repeat_kv`: each kv head serves a run of consecutive query heads).
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub embeddings: Embeddings,
    pub conditioning: Option<Conditioning>,
    pub blocks: Vec<Block>,
    pub head: Head,
    /// Continuous families: vectors in, x̂0 out. `None` for token models.
    pub vectors: Option<VectorIo>,
}

impl Plan {
    /// Every distinct weight matrix of the plan (a tied decoder's table once).
    pub fn matrices(&self) -> Vec<&Arc<Matrix>> {
        let mut v: Vec<&Arc<Matrix>> = vec![&self.embeddings.tokens];
        for b in &self.blocks {
            v.push(&b.qkv.weight);
            v.push(&b.attn_out.weight);
            match &b.ffn {
                Ffn::Plain { up, down, .. } | Ffn::Gated { up, down, .. } => {
                    v.push(&up.weight);
                    v.push(&down.weight);
                }
            }
            if let Some(m) = &b.modulation {
                v.push(&m.weight);
            }
        }
        if let Some(c) = &self.conditioning {
            v.push(&c.mlp_in.weight);
            v.push(&c.mlp_out.weight);
        }
        if let Some(m) = &self.head.final_modulation {
            v.push(&m.weight);
        }
        if let Some((dense, _, _)) = &self.head.transform {
            v.push(&dense.weight);
        }
        if let Some(io) = &self.vectors {
            v.push(&io.input.weight);
        }
        v.push(&self.head.decoder.weight);
        let mut seen = std::collections::HashSet::new();
        v.retain(|m| seen.insert(Arc::as_ptr(m)));
        v
    }

    /// Bytes held by the weight matrices (norms, biases and position tables not counted).
    pub fn matrix_bytes(&self) -> usize {
        self.matrices().iter().map(|m| m.bytes()).sum()
    }

    /// The plan with every weight matrix in `format` (a tied decoder stays tied). A weight the
    /// format cannot hold (q8_0: NaN, ±∞, |w| past 8.3e6; q4_0: past 5.2e5) is an error naming
    /// the matrix, the row and the column.
    pub fn converted(&self, format: Precision) -> Result<Plan> {
        if format == Precision::Stored {
            return Ok(self.clone());
        }
        let mut p = self.clone();
        p.try_map_in_place(true, &|name, m| {
            m.converted(format).map_err(|e| {
                Error::tensor(format!("--weights {}", format.name()), name, e.to_string())
            })
        })?;
        Ok(p)
    }

    /// The f32 matrices the CPU multiplies by, in panels ([`Matrix::paneled`]), in place: each
    /// old matrix is freed as soon as its copy exists (a tied one once both uses moved), so a
    /// load peaks at one matrix above the model. The embedding table moves only when the
    /// decoder is tied to it; otherwise it stays in rows for the lookup.
    pub fn into_panels(&mut self) {
        let tied = Arc::ptr_eq(&self.embeddings.tokens, &self.head.decoder.weight);
        self.map_in_place(tied, &Matrix::paneled);
    }

    /// The plan with every large matrix replaced by its shape alone (device rows with no
    /// parts): what a backend that holds the weights elsewhere keeps to count FLOPs.
    pub fn shapes(&self) -> Plan {
        let mut p = self.clone();
        p.map_in_place(true, &|m| Matrix {
            rows: m.rows,
            cols: m.cols,
            storage: Storage::Device(DeviceRows {
                parts: Vec::new(),
                dtype: "shape",
                bytes: 0,
            }),
        });
        p
    }

    fn map_in_place(&mut self, embeddings: bool, f: &dyn Fn(&Matrix) -> Matrix) {
        let done: Result<()> = self.try_map_in_place(embeddings, &|_, m| Ok(f(m)));
        done.expect("an infallible map");
    }

    /// Replaces every weight matrix `m` by `f(name, m)`, where `name` says which matrix of the
    /// plan it is (`block 2 q/k/v projection`); a matrix shared by two uses is mapped once.
    fn try_map_in_place(
        &mut self,
        embeddings: bool,
        f: &dyn Fn(&str, &Matrix) -> Result<Matrix>,
    ) -> Result<()> {
        let mut done: std::collections::HashMap<*const Matrix, Arc<Matrix>> = Default::default();
        let mut conv = |name: &str, m: &mut Arc<Matrix>| -> Result<()> {
            let key = Arc::as_ptr(m);
            let new = match done.get(&key) {
                Some(n) => n.clone(),
                None => {
                    let n = Arc::new(f(name, m)?);
                    done.insert(key, n.clone());
                    n
                }
            };
            *m = new;
            Ok(())
        };
        // A continuous model's clean-vector table and input product stay f32: they are tiny,
        // and the sampler's x̂0 and the canvas are read through them every step.
        if embeddings && self.vectors.is_none() {
            conv("token embeddings", &mut self.embeddings.tokens)?;
        }
        for (i, b) in self.blocks.iter_mut().enumerate() {
            conv(&format!("block {i} q/k/v projection"), &mut b.qkv.weight)?;
            conv(
                &format!("block {i} attention output"),
                &mut b.attn_out.weight,
            )?;
            match &mut b.ffn {
                Ffn::Plain { up, down, .. } | Ffn::Gated { up, down, .. } => {
                    conv(&format!("block {i} feed-forward up"), &mut up.weight)?;
                    conv(&format!("block {i} feed-forward down"), &mut down.weight)?;
                }
            }
            if let Some(m) = &mut b.modulation {
                conv(&format!("block {i} adaLN modulation"), &mut m.weight)?;
            }
        }
        if let Some(c) = &mut self.conditioning {
            conv("time conditioning MLP in", &mut c.mlp_in.weight)?;
            conv("time conditioning MLP out", &mut c.mlp_out.weight)?;
        }
        if let Some(m) = &mut self.head.final_modulation {
            conv("final adaLN modulation", &mut m.weight)?;
        }
        if let Some((dense, _, _)) = &mut self.head.transform {
            conv("head transform", &mut dense.weight)?;
        }
        conv("decoder", &mut self.head.decoder.weight)
    }

    /// Width of a fused qkv row: `(heads + 2·kv_heads) · head_dim`.
    pub fn qkv_dim(&self) -> usize {
        (self.heads + 2 * self.kv_heads) * self.head_dim
    }

    /// FLOPs of a pass over `n` positions of a `len`-token canvas whose other keys and values
    /// are cached (`backend::cpu::kv_cache::span`): the products on `n` rows, attention of `n`
    /// queries over `len` keys.
    pub fn flops_span(&self, n: usize, len: usize, head_rows: usize) -> f64 {
        // `flops(n, ..)` counts n queries over n keys; the other len − n keys come on top
        let extra_keys = len.saturating_sub(n);
        self.flops(n, head_rows)
            + self.blocks.len() as f64 * 4.0 * (n * extra_keys * self.heads * self.head_dim) as f64
    }

    /// Multiply-add FLOPs (×2) of one forward over `len` positions with the head on `head_rows`.
    pub fn flops(&self, len: usize, head_rows: usize) -> f64 {
        let mm =
            |rows: usize, l: &Linear| 2.0 * rows as f64 * l.in_dim() as f64 * l.out_dim() as f64;
        let mut f = 0.0;
        for b in &self.blocks {
            f += mm(len, &b.qkv) + mm(len, &b.attn_out);
            match &b.ffn {
                Ffn::Plain { up, down, .. } | Ffn::Gated { up, down, .. } => {
                    f += mm(len, up) + mm(len, down)
                }
            }
            // scores and weighted sum, per query head (grouped kv heads are shared, not fewer
            // products)
            f += 4.0 * (len * len * self.heads * self.head_dim) as f64;
        }
        if let Some((dense, _, _)) = &self.head.transform {
            f += mm(head_rows, dense);
        }
        f + mm(head_rows, &self.head.decoder)
    }
}
