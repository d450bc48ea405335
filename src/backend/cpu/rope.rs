//! Rotary position embedding, "rotate-half" (GPT-NeoX) layout: for each head,
//! `out[:d/2] = x1·cos − x2·sin`, `out[d/2:] = x1·sin + x2·cos`, applied to q and k, never v.

use crate::backend::AttentionShape;
use crate::model::plan::Rope;

/// cos/sin tables `[len, d/2]`: the angle `pos · inv_freq` is formed in f32 (as the
/// references do), its cosine and sine taken in f64.
/// Positions `first..first + len`.
pub fn tables_at(rope: &Rope, first: usize, len: usize) -> (Vec<f32>, Vec<f32>) {
    let half = rope.inv_freq.len();
    let mut cos = Vec::with_capacity(len * half);
    let mut sin = Vec::with_capacity(len * half);
    for p in first..first + len {
        for &f in &rope.inv_freq {
            let angle = (p as f32 * f) as f64;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    (cos, sin)
}

/// Rotates the q and k parts of fused `qkv` rows `[len, (heads + 2·kv_heads)·hd]` in place.
#[cfg(test)]
pub fn apply_qkv(rope: &Rope, qkv: &mut [f32], shape: &AttentionShape) {
    apply_qkv_at(rope, qkv, shape, 0)
}

/// [`apply_qkv`] for rows that sit at positions `first..first + len` of the canvas (a pass
/// over a span of it, the rest in a key/value cache).
pub fn apply_qkv_at(rope: &Rope, qkv: &mut [f32], shape: &AttentionShape, first: usize) {
    let (len, hd) = (shape.len, shape.head_dim);
    let half = hd / 2;
    debug_assert_eq!(rope.inv_freq.len(), half);
    let (cos, sin) = tables_at(rope, first, len);
    let width = shape.qkv_dim();
    for (p, row) in qkv.chunks_exact_mut(width).enumerate() {
        let (c, s) = (
            &cos[p * half..(p + 1) * half],
            &sin[p * half..(p + 1) * half],
        );
        // q occupies heads·hd columns, k the next kv_heads·hd: heads + kv_heads vectors to rotate
        for v in row[..(shape.heads + shape.kv_heads) * hd].chunks_exact_mut(hd) {
            let (x1, x2) = v.split_at_mut(half);
            for j in 0..half {
                let (a, b) = (x1[j], x2[j]);
                x1[j] = a * c[j] - b * s[j];
                x2[j] = a * s[j] + b * c[j];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_half_layout() {
        let rope = Rope::new(10000.0, 4); // inv_freq = [1, 0.01]
        let (heads, hd, len) = (1, 4, 2);
        let mut qkv: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0, 1.0, 0.0, 0.0, 0.0, 9.0, 9.0, 9.0, 9.0];
        qkv.extend_from_slice(&qkv.clone());
        let shape = AttentionShape {
            len,
            heads,
            kv_heads: heads,
            head_dim: hd,
        };
        apply_qkv(&rope, &mut qkv, &shape);
        // position 0: identity
        assert_eq!(
            &qkv[..12],
            &[1.0, 2.0, 3.0, 4.0, 1.0, 0.0, 0.0, 0.0, 9.0, 9.0, 9.0, 9.0]
        );
        // position 1, pair (x[0], x[2]) rotated by angle 1, pair (x[1], x[3]) by 0.01
        let (c, s) = (1f32.cos(), 1f32.sin());
        assert!((qkv[12] - (1.0 * c - 3.0 * s)).abs() < 1e-6);
        assert!((qkv[14] - (1.0 * s + 3.0 * c)).abs() < 1e-6);
        let (c2, s2) = (0.01f32.cos(), 0.01f32.sin());
        assert!((qkv[13] - (2.0 * c2 - 4.0 * s2)).abs() < 1e-6);
        // k rotated too, v untouched
        assert!((qkv[16] - c).abs() < 1e-6 && (qkv[18] - s).abs() < 1e-6);
        assert_eq!(&qkv[20..24], &[9.0; 4]);
    }

    /// With grouped kv heads the k part is narrower: every q and k head turns, no v column does.
    #[test]
    fn grouped_kv_rotates_q_and_k_only() {
        let rope = Rope::new(10000.0, 2); // inv_freq = [1]
        let shape = AttentionShape {
            len: 2,
            heads: 2,
            kv_heads: 1,
            head_dim: 2,
        };
        // q0 q0 q1 q1 k k v v
        let mut qkv = vec![1.0f32, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
        qkv.extend_from_slice(&qkv.clone());
        apply_qkv(&rope, &mut qkv, &shape);
        let (c, s) = (1f32.cos(), 1f32.sin());
        for at in [8, 10, 12] {
            assert!((qkv[at] - c).abs() < 1e-6 && (qkv[at + 1] - s).abs() < 1e-6);
        }
        assert_eq!(&qkv[14..16], &[1.0, 0.0], "v untouched");
    }
}
