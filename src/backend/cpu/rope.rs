//! Rotary position embedding, "rotate-half" (GPT-NeoX) layout: for each head,
//! `out[:d/2] = x1·cos − x2·sin`, `out[d/2:] = x1·sin + x2·cos`, applied to q and k, never v.

use crate::model::plan::Rope;

/// cos/sin tables `[len, d/2]`: the angle `pos · inv_freq` is formed in f32 (as the
/// references do), its cosine and sine taken in f64.
pub fn tables(rope: &Rope, len: usize) -> (Vec<f32>, Vec<f32>) {
    let half = rope.inv_freq.len();
    let mut cos = Vec::with_capacity(len * half);
    let mut sin = Vec::with_capacity(len * half);
    for p in 0..len {
        for &f in &rope.inv_freq {
            let angle = (p as f32 * f) as f64;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    (cos, sin)
}

/// Rotates the q and k parts of fused `qkv` rows `[len, 3·heads·hd]` in place.
pub fn apply_qkv(rope: &Rope, qkv: &mut [f32], len: usize, heads: usize, hd: usize) {
    let half = hd / 2;
    debug_assert_eq!(rope.inv_freq.len(), half);
    let (cos, sin) = tables(rope, len);
    let width = 3 * heads * hd;
    for (p, row) in qkv.chunks_exact_mut(width).enumerate() {
        let (c, s) = (
            &cos[p * half..(p + 1) * half],
            &sin[p * half..(p + 1) * half],
        );
        // q occupies heads·hd columns, k the next heads·hd: 2·heads head-vectors to rotate
        for v in row[..2 * heads * hd].chunks_exact_mut(hd) {
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
        apply_qkv(&rope, &mut qkv, len, heads, hd);
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
}
