//! The CPU backend: plain Rust executing a [`Plan`], the reference every other backend is
//! tested against and the fallback wherever no GPU adapter exists (the browser included).
//! One file per op; this file composes them into blocks, the encoder and the head.

pub(crate) mod activation;
pub(crate) mod attention;
pub mod continuous;
mod denoiser;
pub(crate) mod embed;
pub(crate) mod exp;
pub(crate) mod glu;
pub mod kv_cache;
pub mod matmul;
pub mod modulate;
pub(crate) mod norm;
pub mod panels;
pub(crate) mod rope;

use crate::batch::Batch;
pub use crate::batch::Row;
use crate::model::plan::{Block, Ffn, NormPlacement, Plan};
use crate::tensor::Tensor;

use super::ForwardOutput;
use crate::backend::AttentionShape;
use attention::attention;
pub use denoiser::CpuDenoiser;
use matmul::linear;
use modulate::{gated_residual, modulate};

/// In the threaded wasm build, runs `f` on a thread of the pool, so the parallel loops inside
/// it share work among pool threads. Called from outside the pool (the worker a page runs the
/// model in), every loop would be handed to the pool and its caller put to sleep and woken
/// again, dozens of times per forward pass; in the browser that round trip ate the second
/// thread's gain at L = 128 (175 -> 128 ms with this, chromium, 2 threads). Natively it
/// measured no better (L = 512 slower, within noise), so natively `f` runs where it is.
pub(crate) fn in_pool<R: Send, F: FnOnce() -> R + Send>(f: F) -> R {
    #[cfg(all(target_arch = "wasm32", feature = "wasm-threads"))]
    {
        rayon::scope(|_| f())
    }
    #[cfg(not(all(target_arch = "wasm32", feature = "wasm-threads")))]
    {
        f()
    }
}

/// Applies `f` to every `cols`-wide row, in parallel natively (and with `wasm-threads`).
pub(crate) fn for_rows<F: Fn(&mut [f32]) + Sync + Send>(data: &mut [f32], cols: usize, f: F) {
    #[cfg(any(not(target_arch = "wasm32"), feature = "wasm-threads"))]
    {
        use rayon::prelude::*;
        // Small tensors are not worth waking the pool for.
        if data.len() >= 1 << 15 {
            data.par_chunks_mut(cols).for_each(f);
            return;
        }
    }
    data.chunks_mut(cols).for_each(f);
}

/// Threads the parallel loops here may use: the rayon pool's natively (and with
/// `wasm-threads`), one otherwise.
#[allow(dead_code)] // only the panel kernel asks (x86-64 and wasm32 with simd128)
pub(crate) fn threads() -> usize {
    #[cfg(any(not(target_arch = "wasm32"), feature = "wasm-threads"))]
    {
        rayon::current_num_threads()
    }
    #[cfg(all(target_arch = "wasm32", not(feature = "wasm-threads")))]
    {
        1
    }
}

/// `(0..n).for_each(f)`, in parallel natively (and with `wasm-threads`).
#[allow(dead_code)] // no caller where the panel kernel does not run
pub(crate) fn for_each_index<F: Fn(usize) + Sync + Send>(n: usize, f: F) {
    #[cfg(any(not(target_arch = "wasm32"), feature = "wasm-threads"))]
    {
        use rayon::prelude::*;
        (0..n).into_par_iter().for_each(f);
    }
    #[cfg(all(target_arch = "wasm32", not(feature = "wasm-threads")))]
    {
        (0..n).for_each(f);
    }
}

/// `(0..n).map(f)`, in parallel natively (and with `wasm-threads`).
pub(crate) fn map_indices<T: Send, F: Fn(usize) -> T + Sync + Send>(n: usize, f: F) -> Vec<T> {
    #[cfg(any(not(target_arch = "wasm32"), feature = "wasm-threads"))]
    {
        use rayon::prelude::*;
        (0..n).into_par_iter().map(f).collect()
    }
    #[cfg(all(target_arch = "wasm32", not(feature = "wasm-threads")))]
    {
        (0..n).map(f).collect()
    }
}

/// The backbone's output for one sequence.
pub struct Encoded {
    /// `[len, hidden]`, before the final norm.
    pub hidden: Vec<f32>,
    /// MDLM's conditioning vector, when the plan is time-conditioned (not folded).
    pub cond: Option<Vec<f32>>,
    /// With `capture`: the embedding output, then each block's output.
    pub layers: Vec<Vec<f32>>,
}

pub fn encode(plan: &Plan, row: &Row, capture: bool) -> Encoded {
    let len = row.ids.len();
    let cond = plan
        .conditioning
        .as_ref()
        .map(|c| modulate::conditioning(c, row.sigma));
    // the continuous families: [z | x_sc] through one product instead of a lookup
    // (`check_input` has matched the row to the plan)
    let mut x = match (&plan.vectors, row.vectors) {
        (Some(io), Some(v)) => linear(v.input, len, &io.input),
        _ => embed::embed(&plan.embeddings, row.ids, row.token_types),
    };
    if let Some(n) = &plan.embeddings.norm {
        norm::apply(n, &mut x);
    }
    let mut layers = Vec::new();
    if capture {
        layers.push(x.clone());
    }
    for b in &plan.blocks {
        block(
            plan,
            b,
            &mut x,
            len,
            row.key_mask,
            cond.as_deref(),
            Kv::None,
        );
        if capture {
            layers.push(x.clone());
        }
    }
    Encoded {
        hidden: x,
        cond,
        layers,
    }
}

/// What a block does with its keys and values ([`kv_cache`]).
pub(crate) enum Kv<'a> {
    /// The rows are the whole canvas; nothing is kept.
    None,
    /// The rows are the whole canvas; their keys and values are kept.
    Keep(&'a mut kv_cache::KvLayer),
    /// The rows are positions `start..` of a canvas of `len`: their keys and values replace the
    /// layer's at those slots, and their queries attend to all of the layer's.
    Span {
        layer: &'a mut kv_cache::KvLayer,
        start: usize,
        len: usize,
    },
}

/// One block on `len` rows of `x`, in place. `key_mask` covers the keys attended to: the
/// rows themselves, or with [`Kv::Span`] the whole canvas.
fn block(
    plan: &Plan,
    b: &Block,
    x: &mut [f32],
    len: usize,
    key_mask: Option<&[bool]>,
    cond: Option<&[f32]>,
    kv: Kv,
) {
    let h = plan.hidden;
    let mods = b
        .modulation
        .as_ref()
        .map(|m| linear(cond.expect("a modulated plan carries conditioning"), 1, m));
    let part = |i: usize| mods.as_ref().map(|m| &m[i * h..(i + 1) * h]);
    match b.placement {
        NormPlacement::Pre => {
            let mut a = match &b.attn_norm {
                Some(n) => norm::normed(n, x),
                None => x.to_vec(),
            };
            if let (Some(shift), Some(scale)) = (part(0), part(1)) {
                modulate(&mut a, shift, scale);
            }
            let o = attention_branch(plan, b, &a, len, key_mask, kv);
            gated_residual(x, &o, part(2));
            let mut f = match &b.ffn_norm {
                Some(n) => norm::normed(n, x),
                None => x.to_vec(),
            };
            if let (Some(shift), Some(scale)) = (part(3), part(4)) {
                modulate(&mut f, shift, scale);
            }
            let o = ffn(&b.ffn, &f, len);
            gated_residual(x, &o, part(5));
        }
        NormPlacement::Post => {
            let o = attention_branch(plan, b, x, len, key_mask, kv);
            gated_residual(x, &o, None);
            if let Some(n) = &b.attn_norm {
                norm::apply(n, x);
            }
            let o = ffn(&b.ffn, x, len);
            gated_residual(x, &o, None);
            if let Some(n) = &b.ffn_norm {
                norm::apply(n, x);
            }
        }
    }
}

fn attention_branch(
    plan: &Plan,
    b: &Block,
    x: &[f32],
    len: usize,
    key_mask: Option<&[bool]>,
    kv: Kv,
) -> Vec<f32> {
    let mut qkv = linear(x, len, &b.qkv);
    let shape = AttentionShape {
        len,
        heads: plan.heads,
        kv_heads: plan.kv_heads,
        head_dim: plan.head_dim,
    };
    if let Some(n) = &b.head_norms {
        norm::apply_heads(n, &mut qkv, &shape);
    }
    let first = match &kv {
        Kv::Span { start, .. } => *start,
        _ => 0,
    };
    if let Some(r) = &b.rope {
        rope::apply_qkv_at(r, &mut qkv, &shape, first);
    }
    let a = match kv {
        Kv::None => attention(&qkv, &shape, key_mask, b.keys),
        Kv::Keep(layer) => {
            layer.store(&qkv, &shape, 0);
            attention(&qkv, &shape, key_mask, b.keys)
        }
        Kv::Span {
            layer,
            start,
            len: canvas,
        } => {
            layer.store(&qkv, &shape, start);
            kv_cache::attend(&qkv, layer, &shape, canvas, start, key_mask, b.keys)
        }
    };
    linear(&a, len, &b.attn_out)
}

fn ffn(f: &Ffn, x: &[f32], len: usize) -> Vec<f32> {
    match f {
        Ffn::Plain { up, act, down } => {
            let mut u = linear(x, len, up);
            activation::apply(*act, &mut u, up.out_dim());
            linear(&u, len, down)
        }
        Ffn::Gated { up, act, down } => {
            let u = linear(x, len, up);
            let g = glu::glu(*act, &u, len, up.out_dim() / 2);
            linear(&g, len, down)
        }
    }
}

/// The backbone's final norm (and output modulation) on `rows` rows of hidden states.
pub fn final_norm(plan: &Plan, hidden: &[f32], rows: usize, cond: Option<&[f32]>) -> Vec<f32> {
    let h = plan.hidden;
    let mut x = hidden.to_vec();
    debug_assert_eq!(x.len(), rows * h);
    if let Some(n) = &plan.head.final_norm {
        norm::apply(n, &mut x);
    }
    if let Some(m) = &plan.head.final_modulation {
        let mods = linear(cond.expect("a modulated plan carries conditioning"), 1, m);
        modulate(&mut x, &mods[..h], &mods[h..2 * h]);
    }
    x
}

/// Logits `[rows, vocab]` for `rows` rows of hidden states: final norm, MLM transform, decoder.
/// The sampler calls this on the masked rows only; `forward` on all of them.
pub fn head(plan: &Plan, hidden: &[f32], rows: usize, cond: Option<&[f32]>) -> Vec<f32> {
    let mut x = final_norm(plan, hidden, rows, cond);
    if let Some((dense, act, n)) = &plan.head.transform {
        x = linear(&x, rows, dense);
        activation::apply(*act, &mut x, dense.out_dim());
        norm::apply(n, &mut x);
    }
    linear(&x, rows, &plan.head.decoder)
}

/// Plaid's output prior on `rows` rows of logits: `+= prior·tableᵀ`, where `prior` holds
/// (α/σ²)·z of each row (`[rows, width]`).
pub fn add_prior(plan: &Plan, logits: &mut [f32], prior: &[f32], rows: usize) {
    let table = crate::model::plan::Linear {
        weight: plan.embeddings.tokens.clone(),
        bias: None,
    };
    let add = linear(prior, rows, &table);
    logits.iter_mut().zip(&add).for_each(|(a, b)| *a += b);
}

/// The full forward pass over a batch: logits `[B, L, V]`, and with `capture` the hidden
/// states after the embeddings and after every block (`[B, L, H]` each) and after the final norm.
pub fn forward(plan: &Plan, batch: &Batch, capture: bool) -> ForwardOutput {
    let (bsz, len, h, v) = (batch.size, batch.len, plan.hidden, plan.vocab);
    let mut logits: Vec<f32> = Vec::new();
    let mut layers: Vec<Vec<f32>> = Vec::new();
    let mut finals = Vec::new();
    for b in 0..bsz {
        let row = batch.row(b);
        let enc = encode(plan, &row, capture);
        let row_logits = head(plan, &enc.hidden, len, enc.cond.as_deref());
        // A single row's logits (up to 200 MB) are moved, not copied.
        if logits.is_empty() {
            logits = row_logits;
            logits.reserve_exact((bsz - 1) * len * v);
        } else {
            logits.extend_from_slice(&row_logits);
        }
        if capture {
            if layers.is_empty() {
                layers = vec![Vec::with_capacity(bsz * len * h); enc.layers.len()];
            }
            for (dst, src) in layers.iter_mut().zip(&enc.layers) {
                dst.extend_from_slice(src);
            }
            finals.extend(final_norm(plan, &enc.hidden, len, enc.cond.as_deref()));
        }
    }
    let shape = |d: usize| vec![bsz, len, d];
    ForwardOutput {
        logits: Tensor::new(shape(v), logits),
        hidden_states: layers
            .into_iter()
            .map(|l| Tensor::new(shape(h), l))
            .collect(),
        final_norm: capture.then(|| Tensor::new(shape(h), finals)),
    }
}
