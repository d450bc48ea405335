//! MDLM's time conditioning: σ → sinusoidal features `[cos | sin]` → `SiLU(W2·SiLU(W1·f + b1) + b2)`,
//! and the adaLN modulation `x·(1 + scale) + shift` it drives.

use std::sync::Arc;

use crate::model::matrix::Matrix;
use crate::model::plan::{Conditioning, Ffn, Linear, Norm, Plan};

use super::activation::silu;
use super::matmul::linear;

/// GLIDE-style timestep features: `[cos(σ·ω_j) …, sin(σ·ω_j) …]`, `ω_j = exp(−ln(10000)·j/half)`,
/// formed in f32 as the reference does.
pub fn timestep_features(sigma: f32, dim: usize) -> Vec<f32> {
    let half = dim / 2;
    let mut f = vec![0.0f32; dim];
    for j in 0..half {
        let w = (-(10000f32).ln() * j as f32 / half as f32).exp();
        let a = sigma * w;
        f[j] = a.cos();
        f[half + j] = a.sin();
    }
    f
}

/// The conditioning vector `c` for one σ.
pub fn conditioning(cond: &Conditioning, sigma: f32) -> Vec<f32> {
    let sigma = if cond.zero_sigma { 0.0 } else { sigma };
    let f = timestep_features(sigma, cond.freq_dim);
    let mut h = linear(&f, 1, &cond.mlp_in);
    h.iter_mut().for_each(|v| *v = silu(*v));
    let mut c = linear(&h, 1, &cond.mlp_out);
    c.iter_mut().for_each(|v| *v = silu(*v));
    c
}

/// `x·(1 + scale) + shift` on every row of `x`.
pub fn modulate(x: &mut [f32], shift: &[f32], scale: &[f32]) {
    let d = shift.len();
    for row in x.chunks_exact_mut(d) {
        for i in 0..d {
            row[i] = row[i] * (1.0 + scale[i]) + shift[i];
        }
    }
}

/// `x += gate ⊙ y`, row by row.
pub fn gated_residual(x: &mut [f32], y: &[f32], gate: Option<&[f32]>) {
    match gate {
        None => x.iter_mut().zip(y).for_each(|(a, b)| *a += b),
        Some(g) => {
            let d = g.len();
            for (xr, yr) in x.chunks_exact_mut(d).zip(y.chunks_exact(d)) {
                for i in 0..d {
                    xr[i] += g[i] * yr[i];
                }
            }
        }
    }
}

/// Folds a constant modulation into the plan: when σ is always zero (MDLM with
/// `time_conditioning: false`) the conditioning vector and every shift, scale and gate are
/// constants, so each modulated LayerNorm becomes one with weight `w·(1 + scale)` and bias
/// `shift`, and each gate scales the rows of the linear before it. The result is a plain pre-LN
/// encoder with the same outputs (tested to 2e-6) and no adaLN work per step.
///
/// Returns whether it folded: plans without a constant conditioning are left as they are.
pub fn fold_constant(plan: &mut Plan) -> bool {
    let Some(cond) = plan.conditioning.as_ref().filter(|c| c.zero_sigma) else {
        return false;
    };
    let foldable = plan
        .blocks
        .iter()
        .all(|b| b.modulation.is_none() || (b.attn_norm.is_some() && b.ffn_norm.is_some()))
        && (plan.head.final_modulation.is_none() || plan.head.final_norm.is_some());
    if !foldable {
        return false;
    }
    // The constants are computed in f64 and rounded once: the folded weights are then the same
    // bits on every machine and whatever kernel the CPU multiplies with (a GPU rounds them to
    // f16, where one f32 ulp can flip a rounding and move a probability in its 5th digit).
    let c = conditioning_exact(cond);
    let h = plan.hidden;
    for b in &mut plan.blocks {
        let Some(ada) = b.modulation.take() else {
            continue;
        };
        let m = linear_exact(&c, &ada);
        let part = |k: usize| &m[k * h..(k + 1) * h];
        fold_into_norm(b.attn_norm.as_mut().expect("checked"), part(0), part(1));
        scale_rows(&mut b.attn_out, part(2));
        fold_into_norm(b.ffn_norm.as_mut().expect("checked"), part(3), part(4));
        let down = match &mut b.ffn {
            Ffn::Plain { down, .. } | Ffn::Gated { down, .. } => down,
        };
        scale_rows(down, part(5));
    }
    if let Some(fa) = plan.head.final_modulation.take() {
        let m = linear_exact(&c, &fa);
        let n = plan.head.final_norm.as_mut().expect("checked");
        fold_into_norm(n, &m[..h], &m[h..]);
    }
    plan.conditioning = None;
    true
}

/// [`conditioning`] at σ = 0 in f64: features `[1 …, 0 …]`, both layers and SiLUs in f64.
fn conditioning_exact(cond: &Conditioning) -> Vec<f64> {
    let half = cond.freq_dim / 2;
    let f: Vec<f64> = (0..cond.freq_dim)
        .map(|j| if j < half { 1.0 } else { 0.0 })
        .collect();
    let silu = |v: f64| v / (1.0 + (-v).exp());
    let h: Vec<f64> = linear_exact(&f, &cond.mlp_in)
        .into_iter()
        .map(silu)
        .collect();
    linear_exact(&h, &cond.mlp_out)
        .into_iter()
        .map(silu)
        .collect()
}

/// `x·Wᵀ + b` for one row, summed in f64 (the fold's few small products).
fn linear_exact(x: &[f64], lin: &Linear) -> Vec<f64> {
    let mut row = vec![0.0f32; lin.in_dim()];
    (0..lin.out_dim())
        .map(|j| {
            lin.weight.rows_f32(j, j + 1, &mut row);
            let dot: f64 = row.iter().zip(x).map(|(w, x)| *w as f64 * x).sum();
            dot + lin.bias.as_ref().map_or(0.0, |b| b[j] as f64)
        })
        .collect()
}

/// `LN(x)·w·(1 + scale) + shift` is a LayerNorm with weight `w ⊙ (1 + scale)` and bias `shift`.
fn fold_into_norm(norm: &mut Norm, shift: &[f64], scale: &[f64]) {
    for (w, s) in norm.weight.iter_mut().zip(scale) {
        *w = (*w as f64 * (1.0 + s)) as f32;
    }
    norm.bias = Some(shift.iter().map(|&v| v as f32).collect());
}

/// `gate ⊙ (x·Wᵀ + b)` is a linear with row j of W and b_j scaled by `gate_j`.
fn scale_rows(lin: &mut Linear, gate: &[f64]) {
    let (n, k) = (lin.out_dim(), lin.in_dim());
    // folded weights are new values, held in f32 whatever the checkpoint stored
    let mut data = lin.weight.to_f32();
    for (row, g) in data.chunks_exact_mut(k).zip(gate) {
        row.iter_mut().for_each(|v| *v = (*v as f64 * g) as f32);
    }
    lin.weight = Arc::new(Matrix::f32(n, k, data));
    if let Some(b) = &mut lin.bias {
        b.iter_mut()
            .zip(gate)
            .for_each(|(v, g)| *v = (*v as f64 * g) as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_at_zero_are_ones_then_zeros() {
        let f = timestep_features(0.0, 8);
        assert_eq!(f, vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        let g = timestep_features(2.0, 4);
        // ω = [1, 0.01]: cos first, then sin
        assert!((g[0] - 2f32.cos()).abs() < 1e-6 && (g[2] - 2f32.sin()).abs() < 1e-6);
        assert!((g[1] - 0.02f32.cos()).abs() < 1e-6 && (g[3] - 0.02f32.sin()).abs() < 1e-6);
    }

    #[test]
    fn modulate_and_gate() {
        let mut x = vec![1.0, 2.0, 3.0, 4.0];
        modulate(&mut x, &[1.0, 0.0], &[0.5, -1.0]);
        assert_eq!(x, vec![2.5, 0.0, 5.5, 0.0]);
        let mut r = vec![1.0, 1.0];
        gated_residual(&mut r, &[2.0, 2.0], Some(&[0.5, 0.0]));
        assert_eq!(r, vec![2.0, 1.0]);
    }
}
