//! Keys and values kept between passes, so a pass can compute only a span of the canvas:
//! Fast-dLLM's DualCache (the known text before and after a block of holes is reused while the
//! block is decoded, refreshed at block boundaries; families-reference §8) and BD3LM's finished
//! blocks (§7, where reuse is exact: no block sees a later one).
//!
//! A refresh runs the whole canvas as [`encode`](super::encode) does and keeps every layer's
//! keys and values (after the q/k norms and RoPE, at absolute positions: Fast-dLLM's pre-RoPE
//! cache re-rotated each call is the same). A span pass runs positions `start..end` only: their
//! keys and values replace the cached ones in place (so they persist to the next step, as in
//! Fast-dLLM's `replace_position`), and their queries attend to the whole cache.
//!
//! Both run the blocks as [`encode`](super::encode) does (`super::block` with a [`Kv`]). Models
//! with a position table, token types or time conditioning are not served: those inputs would
//! have to be sliced per row, and the models the cache is for (LLaDA, Dream, Qwen3 A2D, the
//! folded default MDLM) have none.

use super::{embed, head, norm, Kv};
use crate::backend::AttentionShape;
use crate::batch::Row;
use crate::error::{Error, Result};
use crate::model::plan::{Keys, Plan};

/// One layer's keys and values, `[len, kv_heads·hd]` each.
#[derive(Clone, Debug, Default)]
pub struct KvLayer {
    k: Vec<f32>,
    v: Vec<f32>,
}

impl KvLayer {
    /// Writes the k and v columns of fused qkv rows (positions `first..first + shape.len`).
    pub(crate) fn store(&mut self, qkv: &[f32], shape: &AttentionShape, first: usize) {
        let (hd, kv) = (shape.head_dim, shape.kv_heads);
        let (q_end, w) = (shape.heads * hd, kv * hd);
        let need = (first + shape.len) * w;
        if self.k.len() < need {
            self.k.resize(need, 0.0);
            self.v.resize(need, 0.0);
        }
        for (r, row) in qkv.chunks_exact(shape.qkv_dim()).enumerate() {
            let at = (first + r) * w;
            self.k[at..at + w].copy_from_slice(&row[q_end..q_end + w]);
            self.v[at..at + w].copy_from_slice(&row[q_end + w..q_end + 2 * w]);
        }
    }

    /// The keys, `[len, kv_heads·hd]` (the GPU cache's test reads them).
    #[cfg(all(test, feature = "gpu"))]
    pub(crate) fn k(&self) -> &[f32] {
        &self.k
    }

    /// The values, `[len, kv_heads·hd]`.
    #[cfg(all(test, feature = "gpu"))]
    pub(crate) fn v(&self) -> &[f32] {
        &self.v
    }
}

/// Every layer's keys and values for one canvas length.
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    pub len: usize,
    layers: Vec<KvLayer>,
}

/// Why a plan cannot run span passes, or `None` when it can.
pub fn unsupported(plan: &Plan) -> Option<&'static str> {
    if plan.conditioning.is_some() {
        Some("time conditioning")
    } else if plan.vectors.is_some() {
        Some("a continuous input")
    } else if plan.embeddings.positions.is_some() || plan.embeddings.token_types.is_some() {
        Some("a position or token-type table")
    } else {
        None
    }
}

/// The whole canvas, keeping every layer's keys and values: the hidden states `[len, hidden]`
/// (before the final norm) and the cache.
pub fn refresh(plan: &Plan, row: &Row) -> (Vec<f32>, KvCache) {
    let len = row.ids.len();
    let mut x = embed::embed(&plan.embeddings, row.ids, None);
    if let Some(n) = &plan.embeddings.norm {
        norm::apply(n, &mut x);
    }
    let mut layers = vec![KvLayer::default(); plan.blocks.len()];
    for (b, layer) in plan.blocks.iter().zip(&mut layers) {
        super::block(plan, b, &mut x, len, row.key_mask, None, Kv::Keep(layer));
    }
    (x, KvCache { len, layers })
}

/// Positions `start..end` of `row` over `cache`: their hidden states `[end − start, hidden]`.
/// Their keys and values replace the cached ones.
pub fn span(
    plan: &Plan,
    row: &Row,
    cache: &mut KvCache,
    start: usize,
    end: usize,
) -> Result<Vec<f32>> {
    let len = row.ids.len();
    if cache.len != len || cache.layers.len() != plan.blocks.len() {
        return Err(Error::input(format!(
            "a span pass over a canvas of {len} tokens with a cache of {} tokens: refresh first",
            cache.len
        )));
    }
    if start >= end || end > len {
        return Err(Error::input(format!(
            "span {start}..{end} is not inside the canvas of {len} tokens"
        )));
    }
    let n = end - start;
    let mut x = embed::embed(&plan.embeddings, &row.ids[start..end], None);
    if let Some(nm) = &plan.embeddings.norm {
        norm::apply(nm, &mut x);
    }
    for (b, layer) in plan.blocks.iter().zip(&mut cache.layers) {
        let kv = Kv::Span { layer, start, len };
        super::block(plan, b, &mut x, n, row.key_mask, None, kv);
    }
    Ok(x)
}

/// Logits `[rows.len(), V]` of canvas rows that lie in `start..end`, from a span pass's hidden
/// states.
pub fn span_head(plan: &Plan, hidden: &[f32], start: usize, rows: &[usize]) -> Vec<f32> {
    let h = plan.hidden;
    let mut picked = Vec::with_capacity(rows.len() * h);
    for &r in rows {
        picked.extend_from_slice(&hidden[(r - start) * h..(r - start + 1) * h]);
    }
    head(plan, &picked, rows.len(), None)
}

/// The span's queries (rows of fused `qkv`, at positions `first..`) over every cached key and
/// value, with the padding mask and the plan's key range: `[n, heads·hd]`.
pub(crate) fn attend(
    qkv: &[f32],
    layer: &KvLayer,
    s: &AttentionShape,
    len: usize,
    first: usize,
    key_mask: Option<&[bool]>,
    keys: Keys,
) -> Vec<f32> {
    let (heads, kv, hd) = (s.heads, s.kv_heads, s.head_dim);
    let (h, width, kw) = (heads * hd, s.qkv_dim(), kv * hd);
    let group = heads / kv;
    let scale = 1.0 / (hd as f32).sqrt();
    let per_head = |head: usize| -> Vec<f32> {
        let kvh = head / group;
        let mut out = vec![0.0f32; s.len * hd];
        let mut w = vec![0.0f32; len];
        for (r, o) in out.chunks_exact_mut(hd).enumerate() {
            let q = &qkv[r * width + head * hd..][..hd];
            let (lo, hi) = keys.range(first + r, len);
            let mut max = f32::NEG_INFINITY;
            for j in lo..hi {
                if key_mask.is_some_and(|m| !m[j]) {
                    w[j] = f32::NEG_INFINITY;
                    continue;
                }
                let k = &layer.k[j * kw + kvh * hd..][..hd];
                let d: f32 = q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale;
                w[j] = d;
                max = max.max(d);
            }
            if max == f32::NEG_INFINITY {
                continue;
            }
            let mut sum = 0.0f32;
            for wj in &mut w[lo..hi] {
                *wj = (*wj - max).exp();
                sum += *wj;
            }
            for (j, &wj) in (lo..hi).zip(&w[lo..hi]) {
                if wj == 0.0 {
                    continue;
                }
                let v = &layer.v[j * kw + kvh * hd..][..hd];
                o.iter_mut().zip(v).for_each(|(a, b)| *a += wj * b);
            }
            o.iter_mut().for_each(|a| *a /= sum);
        }
        out
    };
    let outs: Vec<Vec<f32>> = super::map_indices(heads, per_head);
    let mut out = vec![0.0f32; s.len * h];
    for (head, o) in outs.iter().enumerate() {
        for r in 0..s.len {
            out[r * h + head * hd..r * h + (head + 1) * hd]
                .copy_from_slice(&o[r * hd..(r + 1) * hd]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A span pass over a fresh cache is the full pass's rows for that span: the cache holds
    /// exactly the keys and values the span would compute (the canvas did not change).
    #[test]
    fn a_span_over_an_unchanged_canvas_is_the_full_pass() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/a2d_qwen3");
        let model = crate::model::Model::load(&dir).unwrap();
        let plan = model.plan().unwrap();
        assert_eq!(unsupported(plan), None);
        let ids: Vec<u32> = (0..19).map(|i| (i * 37 % 300) as u32).collect();
        let row = Row::plain(&ids, 0.0);
        let (full, mut cache) = refresh(plan, &row);
        let h = plan.hidden;
        for (start, end) in [(0, ids.len()), (3, 7), (ids.len() - 1, ids.len())] {
            let got = span(plan, &row, &mut cache, start, end).unwrap();
            let want = &full[start * h..end * h];
            let e = got
                .iter()
                .zip(want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(e < 1e-4, "{start}..{end}: {e}");
        }
        assert!(span(plan, &row, &mut cache, 5, 5).is_err());
        assert!(span(plan, &Row::plain(&ids[1..], 0.0), &mut cache, 0, 2).is_err());
    }
}
