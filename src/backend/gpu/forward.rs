//! A model's plan on the GPU: weights uploaded once (`GpuModel`), and per canvas length a
//! `GpuSession` holding every activation buffer and every dispatch, created once and recorded
//! into one command encoder per step. The head runs only on the requested rows (the masked
//! ones) and, for the sampler, is reduced on the device so a step reads back a few KB. A
//! continuous model's canvas enters through one product instead of the lookup, and its step
//! (`GpuSession::vector_step`) ends in the estimate and the update, reading back x̂0, the
//! readout and the new canvas, not the logits. With a key/value cache
//! ([`CachePass`]) a refresh also keeps every layer's keys and values in the session, and a
//! span pass runs only the span's rows over them (`backend/cpu/kv_cache.rs` is the reference).

use std::collections::HashMap;
use std::sync::Arc;

use super::attention::{attention, attention_cached, MAX_HEAD_DIM};
use super::embed::{embed, GpuEmbeddings};
use super::estimate::{estimate, EstimateOut, MAX_WIDTH};
use super::gather::gather;
use super::glu::glu;
use super::head_norm::{head_norm, GpuHeadNorms};
use super::kv_cache::kv_store;
use super::matmul::{matmul, Epilogue};
use super::modulate::modulate;
use super::norm::{norm, GpuNorm};
use super::reduce::{reduce, ReduceBuffers};
use super::rope::{rope, table};
use super::vector_update::{coefficients, vector_update, UpdateBuffers};
use super::weights::{GpuMatrix, Held, Packing};
use super::{Call, Gpu};
use crate::backend::cpu::embed::position_ids;
use crate::backend::cpu::kv_cache;
use crate::backend::cpu::matmul::linear;
use crate::backend::cpu::modulate as adaln;
use crate::backend::AttentionShape;
use crate::backend::{check_input, Ask, CachePass, RowSummary, VectorOut, VectorStep, PROBES};
use crate::batch::Row;
use crate::error::{Error, GpuFault, Result};
use crate::model::matrix::{Matrix, Storage};
use crate::model::plan::{
    Activation, Conditioning, Embeddings, Ffn, Head, Keys, Linear, NormPlacement, Plan,
    PositionIds, Readout, Rope, VectorIo,
};

struct GpuLinear {
    w: GpuMatrix,
    b: Option<wgpu::Buffer>,
}

impl GpuLinear {
    fn upload(gpu: &Gpu, held: &Held, name: &str, l: &Linear, f16: bool) -> Result<GpuLinear> {
        Ok(GpuLinear {
            w: GpuMatrix::upload(gpu, name, &l.weight, f16, true, held)?,
            b: l.bias.as_ref().map(|b| gpu.upload(name, b)),
        })
    }
}

enum GpuFfn {
    Plain {
        up: GpuLinear,
        act: Activation,
        down: GpuLinear,
    },
    Gated {
        up: GpuLinear,
        act: Activation,
        down: GpuLinear,
    },
}

struct GpuBlock {
    placement: NormPlacement,
    attn_norm: Option<GpuNorm>,
    qkv: GpuLinear,
    head_norms: Option<GpuHeadNorms>,
    rope: Option<Rope>,
    keys: Keys,
    attn_out: GpuLinear,
    ffn_norm: Option<GpuNorm>,
    ffn: GpuFfn,
    /// time-conditioned adaLN, evaluated on the host per σ
    modulation: Option<Linear>,
}

/// A continuous model's input product and clean-vector table, in f32.
struct GpuVectors {
    width: usize,
    /// `[hidden, 2·width]` with the input linear's bias.
    input: GpuLinear,
    /// `[V, width]`, in one binding.
    table: GpuMatrix,
    readout: Readout,
}

/// A plan's weights on the device.
pub struct GpuModel {
    pub gpu: Arc<Gpu>,
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    pub vocab: usize,
    f16: bool,
    /// The token lookup; `None` for a continuous model, whose canvas enters through `vectors`.
    embed: Option<GpuEmbeddings>,
    vectors: Option<GpuVectors>,
    /// The plan's input contract without its weights (natively the host plan is dropped once
    /// it is uploaded), for [`check_input`].
    contract: Plan,
    pos_kind: Option<PositionIds>,
    emb_norm: Option<GpuNorm>,
    conditioning: Option<Conditioning>,
    blocks: Vec<GpuBlock>,
    final_norm: Option<GpuNorm>,
    final_modulation: Option<Linear>,
    transform: Option<(GpuLinear, Activation, GpuNorm)>,
    decoder: GpuLinear,
    /// Why the key/value cache cannot serve this plan ([`kv_cache::unsupported`]).
    cache_unsupported: Option<&'static str>,
    /// Bytes of weights uploaded.
    pub weight_bytes: u64,
}

impl GpuModel {
    /// Uploads a plan; `f16` stores weight matrices as f16 pairs (arithmetic stays f32).
    pub async fn upload(gpu: Arc<Gpu>, plan: &Plan, f16: bool) -> Result<GpuModel> {
        GpuModel::upload_held(gpu, plan, f16, &Held::default()).await
    }

    /// [`GpuModel::upload`] of a plan whose matrices may already be on the device, in `held`
    /// (a streamed load): those are taken from it, not uploaded again.
    pub async fn upload_held(
        gpu: Arc<Gpu>,
        plan: &Plan,
        f16: bool,
        held: &Held,
    ) -> Result<GpuModel> {
        let g = gpu.clone();
        g.guard("uploading the weights", || {
            GpuModel::upload_unguarded(gpu, plan, f16, held)
        })
        .await
    }

    fn upload_unguarded(gpu: Arc<Gpu>, plan: &Plan, f16: bool, held: &Held) -> Result<GpuModel> {
        if plan.head_dim > MAX_HEAD_DIM {
            return Err(Error::gpu(
                crate::error::GpuFault::Failed,
                format!(
                    "head dim {} exceeds the attention kernel's {MAX_HEAD_DIM}",
                    plan.head_dim
                ),
            ));
        }
        let g = &*gpu;
        let e = &plan.embeddings;
        let (embed, vectors) = match &plan.vectors {
            Some(io) => (None, Some(GpuVectors::upload(g, plan, io)?)),
            None => (
                Some(GpuEmbeddings {
                    tokens: GpuMatrix::upload(g, "embed.tokens", &e.tokens, f16, false, held)?,
                    positions: e
                        .positions
                        .as_ref()
                        .map(|(t, _)| g.upload("embed.positions", &t.data)),
                    types: e
                        .token_types
                        .as_ref()
                        .map(|t| g.upload("embed.types", &t.data)),
                    d: plan.hidden,
                }),
                None,
            ),
        };
        let mut blocks = Vec::with_capacity(plan.blocks.len());
        for (i, b) in plan.blocks.iter().enumerate() {
            let n = |s: &str| format!("blocks.{i}.{s}");
            let ffn = match &b.ffn {
                Ffn::Plain { up, act, down } => GpuFfn::Plain {
                    up: GpuLinear::upload(g, held, &n("up"), up, f16)?,
                    act: *act,
                    down: GpuLinear::upload(g, held, &n("down"), down, f16)?,
                },
                Ffn::Gated { up, act, down } => GpuFfn::Gated {
                    up: GpuLinear::upload(g, held, &n("up"), up, f16)?,
                    act: *act,
                    down: GpuLinear::upload(g, held, &n("down"), down, f16)?,
                },
            };
            blocks.push(GpuBlock {
                placement: b.placement,
                attn_norm: b.attn_norm.as_ref().map(|x| GpuNorm::upload(g, x)),
                qkv: GpuLinear::upload(g, held, &n("qkv"), &b.qkv, f16)?,
                head_norms: b.head_norms.as_ref().map(|n| GpuHeadNorms::upload(g, n)),
                rope: b.rope.clone(),
                keys: b.keys,
                attn_out: GpuLinear::upload(g, held, &n("attn_out"), &b.attn_out, f16)?,
                ffn_norm: b.ffn_norm.as_ref().map(|x| GpuNorm::upload(g, x)),
                ffn,
                modulation: b.modulation.clone(),
            });
        }
        let h = &plan.head;
        let transform = match &h.transform {
            Some((dense, act, nm)) => Some((
                GpuLinear::upload(g, held, "head.dense", dense, f16)?,
                *act,
                GpuNorm::upload(g, nm),
            )),
            None => None,
        };
        // A head tied to the embeddings (Qwen3, LLaDA's small ones) reads the lookup's buffers
        // when both would hold the same words: 311 MB saved on Qwen3-0.6B in f16. Blocks are
        // not shared: the lookup reads f16 while the product reads the blocks.
        let shared = match &embed {
            Some(em)
                if Arc::ptr_eq(&e.tokens, &h.decoder.weight)
                    && h.decoder.bias.is_none()
                    && !matches!(em.tokens.packing, Packing::Q8 | Packing::Q4)
                    && !matches!(e.tokens.storage, Storage::Q8 { .. } | Storage::Q4 { .. }) =>
            {
                Some(em.tokens.clone())
            }
            _ => None,
        };
        let decoder_shared = shared.is_some();
        let decoder = match shared {
            Some(w) => GpuLinear { w, b: None },
            None => GpuLinear::upload(g, held, "head.decoder", &h.decoder, f16)?,
        };
        let mut m = GpuModel {
            gpu: gpu.clone(),
            hidden: plan.hidden,
            heads: plan.heads,
            kv_heads: plan.kv_heads,
            head_dim: plan.head_dim,
            vocab: plan.vocab,
            f16,
            embed,
            vectors,
            contract: input_contract(plan),
            pos_kind: e.positions.as_ref().map(|(_, k)| *k),
            emb_norm: e.norm.as_ref().map(|x| GpuNorm::upload(g, x)),
            conditioning: plan.conditioning.clone(),
            blocks,
            final_norm: h.final_norm.as_ref().map(|x| GpuNorm::upload(g, x)),
            final_modulation: h.final_modulation.clone(),
            transform,
            decoder,
            cache_unsupported: kv_cache::unsupported(plan),
            weight_bytes: 0,
        };
        m.weight_bytes = m.matrices().map(|w| w.bytes()).sum::<u64>();
        if decoder_shared {
            m.weight_bytes -= m.decoder.w.bytes();
        }
        Ok(m)
    }

    fn matrices(&self) -> impl Iterator<Item = &GpuMatrix> {
        let blocks = self.blocks.iter().flat_map(|b| {
            let (up, down) = match &b.ffn {
                GpuFfn::Plain { up, down, .. } | GpuFfn::Gated { up, down, .. } => (up, down),
            };
            [&b.qkv.w, &b.attn_out.w, &up.w, &down.w]
        });
        let input = self.embed.as_ref().map(|e| &e.tokens).into_iter().chain(
            self.vectors
                .as_ref()
                .into_iter()
                .flat_map(|v| [&v.input.w, &v.table]),
        );
        input
            .chain(blocks)
            .chain(self.transform.as_ref().map(|t| &t.0.w))
            .chain(std::iter::once(&self.decoder.w))
    }

    fn attention_shape(&self, len: usize) -> AttentionShape {
        AttentionShape {
            len,
            heads: self.heads,
            kv_heads: self.kv_heads,
            head_dim: self.head_dim,
        }
    }

    pub fn is_f16(&self) -> bool {
        self.f16
    }

    /// Why the key/value cache cannot serve this model, or `None` when it can.
    pub fn cache_unsupported(&self) -> Option<&'static str> {
        self.cache_unsupported
    }

    /// Bytes of device memory a key/value cache takes per canvas position: every layer's keys
    /// and values, f32.
    pub fn cache_bytes_per_position(&self) -> u64 {
        (self.blocks.len() * 2 * self.kv_heads * self.head_dim * 4) as u64
    }

    /// The width of a continuous model's vectors; `None` for a model that reads ids.
    pub fn vector_width(&self) -> Option<usize> {
        self.vectors.as_ref().map(|v| v.width)
    }

    /// Whether `row` is the input this model reads: vectors of its width for a continuous
    /// model, ids alone otherwise ([`check_input`]).
    pub fn check_input(&self, row: &Row<'_>) -> Result<()> {
        check_input(&self.contract, row)
    }

    /// Whether the head adds an output prior (a row's `prior`): a continuous model whose head
    /// gives logits over the vocabulary.
    pub fn takes_prior(&self) -> bool {
        self.vectors
            .as_ref()
            .is_some_and(|v| v.readout == Readout::Softmax)
    }

    /// The length an `allowed` buffer is padded to: every id the reduction or a readout reads.
    fn allowed_len(&self) -> usize {
        self.vectors
            .as_ref()
            .map_or(self.vocab, |v| v.table.rows.max(self.vocab))
    }

    /// Buffers and dispatches for canvases of `len` tokens, with the head on up to `max_rows` rows.
    pub async fn session(&self, len: usize, max_rows: usize) -> Result<GpuSession> {
        self.gpu
            .guard("creating the buffers for a canvas", || {
                GpuSession::new(self, len, max_rows)
            })
            .await
    }

    /// Head rows one call may take for a canvas of `len`: all of them, or fewer when their
    /// logits would pass one storage binding.
    pub fn max_rows(&self, len: usize) -> usize {
        let per_row = (self.vocab * 4) as u64;
        (self.gpu.max_binding() / per_row).clamp(1, len.max(1) as u64) as usize
    }
}

impl GpuVectors {
    /// The input product and the table in f32 (they are small, and x̂0 is read through the
    /// table every step), with the shapes the estimate kernel takes.
    fn upload(g: &Gpu, plan: &Plan, io: &VectorIo) -> Result<GpuVectors> {
        let fail = |msg: String| Error::gpu(GpuFault::Failed, msg);
        let width = io.width;
        if !(1..=MAX_WIDTH).contains(&width) {
            return Err(fail(format!(
                "vectors of width {width}: the estimate kernel takes 1 to {MAX_WIDTH}"
            )));
        }
        let t = &plan.embeddings.tokens;
        if t.cols != width {
            return Err(fail(format!(
                "the clean-vector table is [{}, {}], expected width {width}",
                t.rows, t.cols
            )));
        }
        let out = match io.readout {
            Readout::Softmax => t.rows,
            Readout::Bits { .. } => width,
        };
        if plan.vocab != out {
            return Err(fail(format!(
                "the head gives {} values per position, the {:?} readout reads {out}",
                plan.vocab, io.readout
            )));
        }
        let table = GpuMatrix::upload(g, "vectors.table", t, false, false, &Held::default())?;
        if table.chunks.len() != 1 {
            return Err(fail(format!(
                "the clean-vector table ({} bytes) exceeds one storage binding",
                table.bytes()
            )));
        }
        Ok(GpuVectors {
            width,
            input: GpuLinear::upload(g, &Held::default(), "vectors.input", &io.input, false)?,
            table,
            readout: io.readout,
        })
    }
}

/// `plan` without its weights: the sizes and the vector width, what [`check_input`] reads.
fn input_contract(plan: &Plan) -> Plan {
    let none = || Arc::new(Matrix::f32(0, 0, Vec::new()));
    Plan {
        embeddings: Embeddings {
            tokens: none(),
            positions: None,
            token_types: None,
            norm: None,
        },
        conditioning: None,
        blocks: Vec::new(),
        head: Head {
            final_norm: None,
            final_modulation: None,
            transform: None,
            decoder: Linear {
                weight: none(),
                bias: None,
            },
        },
        vectors: plan.vectors.as_ref().map(|io| VectorIo {
            input: Linear {
                weight: none(),
                bias: None,
            },
            ..io.clone()
        }),
        ..*plan
    }
}

/// What one step records: runs of dispatches in a compute pass, and buffer copies between them.
enum Op {
    Calls(Vec<Call>),
    Copy(wgpu::Buffer, wgpu::Buffer, u64),
}

/// Collects dispatches into ops, closing the current run of dispatches at each copy.
#[derive(Default)]
struct Recorder {
    ops: Vec<Op>,
    calls: Vec<Call>,
}

impl Recorder {
    fn flush(&mut self) {
        if !self.calls.is_empty() {
            self.ops.push(Op::Calls(std::mem::take(&mut self.calls)));
        }
    }

    fn copy(&mut self, src: &wgpu::Buffer, dst: &wgpu::Buffer, bytes: u64) {
        self.flush();
        self.ops.push(Op::Copy(src.clone(), dst.clone(), bytes));
    }

    fn finish(mut self) -> Vec<Op> {
        self.flush();
        self.ops
    }
}

/// The adaLN buffers of one block, rewritten for each σ.
struct ModBuffers {
    attn: wgpu::Buffer,
    attn_gate: wgpu::Buffer,
    ffn: wgpu::Buffer,
    ffn_gate: wgpu::Buffer,
}

/// A continuous model's canvas and step buffers for one canvas length.
struct VectorBuffers {
    /// `[L, 2w]`: the scaled canvas and the self-conditioning estimate, the backbone's input.
    input: wgpu::Buffer,
    /// `[L, w]`: the output prior's (α/σ²)·z, and its head rows gathered `[max_rows, w]`.
    prior: wgpu::Buffer,
    prior_rows: wgpu::Buffer,
    /// The step: z, noise, clean `[L, w]`, known `[L]` u32, the coefficients `[4]`.
    z: wgpu::Buffer,
    noise: wgpu::Buffer,
    clean: wgpu::Buffer,
    known: wgpu::Buffer,
    coef: wgpu::Buffer,
    /// What comes back: x̂0 `[L, w]`, tokens `[L]`, p `[L]`, the new canvas `[L, w]`.
    x0: wgpu::Buffer,
    tokens: wgpu::Buffer,
    prob: wgpu::Buffer,
    z_out: wgpu::Buffer,
    /// The estimate (per `round`) and the update, recorded on the first step.
    calls: HashMap<bool, (Call, Call)>,
}

impl VectorBuffers {
    fn new(g: &Gpu, len: usize, max_rows: usize, w: usize) -> VectorBuffers {
        let f = |n: usize| (n * 4) as u64;
        VectorBuffers {
            input: g.storage("vectors.input", f(len * 2 * w)),
            prior: g.storage("vectors.prior", f(len * w)),
            prior_rows: g.storage("vectors.prior_rows", f(max_rows * w)),
            z: g.storage("vectors.z", f(len * w)),
            noise: g.storage("vectors.noise", f(len * w)),
            clean: g.storage("vectors.clean", f(len * w)),
            known: g.storage("vectors.known", f(len)),
            coef: g.storage("vectors.coef", f(4)),
            x0: g.storage("vectors.x0", f(len * w)),
            tokens: g.storage("vectors.tokens", f(len)),
            prob: g.storage("vectors.p", f(len)),
            z_out: g.storage("vectors.z_out", f(len * w)),
            calls: HashMap::new(),
        }
    }
}

pub struct GpuSession {
    pub len: usize,
    pub max_rows: usize,
    ids: wgpu::Buffer,
    pos_ids: wgpu::Buffer,
    type_ids: wgpu::Buffer,
    keep: wgpu::Buffer,
    x: wgpu::Buffer,
    rows: wgpu::Buffer,
    logits: wgpu::Buffer,
    allowed: Option<wgpu::Buffer>,
    reduce: ReduceBuffers,
    mods: Vec<ModBuffers>,
    final_mod: Option<wgpu::Buffer>,
    /// A continuous model's buffers.
    vectors: Option<VectorBuffers>,
    /// The backbone's scratch buffers, `[L, ·]`; a span pass uses their first rows.
    scratch: Scratch,
    backbone: Vec<Op>,
    /// The key/value cache, allocated by the first cached pass.
    kv: Option<KvBuffers>,
    /// head dispatches per row count, with or without the output prior
    heads: HashMap<(usize, bool), Vec<Op>>,
    head_bufs: (wgpu::Buffer, wgpu::Buffer, wgpu::Buffer),
    reducers: HashMap<(usize, u64, bool), Call>,
}

/// The backbone's intermediate buffers, sized for the whole canvas.
struct Scratch {
    /// `[L, hidden]`: the normed input of a sublayer.
    h: wgpu::Buffer,
    /// `[L, (heads + 2·kv_heads)·hd]`.
    qkv: wgpu::Buffer,
    /// `[L, heads·hd]`: attention's output.
    att: wgpu::Buffer,
    /// `[L, ffn]` and the activation's `[L, ffn/2 + 1]`.
    up: wgpu::Buffer,
    act: wgpu::Buffer,
}

/// Every layer's keys and values for the session's canvas, and the passes that use them.
struct KvBuffers {
    /// Per layer `[L, 2·kv_heads·hd]` rows `[k | v]` (`kv_cache.wgsl`).
    layers: Vec<wgpu::Buffer>,
    /// `[L]` u32: a span's ids from its first position, what a span's embedding reads.
    span_ids: wgpu::Buffer,
    /// The whole canvas, keeping the keys and values.
    refresh: Vec<Op>,
    /// Span passes by `(start, end)`: a block's steps repeat one span, so each is recorded once.
    spans: HashMap<(usize, usize), Vec<Op>>,
    /// Whether a refresh has filled `layers`.
    filled: bool,
}

/// Spans a session keeps recorded; past this the map starts again (a canvas has a few blocks).
const MAX_SPANS: usize = 16;

/// The rows a recorded backbone runs, and what it does with their keys and values.
#[derive(Clone, Copy)]
enum Pass<'a> {
    /// The whole canvas; nothing kept.
    Plain,
    /// The whole canvas; each layer's keys and values kept in its cache buffer.
    Keep(&'a [wgpu::Buffer]),
    /// Canvas positions `start..start + n`, embedded from `ids` (`[n]` from the span's first):
    /// their keys and values replace the cache's, their queries attend to all of it.
    Span {
        cache: &'a [wgpu::Buffer],
        ids: &'a wgpu::Buffer,
        start: usize,
        n: usize,
    },
}

impl GpuSession {
    fn new(m: &GpuModel, len: usize, max_rows: usize) -> Result<GpuSession> {
        let g = &*m.gpu;
        let (h, hh) = (m.hidden, m.heads * m.head_dim);
        let f = |n: usize| (n * 4) as u64;
        let max_ff = m
            .blocks
            .iter()
            .map(|b| match &b.ffn {
                GpuFfn::Plain { up, .. } | GpuFfn::Gated { up, .. } => up.w.rows,
            })
            .max()
            .unwrap_or(1);
        let logit_bytes = f(max_rows * m.vocab);
        if logit_bytes > g.max_binding() {
            return Err(Error::gpu(crate::error::GpuFault::Failed, format!("{max_rows} rows of {} logits ({logit_bytes} bytes) exceed one storage binding; use fewer rows per call",
                m.vocab
            )));
        }
        let mut s = GpuSession {
            len,
            max_rows,
            ids: g.storage("ids", f(len)),
            pos_ids: g.storage("pos_ids", f(len)),
            type_ids: g.storage("type_ids", f(len)),
            keep: g.storage("keep", f(len)),
            x: g.storage("x", f(len * h)),
            rows: g.storage("rows", f(max_rows)),
            logits: g.storage("logits", logit_bytes),
            allowed: None,
            reduce: ReduceBuffers::new(g, max_rows),
            mods: m
                .blocks
                .iter()
                .filter(|b| b.modulation.is_some())
                .map(|_| ModBuffers {
                    attn: g.storage("mod", f(2 * h)),
                    attn_gate: g.storage("gate", f(h)),
                    ffn: g.storage("mod", f(2 * h)),
                    ffn_gate: g.storage("gate", f(h)),
                })
                .collect(),
            final_mod: m
                .final_modulation
                .as_ref()
                .map(|_| g.storage("final_mod", f(2 * h))),
            vectors: m
                .vectors
                .as_ref()
                .map(|v| VectorBuffers::new(g, len, max_rows, v.width)),
            scratch: Scratch {
                h: g.storage("h", f(len * h)),
                qkv: g.storage("qkv", f(len * m.attention_shape(len).qkv_dim())),
                att: g.storage("attn", f(len * hh)),
                up: g.storage("ffn.up", f(len * max_ff)),
                act: g.storage("ffn.act", f(len * max_ff / 2 + len)),
            },
            backbone: Vec::new(),
            kv: None,
            heads: HashMap::new(),
            head_bufs: (
                g.storage("head.a", f(max_rows * h)),
                g.storage("head.b", f(max_rows * h)),
                g.storage("head.c", f(max_rows * h)),
            ),
            reducers: HashMap::new(),
        };
        s.backbone = s.record_backbone(m, Pass::Plain);
        Ok(s)
    }

    /// The backbone's dispatches for `pass`: over the whole canvas, or over a span's rows only
    /// (every op but attention then runs on those rows alone).
    fn record_backbone(&self, m: &GpuModel, pass: Pass) -> Vec<Op> {
        let g = &*m.gpu;
        let h = m.hidden;
        // `len` rows from canvas position `first`
        let (first, len, ids) = match pass {
            Pass::Span { start, n, ids, .. } => (start, n, ids),
            Pass::Plain | Pass::Keep(_) => (0, self.len, &self.ids),
        };
        let Scratch {
            h: hbuf,
            qkv,
            att,
            up,
            act,
        } = &self.scratch;
        let mut rec = Recorder::default();
        match (&m.embed, &m.vectors, &self.vectors) {
            (Some(e), ..) => rec.calls.extend(embed(
                g,
                e,
                ids,
                &self.pos_ids,
                &self.type_ids,
                &self.x,
                len,
            )),
            // the continuous families: x = [z | x_sc]·Wᵀ + b, in place of the lookup
            (None, Some(v), Some(vb)) => rec.calls.extend(matmul(
                g,
                &vb.input,
                len,
                &v.input.w,
                &Epilogue {
                    bias: v.input.b.as_ref(),
                    gate: None,
                    act: None,
                    accum: false,
                },
                &self.x,
                h,
                0,
            )),
            _ => unreachable!("a model uploads either a lookup or a vector input"),
        }
        if let Some(n) = &m.emb_norm {
            self.renorm(g, &mut rec, Some(n), hbuf, len, h);
        }
        let mut tables: Vec<(Vec<u32>, wgpu::Buffer)> = Vec::new();
        let mut mods = self.mods.iter();
        for (layer, b) in m.blocks.iter().enumerate() {
            let mb = b.modulation.as_ref().and_then(|_| mods.next());
            let cs = b.rope.as_ref().map(|r| {
                let key: Vec<u32> = r.inv_freq.iter().map(|v| v.to_bits()).collect();
                if let Some((_, buf)) = tables.iter().find(|(k, _)| *k == key) {
                    buf.clone()
                } else {
                    let buf = table(g, r, first, len);
                    tables.push((key, buf.clone()));
                    buf
                }
            });
            let pre = b.placement == NormPlacement::Pre;
            // attention: x += out(attn(norm(x))) for pre-LN, x = norm(x + out(attn(x))) for post-LN
            let input = if pre {
                self.prepare(
                    g,
                    &mut rec,
                    b.attn_norm.as_ref(),
                    mb.map(|x| &x.attn),
                    hbuf,
                    len,
                    h,
                );
                hbuf
            } else {
                &self.x
            };
            let bufs = (input, qkv, att);
            self.attention_calls(m, b, bufs, cs.as_ref(), (pass, layer), &mut rec.calls);
            let e = Epilogue {
                bias: b.attn_out.b.as_ref(),
                gate: mb.map(|x| &x.attn_gate),
                act: None,
                accum: true,
            };
            rec.calls
                .extend(matmul(g, att, len, &b.attn_out.w, &e, &self.x, h, 0));
            if !pre {
                self.renorm(g, &mut rec, b.attn_norm.as_ref(), hbuf, len, h);
            }
            // feed-forward, the same way round
            let input = if pre {
                self.prepare(
                    g,
                    &mut rec,
                    b.ffn_norm.as_ref(),
                    mb.map(|x| &x.ffn),
                    hbuf,
                    len,
                    h,
                );
                hbuf
            } else {
                &self.x
            };
            self.ffn_calls(
                m,
                b,
                input,
                up,
                act,
                len,
                mb.map(|x| &x.ffn_gate),
                &mut rec.calls,
            );
            if !pre {
                self.renorm(g, &mut rec, b.ffn_norm.as_ref(), hbuf, len, h);
            }
        }
        rec.finish()
    }

    /// Pre-LN input: `h = norm(x)` (a copy when the block has no norm), then the adaLN
    /// modulation when the block is time-conditioned.
    #[allow(clippy::too_many_arguments)]
    fn prepare(
        &self,
        g: &Gpu,
        rec: &mut Recorder,
        n: Option<&GpuNorm>,
        md: Option<&wgpu::Buffer>,
        hbuf: &wgpu::Buffer,
        len: usize,
        h: usize,
    ) {
        match n {
            Some(n) => rec.calls.push(norm(g, n, &self.x, hbuf, len)),
            None => rec.copy(&self.x, hbuf, (len * h * 4) as u64),
        }
        if let Some(md) = md {
            rec.calls.push(modulate(g, hbuf, md, len, h));
        }
    }

    /// Post-LN: `x = norm(x)`, through `h` because one dispatch cannot read and write a binding.
    fn renorm(
        &self,
        g: &Gpu,
        rec: &mut Recorder,
        n: Option<&GpuNorm>,
        hbuf: &wgpu::Buffer,
        len: usize,
        h: usize,
    ) {
        if let Some(n) = n {
            rec.calls.push(norm(g, n, &self.x, hbuf, len));
            rec.copy(hbuf, &self.x, (len * h * 4) as u64);
        }
    }

    /// `att = attention(qkv(input))` for the rows of `pass`, in layer `layer`: `(input, qkv,
    /// att)` are the buffers; with a cache the rows' keys and values are stored first, so a
    /// span's queries see their own.
    fn attention_calls(
        &self,
        m: &GpuModel,
        b: &GpuBlock,
        (input, qkv, att): (&wgpu::Buffer, &wgpu::Buffer, &wgpu::Buffer),
        cs: Option<&wgpu::Buffer>,
        (pass, layer): (Pass, usize),
        calls: &mut Vec<Call>,
    ) {
        let g = &*m.gpu;
        let len = match pass {
            Pass::Span { n, .. } => n,
            Pass::Plain | Pass::Keep(_) => self.len,
        };
        let shape = m.attention_shape(len);
        calls.extend(matmul(
            g,
            input,
            len,
            &b.qkv.w,
            &Epilogue {
                bias: b.qkv.b.as_ref(),
                gate: None,
                act: None,
                accum: false,
            },
            qkv,
            shape.qkv_dim(),
            0,
        ));
        if let Some(n) = &b.head_norms {
            calls.push(head_norm(g, n, qkv, &shape));
        }
        if let Some(cs) = cs {
            calls.push(rope(g, qkv, cs, &shape));
        }
        match pass {
            Pass::Plain => calls.push(attention(g, qkv, &self.keep, att, &shape, b.keys)),
            Pass::Keep(cache) => {
                calls.push(kv_store(g, qkv, &cache[layer], &shape, 0, self.len));
                calls.push(attention(g, qkv, &self.keep, att, &shape, b.keys));
            }
            Pass::Span { cache, start, .. } => {
                let c = &cache[layer];
                calls.push(kv_store(g, qkv, c, &shape, start, self.len));
                let at = (start, self.len);
                calls.push(attention_cached(
                    g, qkv, c, &self.keep, att, &shape, at, b.keys,
                ));
            }
        }
    }

    /// x += ffn(input) (gated by `gate` when modulated)
    #[allow(clippy::too_many_arguments)]
    fn ffn_calls(
        &self,
        m: &GpuModel,
        b: &GpuBlock,
        input: &wgpu::Buffer,
        up_buf: &wgpu::Buffer,
        act_buf: &wgpu::Buffer,
        len: usize,
        gate: Option<&wgpu::Buffer>,
        calls: &mut Vec<Call>,
    ) {
        let g = &*m.gpu;
        let h = m.hidden;
        match &b.ffn {
            GpuFfn::Plain { up, act, down } => {
                calls.extend(matmul(
                    g,
                    input,
                    len,
                    &up.w,
                    &Epilogue {
                        bias: up.b.as_ref(),
                        gate: None,
                        act: Some(*act),
                        accum: false,
                    },
                    up_buf,
                    up.w.rows,
                    0,
                ));
                calls.extend(matmul(
                    g,
                    up_buf,
                    len,
                    &down.w,
                    &Epilogue {
                        bias: down.b.as_ref(),
                        gate,
                        act: None,
                        accum: true,
                    },
                    &self.x,
                    h,
                    0,
                ));
            }
            GpuFfn::Gated { up, act, down } => {
                let inner = up.w.rows / 2;
                calls.extend(matmul(
                    g,
                    input,
                    len,
                    &up.w,
                    &Epilogue {
                        bias: up.b.as_ref(),
                        gate: None,
                        act: None,
                        accum: false,
                    },
                    up_buf,
                    up.w.rows,
                    0,
                ));
                calls.push(glu(g, *act, up_buf, act_buf, len, inner));
                calls.extend(matmul(
                    g,
                    act_buf,
                    len,
                    &down.w,
                    &Epilogue {
                        bias: down.b.as_ref(),
                        gate,
                        act: None,
                        accum: true,
                    },
                    &self.x,
                    h,
                    0,
                ));
            }
        }
    }

    /// The head on `count` gathered rows; with `prior`, Plaid's output prior added to the
    /// logits: the rows' `(α/σ²)·z` gathered like the hidden rows, times the table's transpose.
    fn head_ops(&mut self, m: &GpuModel, count: usize, prior: bool) -> &Vec<Op> {
        let key = (count, prior);
        if !self.heads.contains_key(&key) {
            let g = &*m.gpu;
            let h = m.hidden;
            let (a, b, c) = (&self.head_bufs.0, &self.head_bufs.1, &self.head_bufs.2);
            let mut calls = vec![gather(g, &self.x, &self.rows, a, count, h)];
            // a: gathered rows → b: final norm (modulated) → c: transform → logits
            let mut cur = a;
            if let Some(n) = &m.final_norm {
                calls.push(norm(g, n, cur, b, count));
                cur = b;
            }
            if let Some(fm) = &self.final_mod {
                calls.push(modulate(g, cur, fm, count, h));
            }
            if let Some((dense, act, nm)) = &m.transform {
                let out = if std::ptr::eq(cur, b) { c } else { b };
                calls.extend(matmul(
                    g,
                    cur,
                    count,
                    &dense.w,
                    &Epilogue {
                        bias: dense.b.as_ref(),
                        gate: None,
                        act: Some(*act),
                        accum: false,
                    },
                    out,
                    h,
                    0,
                ));
                let normed = if std::ptr::eq(out, b) { c } else { a };
                calls.push(norm(g, nm, out, normed, count));
                cur = normed;
            }
            calls.extend(matmul(
                g,
                cur,
                count,
                &m.decoder.w,
                &Epilogue {
                    bias: m.decoder.b.as_ref(),
                    gate: None,
                    act: None,
                    accum: false,
                },
                &self.logits,
                m.vocab,
                0,
            ));
            if let (true, Some(v), Some(vb)) = (prior, &m.vectors, &self.vectors) {
                calls.push(gather(
                    g,
                    &vb.prior,
                    &self.rows,
                    &vb.prior_rows,
                    count,
                    v.width,
                ));
                calls.extend(matmul(
                    g,
                    &vb.prior_rows,
                    count,
                    &v.table,
                    &Epilogue {
                        bias: None,
                        gate: None,
                        act: None,
                        accum: true,
                    },
                    &self.logits,
                    m.vocab,
                    0,
                ));
            }
            self.heads.insert(key, vec![Op::Calls(calls)]);
        }
        &self.heads[&key]
    }

    /// Writes the canvas (ids, positions, types, padding mask, adaLN for σ; a continuous
    /// model's vectors and output prior) into the session. Returns whether the head adds the
    /// output prior.
    fn write_inputs(&self, m: &GpuModel, row: &Row) -> Result<bool> {
        let g = &*m.gpu;
        let len = row.ids.len();
        if len != self.len {
            return Err(Error::input(format!(
                "GPU session is for {} tokens, got {len}",
                self.len
            )));
        }
        m.check_input(row)?;
        let mut prior = false;
        if let (Some(v), Some(vb), Some(rv)) = (&m.vectors, &self.vectors, row.vectors) {
            g.write(&vb.input, rv.input);
            if !rv.prior.is_empty() {
                if rv.prior.len() != len * v.width {
                    return Err(Error::input(format!(
                        "the output prior has {} values, expected 0 or {} ({len} positions of width {})",
                        rv.prior.len(),
                        len * v.width,
                        v.width
                    )));
                }
                if v.readout != Readout::Softmax {
                    return Err(Error::input(
                        "an output prior is added to logits over the vocabulary; this model's head gives one logit per bit",
                    ));
                }
                g.write(&vb.prior, rv.prior);
                prior = true;
            }
        }
        g.write(&self.ids, row.ids);
        let pos: Vec<u32> = match m.pos_kind {
            Some(k) => position_ids(k, row.ids).iter().map(|&p| p as u32).collect(),
            None => (0..len as u32).collect(),
        };
        g.write(&self.pos_ids, &pos);
        let types: Vec<u32> = row.token_types.map_or_else(|| vec![0; len], |t| t.to_vec());
        g.write(&self.type_ids, &types);
        let keep: Vec<u32> = (0..len)
            .map(|j| u32::from(row.key_mask.is_none_or(|k| k[j])))
            .collect();
        g.write(&self.keep, &keep);
        if let Some(cond) = &m.conditioning {
            let c = adaln::conditioning(cond, row.sigma);
            let h = m.hidden;
            let mut k = 0;
            for b in &m.blocks {
                if let Some(ml) = &b.modulation {
                    let v = linear(&c, 1, ml);
                    let mb = &self.mods[k];
                    g.write(&mb.attn, &v[..2 * h]);
                    g.write(&mb.attn_gate, &v[2 * h..3 * h]);
                    g.write(&mb.ffn, &v[3 * h..5 * h]);
                    g.write(&mb.ffn_gate, &v[5 * h..6 * h]);
                    k += 1;
                }
            }
            if let (Some(fm), Some(buf)) = (&m.final_modulation, &self.final_mod) {
                g.write(buf, &linear(&c, 1, fm));
            }
        }
        Ok(prior)
    }

    /// `allowed` on the device, uploaded on the session's first use (a denoiser's `allowed`
    /// does not change) and padded with zeros to every id the kernels read.
    fn allowed(&mut self, m: &GpuModel, allowed: &[bool]) -> wgpu::Buffer {
        self.allowed
            .get_or_insert_with(|| {
                let mut a: Vec<u32> = allowed.iter().map(|&x| u32::from(x)).collect();
                a.resize(a.len().max(m.allowed_len()), 0);
                m.gpu.upload("allowed", &a)
            })
            .clone()
    }

    /// Gets the cache ready for `pass` over `row` with the head on `rows`: the buffers and the
    /// refresh on first use, a span's ids written and its dispatches recorded. Refuses what
    /// the CPU's `kv_cache` refuses: a model it does not serve, a span outside the canvas or
    /// not holding every row, a span before any refresh.
    fn prepare_cache(
        &mut self,
        m: &GpuModel,
        row: &Row,
        rows: &[usize],
        pass: CachePass,
    ) -> Result<()> {
        if let Some(why) = m.cache_unsupported {
            return Err(Error::input(format!(
                "the key/value cache does not serve a model with {why}"
            )));
        }
        let g = &*m.gpu;
        let len = self.len;
        if self.kv.is_none() {
            let bytes = (len * 2 * m.kv_heads * m.head_dim * 4) as u64;
            if bytes > g.max_binding() {
                return Err(Error::gpu(
                    GpuFault::Failed,
                    format!("one layer's keys and values for {len} positions ({bytes} bytes) exceed one storage binding"),
                ));
            }
            let layers = (0..m.blocks.len())
                .map(|i| g.storage(&format!("kv.{i}"), bytes))
                .collect::<Vec<_>>();
            let refresh = self.record_backbone(m, Pass::Keep(&layers));
            self.kv = Some(KvBuffers {
                span_ids: g.storage("kv.span_ids", (len.max(1) * 4) as u64),
                layers,
                refresh,
                spans: HashMap::new(),
                filled: false,
            });
        }
        let CachePass::Span { start, end } = pass else {
            return Ok(());
        };
        let kv = self.kv.as_ref().expect("made above");
        if !kv.filled {
            return Err(Error::input(format!(
                "a span pass over a canvas of {len} tokens with no cache of it: refresh first"
            )));
        }
        if let Some(&r) = rows.iter().find(|&&r| r < start || r >= end) {
            return Err(Error::input(format!(
                "row {r} is outside the span {start}..{end} of a cached pass"
            )));
        }
        if start >= end || end > len {
            return Err(Error::input(format!(
                "span {start}..{end} is not inside the canvas of {len} tokens"
            )));
        }
        g.write(&kv.span_ids, &row.ids[start..end]);
        if !kv.spans.contains_key(&(start, end)) {
            let pass = Pass::Span {
                cache: &kv.layers,
                ids: &kv.span_ids,
                start,
                n: end - start,
            };
            let ops = self.record_backbone(m, pass);
            let spans = &mut self.kv.as_mut().expect("made above").spans;
            if spans.len() >= MAX_SPANS {
                spans.clear();
            }
            spans.insert((start, end), ops);
        }
        Ok(())
    }

    /// Frees the key/value cache (another canvas length holds the denoiser's cache now).
    pub fn drop_cache(&mut self) {
        self.kv = None;
    }

    /// Whether a refresh has filled this session's key/value cache.
    pub fn cache_filled(&self) -> bool {
        self.kv.as_ref().is_some_and(|kv| kv.filled)
    }

    fn encode_step(
        &mut self,
        m: &GpuModel,
        rows: &[usize],
        prior: bool,
        extra: &[&Call],
        pass: Option<CachePass>,
    ) -> wgpu::CommandBuffer {
        let g = &*m.gpu;
        // a span pass's hidden states are its rows only, the first at row 0
        let first = match pass {
            Some(CachePass::Span { start, .. }) => start,
            _ => 0,
        };
        let rows_u: Vec<u32> = rows.iter().map(|&r| (r - first) as u32).collect();
        g.write(&self.rows, &rows_u);
        let mut enc = g
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("step"),
            });
        let backbone = match (pass, &mut self.kv) {
            (None, _) => &self.backbone,
            (Some(CachePass::Refresh), Some(kv)) => {
                kv.filled = true;
                &kv.refresh
            }
            (Some(CachePass::Span { start, end }), Some(kv)) => &kv.spans[&(start, end)],
            (Some(_), None) => unreachable!("prepare_cache made the cache"),
        };
        record_ops(&mut enc, backbone);
        let head = self.head_ops(m, rows.len(), prior);
        record_ops(&mut enc, head);
        if !extra.is_empty() {
            super::context::record(&mut enc, extra);
        }
        enc.finish()
    }

    fn check_rows(&self, rows: &[usize]) -> Result<()> {
        if rows.is_empty() || rows.len() > self.max_rows {
            return Err(Error::input(format!(
                "GPU session takes 1..={} head rows, got {}",
                self.max_rows,
                rows.len()
            )));
        }
        if let Some(&r) = rows.iter().find(|&&r| r >= self.len) {
            return Err(Error::input(format!(
                "row {r} is outside the canvas of {} tokens",
                self.len
            )));
        }
        Ok(())
    }

    /// Logits `[rows.len(), V]` of the given canvas rows (the full-logits path: `unmask forward`).
    pub async fn logits(
        &mut self,
        m: &GpuModel,
        row: &Row<'_>,
        rows: &[usize],
    ) -> Result<Vec<f32>> {
        self.logits_pass(m, row, rows, None).await
    }

    /// [`logits`](GpuSession::logits) through the key/value cache when `pass` says so: a
    /// refresh keeps it, a span pass runs positions `start..end` only (every row in it).
    pub async fn logits_pass(
        &mut self,
        m: &GpuModel,
        row: &Row<'_>,
        rows: &[usize],
        pass: Option<CachePass>,
    ) -> Result<Vec<f32>> {
        self.check_rows(rows)?;
        let prior = self.write_inputs(m, row)?;
        if let Some(p) = pass {
            self.prepare_cache(m, row, rows, p)?;
        }
        let cb = self.encode_step(m, rows, prior, &[], pass);
        m.gpu.queue.submit([cb]);
        m.gpu
            .read::<f32>(&[(&self.logits, 0, (rows.len() * m.vocab) as u64)])
            .await
    }

    /// One denoising step for the sampler: the backbone (through the key/value cache as
    /// `ask.cache` says), the head on `rows`, and the per-row reductions; only the summaries
    /// come back.
    pub async fn summaries(
        &mut self,
        m: &GpuModel,
        row: &Row<'_>,
        rows: &[usize],
        ask: &Ask<'_>,
        allowed: &[bool],
        temperature: f64,
    ) -> Result<Vec<RowSummary>> {
        self.check_rows(rows)?;
        let probes = ask.probes;
        if !probes.is_empty() && probes.len() != rows.len() * PROBES {
            return Err(Error::input(format!(
                "{} probed ids for {} rows: give {PROBES} per row or none",
                probes.len(),
                rows.len()
            )));
        }
        let prior = self.write_inputs(m, row)?;
        if let Some(p) = ask.cache {
            self.prepare_cache(m, row, rows, p)?;
        }
        self.reduce.write_ask(&m.gpu, ask);
        let allowed = self.allowed(m, allowed);
        let key = (rows.len(), temperature.to_bits(), !probes.is_empty());
        if !self.reducers.contains_key(&key) {
            let c = reduce(
                &m.gpu,
                &self.logits,
                &allowed,
                &self.reduce,
                (rows.len(), m.vocab),
                temperature,
                !probes.is_empty(),
            );
            self.reducers.insert(key, c);
        }
        let reducer = self.reducers.remove(&key).expect("inserted above");
        let cb = self.encode_step(m, rows, prior, &[&reducer], ask.cache);
        self.reducers.insert(key, reducer);
        m.gpu.queue.submit([cb]);
        self.reduce.read(&m.gpu, rows.len(), m.vocab, ask).await
    }

    /// One step of a continuous family in one submission: the backbone over the vector canvas,
    /// the head on every position (with the output prior when the row has one), the estimate
    /// and the update. Reads back x̂0, the readout, p and the new canvas, never the logits. The
    /// caller has checked `step` against the model ([`VectorStep::check`]).
    pub async fn vector_step(&mut self, m: &GpuModel, step: &VectorStep<'_>) -> Result<VectorOut> {
        let v = m
            .vectors
            .as_ref()
            .ok_or_else(|| Error::input("a continuous step on a model that reads token ids"))?;
        let (len, w) = (self.len, v.width);
        if len > self.max_rows {
            return Err(Error::input(format!(
                "a continuous step runs the head on all {len} positions at once, but this session takes {} head rows",
                self.max_rows
            )));
        }
        let prior = self.write_inputs(m, &step.row)?;
        let g = &*m.gpu;
        let allowed = self.allowed(m, step.allowed);
        let vb = self.vectors.as_mut().expect("a continuous model's session");
        g.write(&vb.z, step.z);
        if step.noise_coef != 0.0 {
            g.write(&vb.noise, step.noise);
        }
        let known: Vec<u32> = step.known.iter().map(|&k| u32::from(k)).collect();
        g.write(&vb.known, &known);
        g.write(&vb.clean, step.clean);
        g.write(
            &vb.coef,
            &coefficients(step.z_coef, step.x0_coef, step.noise_coef),
        );
        if !vb.calls.contains_key(&step.round) {
            let est = estimate(
                g,
                v.readout,
                &self.logits,
                &v.table.chunks[0].buffer,
                &allowed,
                &EstimateOut {
                    x0: &vb.x0,
                    tokens: &vb.tokens,
                    prob: &vb.prob,
                },
                (len, m.vocab, v.table.rows, w),
                step.round,
            );
            let upd = vector_update(
                g,
                &UpdateBuffers {
                    z: &vb.z,
                    x0: &vb.x0,
                    noise: &vb.noise,
                    known: &vb.known,
                    clean: &vb.clean,
                    coef: &vb.coef,
                    z_out: &vb.z_out,
                },
                len,
                w,
            );
            vb.calls.insert(step.round, (est, upd));
        }
        let (est, upd) = vb.calls.remove(&step.round).expect("inserted above");
        let all: Vec<usize> = (0..len).collect();
        let cb = self.encode_step(m, &all, prior, &[&est, &upd], None);
        let vb = self.vectors.as_mut().expect("a continuous model's session");
        vb.calls.insert(step.round, (est, upd));
        g.queue.submit([cb]);
        let words: Vec<u32> = g
            .read(&[
                (&vb.x0, 0, (len * w) as u64),
                (&vb.tokens, 0, len as u64),
                (&vb.prob, 0, len as u64),
                (&vb.z_out, 0, (len * w) as u64),
            ])
            .await?;
        let f = |s: &[u32]| s.iter().map(|&b| f32::from_bits(b)).collect::<Vec<f32>>();
        let (x0, rest) = words.split_at(len * w);
        let (tokens, rest) = rest.split_at(len);
        let (p, z) = rest.split_at(len);
        Ok(VectorOut {
            x0: f(x0),
            tokens: tokens.to_vec(),
            p: f(p),
            z: f(z),
        })
    }

    /// One row of the last step's logits (the sampler's fallback when a draw lands outside the
    /// top-K candidates).
    pub async fn logits_row(&self, m: &GpuModel, k: usize) -> Result<Vec<f32>> {
        m.gpu
            .read::<f32>(&[(&self.logits, (k * m.vocab) as u64, m.vocab as u64)])
            .await
    }
}

fn record_ops(enc: &mut wgpu::CommandEncoder, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Calls(c) => super::context::record(enc, &c.iter().collect::<Vec<_>>()),
            Op::Copy(src, dst, bytes) => enc.copy_buffer_to_buffer(src, 0, dst, 0, *bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::test_gpu;
    use crate::blocking::block_on;

    fn workgroups(ops: &[Op]) -> Vec<u64> {
        ops.iter()
            .flat_map(|op| match op {
                Op::Calls(c) => c
                    .iter()
                    .map(|c| c.groups.iter().map(|&g| g as u64).product())
                    .collect(),
                Op::Copy(..) => Vec::new(),
            })
            .collect()
    }

    /// A span pass dispatches the refresh's kernels in the same order, each on the span's rows
    /// only: no dispatch is larger, and over 7 of 200 positions the whole pass is a small
    /// fraction (matmul tiles of 32 rows round 7 up; attention still reads every key).
    #[test]
    fn a_span_pass_runs_only_its_rows() {
        let Some(gpu) = test_gpu() else { return };
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/a2d_qwen3");
        let model = crate::model::Model::load(&dir).unwrap();
        let gm = block_on(GpuModel::upload(
            Arc::new(gpu),
            model.plan().unwrap(),
            false,
        ))
        .unwrap();
        let len = 200;
        let mut s = block_on(gm.session(len, 8)).unwrap();
        let ids: Vec<u32> = (0..len).map(|i| (i * 37 % 300) as u32).collect();
        let row = Row::plain(&ids, 0.0);
        s.prepare_cache(&gm, &row, &[0], CachePass::Refresh)
            .unwrap();
        s.kv.as_mut().unwrap().filled = true;
        let span = CachePass::Span { start: 3, end: 10 };
        s.prepare_cache(&gm, &row, &[4], span).unwrap();
        let kv = s.kv.as_ref().unwrap();
        let (full, part) = (workgroups(&kv.refresh), workgroups(&kv.spans[&(3, 10)]));
        assert_eq!(full.len(), part.len(), "the same dispatches");
        assert!(full.iter().zip(&part).all(|(f, p)| p <= f));
        let (f, p) = (full.iter().sum::<u64>(), part.iter().sum::<u64>());
        eprintln!("workgroups: {p} for a span of 7 rows, {f} for the refresh of 200");
        assert!(p * 5 < f, "{p} workgroups for 7 rows, {f} for 200");
    }
}
