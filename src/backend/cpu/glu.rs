//! The CPU twin of `shaders/glu.wgsl`: gated linear units (GeGLU, SwiGLU).

use super::activation::eval;
use crate::model::plan::Activation;

/// `[a | b]` rows of width `2·inner` → `act(a) ⊙ b`, rows of width `inner`.
pub fn glu(act: Activation, x: &[f32], rows: usize, inner: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; rows * inner];
    for (o, r) in out.chunks_exact_mut(inner).zip(x.chunks_exact(2 * inner)) {
        let (a, b) = r.split_at(inner);
        for i in 0..inner {
            o[i] = eval(act, a[i]) * b[i];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::activation::silu;
    use super::*;

    #[test]
    fn gated_activates_first_half() {
        let x = [1.0, 2.0, 10.0, 100.0];
        let y = glu(Activation::Silu, &x, 1, 2);
        assert!((y[0] - silu(1.0) * 10.0).abs() < 1e-5);
        assert!((y[1] - silu(2.0) * 100.0).abs() < 1e-4);
    }
}
