//! Bidirectional multi-head attention over fused qkv rows, with an optional key-padding mask,
//! an optional sliding window or block-causal mask and grouped-query attention (fewer key/value heads than query
//! heads). Scores and the weighted sum go through gemm per head; the heads run in parallel
//! natively.

use super::matmul::matmul_nt;
use crate::backend::AttentionShape;
use crate::model::matrix::{Line, Matrix, PANEL};
use crate::model::plan::Keys;

/// `qkv`: `[len, (heads + 2·kv_heads)·hd]` rows `[q | k | v]`, head-major. `key_mask[j] = false`
/// hides key j; `keys` hides those outside a window or later blocks. Returns `[len, heads·hd]`.
pub fn attention(
    qkv: &[f32],
    s: &AttentionShape,
    key_mask: Option<&[bool]>,
    keys: Keys,
) -> Vec<f32> {
    let (len, heads, kv, hd) = (s.len, s.heads, s.kv_heads, s.head_dim);
    assert!(kv > 0 && heads % kv == 0, "{kv} kv heads for {heads} heads");
    let (h, width) = (heads * hd, s.qkv_dim());
    assert_eq!(qkv.len(), len * width);
    let group = heads / kv;
    let scale = 1.0 / (hd as f32).sqrt();

    // Gathers the `hd` columns at `offset` of every row, so the products are plain row-major
    // gemms.
    let gather = |offset: usize| -> Vec<f32> {
        let mut m = Vec::with_capacity(len * hd);
        for row in qkv.chunks_exact(width) {
            m.extend_from_slice(&row[offset..offset + hd]);
        }
        m
    };

    let per_head = |head: usize| -> Vec<f32> {
        let kvh = head / group;
        let (q, k, v) = (
            gather(head * hd),
            gather(h + kvh * hd),
            gather(h + (kv + kvh) * hd),
        );
        if super::panels::available() {
            // K as panels of 16 keys, Vᵀ as panels of 16 dimensions (line j·len + p is
            // V[p, 16j..16j + 16]): both products go through the panel kernel, on this
            // thread (the heads are the parallel loop), with no transpose of V
            let key_panels = Matrix::f32(len, hd, k).paneled();
            let mut scores = super::panels::matmul_new(&q, len, &key_panels, None, false);
            for (i, row) in scores.chunks_exact_mut(len).enumerate() {
                softmax_masked(row, i, scale, key_mask, keys);
            }
            let mut lines = vec![Line([0.0; PANEL]); hd.div_ceil(PANEL) * len];
            for (j, panel) in lines.chunks_exact_mut(len).enumerate() {
                let (d0, d1) = (j * PANEL, ((j + 1) * PANEL).min(hd));
                for (line, vrow) in panel.iter_mut().zip(v.chunks_exact(hd)) {
                    line.0[..d1 - d0].copy_from_slice(&vrow[d0..d1]);
                }
            }
            let vt = Matrix::from_panels(hd, len, lines);
            return super::panels::matmul_new(&scores, len, &vt, None, false);
        }
        let mut scores = vec![0.0f32; len * len];
        matmul_nt(
            &q,
            len,
            hd,
            &k,
            len,
            &mut scores,
            false,
            gemm_common::Parallelism::None,
        );
        for (i, row) in scores.chunks_exact_mut(len).enumerate() {
            softmax_masked(row, i, scale, key_mask, keys);
        }
        // out = P · V: with V as [len, hd], the "nt" form needs Vᵀ as [hd, len]
        let mut vt = vec![0.0f32; hd * len];
        for j in 0..len {
            for d in 0..hd {
                vt[d * len + j] = v[j * hd + d];
            }
        }
        let mut out = vec![0.0f32; len * hd];
        matmul_nt(
            &scores,
            len,
            len,
            &vt,
            hd,
            &mut out,
            false,
            gemm_common::Parallelism::None,
        );
        out
    };

    let outs: Vec<Vec<f32>> = super::map_indices(heads, per_head);
    let mut out = vec![0.0f32; len * h];
    for (head, o) in outs.iter().enumerate() {
        for i in 0..len {
            out[i * h + head * hd..i * h + (head + 1) * hd]
                .copy_from_slice(&o[i * hd..(i + 1) * hd]);
        }
    }
    out
}

/// Scaled, masked softmax of one score row in place. A row whose keys are all hidden (a padded
/// query outside every window) becomes all zeros instead of NaN.
fn softmax_masked(row: &mut [f32], i: usize, scale: f32, key_mask: Option<&[bool]>, keys: Keys) {
    // Keys outside the window or in later blocks are hidden; those inside may still be padding.
    let (lo, hi) = keys.range(i, row.len());
    row[..lo].fill(0.0);
    row[hi..].fill(0.0);
    let span = &mut row[lo..hi];
    // A NaN or infinite score of a key the query may see comes from non-finite weights (one
    // NaN in a query or key weight poisons every score of its head). Masking below writes −∞
    // over hidden keys and `max` skips NaN, so such a row would come out as finite nonsense:
    // make it NaN instead, as the GPU kernel does, so the sampler stops with
    // `Error::NonFinite`. Hidden keys stay hidden whatever they hold, on both backends.
    let poisoned = match key_mask {
        Some(m) => span
            .iter()
            .zip(&m[lo..hi])
            .any(|(v, &keep)| keep && !v.is_finite()),
        None => span.iter().any(|v| !v.is_finite()),
    };
    if poisoned {
        span.fill(f32::NAN);
        return;
    }
    if let Some(m) = key_mask {
        for (v, &keep) in span.iter_mut().zip(&m[lo..hi]) {
            if !keep {
                *v = f32::NEG_INFINITY;
            }
        }
    }
    // eight running maxima, as the sums below (every visible score is finite here, so the
    // order of the comparisons does not change the result)
    let mut tops = [f32::NEG_INFINITY; 8];
    let mut chunks = span.chunks_exact(8);
    for c in &mut chunks {
        tops.iter_mut()
            .zip(c)
            .for_each(|(t, &v)| *t = super::exp::max(v, *t));
    }
    let max = chunks
        .remainder()
        .iter()
        .chain(&tops)
        .fold(f32::NEG_INFINITY, |a, &b| super::exp::max(b, a));
    if max == f32::NEG_INFINITY {
        span.fill(0.0);
        return;
    }
    // exp(−∞) = 0 hides the padded keys
    super::exp::map(span, |v| super::exp::exp((v - max) * scale));
    // eight running sums, so the loop vectorises (one chain of adds waits on each add)
    let mut lanes = [0.0f32; 8];
    let mut chunks = span.chunks_exact(8);
    for c in &mut chunks {
        lanes.iter_mut().zip(c).for_each(|(s, v)| *s += v);
    }
    let sum = lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>();
    let inv = 1.0 / sum;
    span.iter_mut().for_each(|v| *v *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward f64 attention with the kv heads repeated as `repeat_kv` does.
    fn naive(qkv: &[f32], s: &AttentionShape, mask: Option<&[bool]>, keys: Keys) -> Vec<f32> {
        let (len, heads, hd) = (s.len, s.heads, s.head_dim);
        let (h, w3) = (heads * hd, s.qkv_dim());
        // the kv columns of query head hh, after repeating each kv head `group` times
        let group = heads / s.kv_heads;
        let k_at = |hh: usize| h + (hh / group) * hd;
        let v_at = |hh: usize| h + (s.kv_heads + hh / group) * hd;
        let mut out = vec![0.0f32; len * h];
        for hh in 0..heads {
            for i in 0..len {
                let q = &qkv[i * w3 + hh * hd..][..hd];
                let mut w = vec![f64::NEG_INFINITY; len];
                for (j, wj) in w.iter_mut().enumerate() {
                    let seen = match keys {
                        Keys::All => true,
                        Keys::Window(win) => i.abs_diff(j) <= win,
                        Keys::BlockCausal(n) => j / n <= i / n,
                    };
                    let ok = mask.is_none_or(|m| m[j]) && seen;
                    if ok {
                        let k = &qkv[j * w3 + k_at(hh)..][..hd];
                        *wj = q
                            .iter()
                            .zip(k)
                            .map(|(a, b)| *a as f64 * *b as f64)
                            .sum::<f64>()
                            / (hd as f64).sqrt();
                    }
                }
                let m = w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = w.iter().map(|x| (x - m).exp()).collect();
                let s: f64 = e.iter().sum();
                for d in 0..hd {
                    out[i * h + hh * hd + d] = (0..len)
                        .map(|j| e[j] / s * qkv[j * w3 + v_at(hh) + d] as f64)
                        .sum::<f64>() as f32;
                }
            }
        }
        out
    }

    #[test]
    fn matches_naive_with_masks_windows_and_kv_groups() {
        let len = 11;
        // (heads, kv heads, head dim): plain, groups of 3, one shared kv head
        for (heads, kv_heads, hd) in [(3, 3, 5), (6, 2, 5), (4, 1, 6)] {
            let s = AttentionShape {
                len,
                heads,
                kv_heads,
                head_dim: hd,
            };
            let qkv: Vec<f32> = (0..len * s.qkv_dim())
                .map(|i| ((i * 31 % 23) as f32 - 11.0) / 7.0)
                .collect();
            let mask: Vec<bool> = (0..len).map(|j| j < 8).collect();
            for (m, w) in [
                (None, Keys::All),
                (Some(&mask[..]), Keys::All),
                (None, Keys::Window(2)),
                (Some(&mask[..]), Keys::Window(3)),
                (None, Keys::BlockCausal(4)),
                (Some(&mask[..]), Keys::BlockCausal(3)),
                (None, Keys::BlockCausal(1)),
            ] {
                let got = attention(&qkv, &s, m, w);
                let want = naive(&qkv, &s, m, w);
                let d = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(
                    d < 1e-5,
                    "{heads}/{kv_heads} heads, mask {:?} keys {w:?}: {d}",
                    m.is_some()
                );
            }
        }
    }

    /// A kv head serves consecutive query heads (`repeat_kv`, `repeat_interleave`), not every
    /// `kv_heads`-th one (`repeat`): with two kv heads whose values differ, query heads 0 and 1
    /// read kv head 0 and heads 2 and 3 read kv head 1.
    #[test]
    fn kv_heads_serve_consecutive_query_heads() {
        let s = AttentionShape {
            len: 2,
            heads: 4,
            kv_heads: 2,
            head_dim: 2,
        };
        let mut qkv = vec![0.0f32; 2 * s.qkv_dim()];
        for row in qkv.chunks_exact_mut(s.qkv_dim()) {
            // v of kv head 0 is (1, 1), of kv head 1 is (2, 2); q and k are zero (uniform weights)
            row[12..14].copy_from_slice(&[1.0, 1.0]);
            row[14..16].copy_from_slice(&[2.0, 2.0]);
        }
        let out = attention(&qkv, &s, None, Keys::All);
        assert_eq!(&out[..8], &[1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]);
    }

    #[test]
    fn fully_hidden_row_is_zero_not_nan() {
        let mut row = vec![1.0, 2.0, 3.0];
        softmax_masked(&mut row, 0, 1.0, Some(&[false, false, false]), Keys::All);
        assert_eq!(row, vec![0.0; 3]);
        // hidden keys stay hidden whatever they hold
        let mut row = vec![f32::NAN, 2.0, f32::NEG_INFINITY];
        softmax_masked(&mut row, 0, 1.0, Some(&[false, true, false]), Keys::All);
        assert_eq!(row, vec![0.0, 1.0, 0.0]);
        let mut row = vec![1.0, 2.0, f32::NAN, f32::INFINITY];
        softmax_masked(&mut row, 0, 1.0, None, Keys::Window(1));
        assert_eq!(&row[2..], &[0.0, 0.0]);
        assert!(
            (row[0] + row[1] - 1.0).abs() < 1e-6 && row[1] > row[0],
            "{row:?}"
        );
    }

    /// A non-finite score of a visible key (non-finite weights) makes the whole row NaN, as the
    /// GPU kernel makes it non-finite: never zeros or a finite softmax of the other keys. The
    /// all-NaN row is what one NaN in a query or key weight gives.
    #[test]
    fn a_non_finite_visible_score_makes_the_row_nan() {
        for (row, mask) in [
            (vec![f32::NAN; 5], None),
            (vec![f32::NAN; 5], Some([true, true, false, true, true])),
            (vec![0.5, f32::NEG_INFINITY, 1.0, 2.0, 0.0], None),
            (vec![0.5, 1.0, f32::INFINITY, 2.0, 0.0], None),
            (
                vec![0.5, 1.0, 2.0, f32::NAN, 0.0],
                Some([true, false, true, true, true]),
            ),
        ] {
            let mut r = row.clone();
            softmax_masked(&mut r, 2, 0.5, mask.as_ref().map(|m| &m[..]), Keys::All);
            assert!(r.iter().all(|v| v.is_nan()), "{row:?} {mask:?} -> {r:?}");
        }
        // and through the whole op: one NaN in the queries of head 1 poisons that head only
        let s = AttentionShape {
            len: 7,
            heads: 2,
            kv_heads: 2,
            head_dim: 3,
        };
        let mut qkv: Vec<f32> = (0..7 * s.qkv_dim()).map(|i| (i % 5) as f32 * 0.1).collect();
        qkv[4 * s.qkv_dim() + 3] = f32::NAN;
        let out = attention(&qkv, &s, None, Keys::All);
        for (i, o) in out.chunks_exact(6).enumerate() {
            assert!(o[..3].iter().all(|v| v.is_finite()), "row {i}: {o:?}");
            assert_eq!(o[3..].iter().all(|v| v.is_nan()), i == 4, "row {i}: {o:?}");
        }
    }
}
