//! LayerNorm (with or without bias) and RMSNorm over the last dimension, statistics in f64 so
//! that the result is at least as accurate as the f32 references.

use crate::backend::AttentionShape;
use crate::model::plan::{HeadNorms, Norm, NormKind};

use super::for_rows;

pub fn apply(norm: &Norm, x: &mut [f32]) {
    let d = norm.weight.len();
    for_rows(x, d, |row| apply_row(norm, row));
}

/// Qwen3's `q_norm` and `k_norm` in place on fused qkv rows `[q | k | v]`: each query head's
/// `head_dim` values by `q`, each key head's by `k`; v is never touched.
pub fn apply_heads(norms: &HeadNorms, qkv: &mut [f32], s: &AttentionShape) {
    let (hd, q_end) = (s.head_dim, s.heads * s.head_dim);
    let k_end = q_end + s.kv_heads * hd;
    for row in qkv.chunks_exact_mut(s.qkv_dim()) {
        row[..q_end]
            .chunks_exact_mut(hd)
            .for_each(|h| apply_row(&norms.q, h));
        row[q_end..k_end]
            .chunks_exact_mut(hd)
            .for_each(|h| apply_row(&norms.k, h));
    }
}

/// Normalise into a new buffer, leaving `x` (the residual stream) untouched.
pub fn normed(norm: &Norm, x: &[f32]) -> Vec<f32> {
    let mut out = x.to_vec();
    apply(norm, &mut out);
    out
}

fn apply_row(norm: &Norm, row: &mut [f32]) {
    let n = row.len() as f64;
    let eps = norm.eps as f64;
    match norm.kind {
        NormKind::LayerNorm => {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            let inv = 1.0 / (var + eps).sqrt();
            for (i, v) in row.iter_mut().enumerate() {
                let y = ((*v as f64 - mean) * inv) as f32 * norm.weight[i];
                *v = match &norm.bias {
                    Some(b) => y + b[i],
                    None => y,
                };
            }
        }
        NormKind::RmsNorm => {
            let ms = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / n;
            let inv = 1.0 / (ms + eps).sqrt();
            for (i, v) in row.iter_mut().enumerate() {
                *v = (*v as f64 * inv) as f32 * norm.weight[i];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_norm_and_rms_norm_known_values() {
        let ln = Norm {
            kind: NormKind::LayerNorm,
            weight: vec![1.0, 2.0, 1.0, 1.0],
            bias: Some(vec![0.0, 0.0, 0.0, 10.0]),
            eps: 0.0,
        };
        let mut x = vec![1.0, 2.0, 3.0, 4.0];
        apply(&ln, &mut x);
        // mean 2.5, var 1.25
        let s = 1.25f32.sqrt();
        let want = [-1.5 / s, 2.0 * -0.5 / s, 0.5 / s, 1.5 / s + 10.0];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-6);
        }
        let rms = Norm {
            kind: NormKind::RmsNorm,
            weight: vec![1.0, 1.0],
            bias: None,
            eps: 0.0,
        };
        let mut y = vec![3.0, 4.0];
        apply(&rms, &mut y);
        let r = (12.5f32).sqrt();
        assert!((y[0] - 3.0 / r).abs() < 1e-6 && (y[1] - 4.0 / r).abs() < 1e-6);
    }
}
