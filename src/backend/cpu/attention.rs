//! Bidirectional multi-head attention over fused qkv rows, with an optional key-padding mask
//! and an optional sliding window. Scores and the weighted sum go through gemm per head; the
//! heads run in parallel natively.

use super::matmul::matmul_nt;

pub struct AttentionShape {
    pub len: usize,
    pub heads: usize,
    pub head_dim: usize,
}

/// `qkv`: `[len, 3·heads·hd]` rows `[q | k | v]`, head-major. `key_mask[j] = false` hides key j.
/// `window = Some(w)` hides keys with `|i − j| > w`. Returns `[len, heads·hd]`.
pub fn attention(
    qkv: &[f32],
    s: &AttentionShape,
    key_mask: Option<&[bool]>,
    window: Option<usize>,
) -> Vec<f32> {
    let (len, heads, hd) = (s.len, s.heads, s.head_dim);
    let h = heads * hd;
    assert_eq!(qkv.len(), len * 3 * h);
    let scale = 1.0 / (hd as f32).sqrt();

    // Gather each head's q, k, v contiguously so the products are plain row-major gemms.
    let gather = |head: usize, part: usize| -> Vec<f32> {
        let mut m = Vec::with_capacity(len * hd);
        for row in qkv.chunks_exact(3 * h) {
            let o = part * h + head * hd;
            m.extend_from_slice(&row[o..o + hd]);
        }
        m
    };

    let per_head = |head: usize| -> Vec<f32> {
        let (q, k, v) = (gather(head, 0), gather(head, 1), gather(head, 2));
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
            softmax_masked(row, i, scale, key_mask, window);
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
fn softmax_masked(
    row: &mut [f32],
    i: usize,
    scale: f32,
    key_mask: Option<&[bool]>,
    window: Option<usize>,
) {
    // Keys outside the window are hidden; those inside may still be padding.
    let (lo, hi) = match window {
        Some(w) => (i.saturating_sub(w), (i + w + 1).min(row.len())),
        None => (0, row.len()),
    };
    row[..lo].fill(0.0);
    row[hi..].fill(0.0);
    let span = &mut row[lo..hi];
    if let Some(m) = key_mask {
        for (v, &keep) in span.iter_mut().zip(&m[lo..hi]) {
            if !keep {
                *v = f32::NEG_INFINITY;
            }
        }
    }
    let max = span.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    if max == f32::NEG_INFINITY {
        span.fill(0.0);
        return;
    }
    let mut sum = 0.0f32;
    for v in span.iter_mut() {
        // exp(−∞) = 0 hides the padded keys
        *v = ((*v - max) * scale).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    span.iter_mut().for_each(|v| *v *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward f64 attention to check the gemm formulation against.
    fn naive(
        qkv: &[f32],
        len: usize,
        heads: usize,
        hd: usize,
        mask: Option<&[bool]>,
        window: Option<usize>,
    ) -> Vec<f32> {
        let h = heads * hd;
        let mut out = vec![0.0f32; len * h];
        for hh in 0..heads {
            for i in 0..len {
                let q = &qkv[i * 3 * h + hh * hd..][..hd];
                let mut w = vec![f64::NEG_INFINITY; len];
                for (j, wj) in w.iter_mut().enumerate() {
                    let ok =
                        mask.is_none_or(|m| m[j]) && window.is_none_or(|win| i.abs_diff(j) <= win);
                    if ok {
                        let k = &qkv[j * 3 * h + h + hh * hd..][..hd];
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
                        .map(|j| e[j] / s * qkv[j * 3 * h + 2 * h + hh * hd + d] as f64)
                        .sum::<f64>() as f32;
                }
            }
        }
        out
    }

    #[test]
    fn matches_naive_with_masks_and_window() {
        let (len, heads, hd) = (11, 3, 5);
        let qkv: Vec<f32> = (0..len * 3 * heads * hd)
            .map(|i| ((i * 31 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let mask: Vec<bool> = (0..len).map(|j| j < 8).collect();
        let s = AttentionShape {
            len,
            heads,
            head_dim: hd,
        };
        for (m, w) in [
            (None, None),
            (Some(&mask[..]), None),
            (None, Some(2)),
            (Some(&mask[..]), Some(3)),
        ] {
            let got = attention(&qkv, &s, m, w);
            let want = naive(&qkv, len, heads, hd, m, w);
            let d = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(d < 1e-5, "mask {:?} window {w:?}: {d}", m.is_some());
        }
    }

    #[test]
    fn fully_hidden_row_is_zero_not_nan() {
        let mut row = vec![1.0, 2.0, 3.0];
        softmax_masked(&mut row, 0, 1.0, Some(&[false, false, false]), None);
        assert_eq!(row, vec![0.0; 3]);
    }
}
