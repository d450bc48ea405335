//! The continuous families' per-step math on the host: x̂0 and the readout from the head's
//! output, and the canvas update. The reference of `shaders/estimate.wgsl` and
//! `shaders/vector_update.wgsl`, which compute the same in the same order.

use crate::backend::{VectorOut, VectorStep};
use crate::model::matrix::Matrix;
use crate::model::plan::Readout;

/// x̂0 `[rows, width]`, the readout token and its probability, from `rows` rows of head output
/// (`out` columns each): Plaid's softmax·table (`table` `[V, width]`), or Analog Bits'
/// (2σ(ℓ) − 1)·scale. The readout is the most likely `allowed` token: the argmax logit, or
/// for bits the id they spell, else (a special or unused id) the allowed id of highest
/// Σ_b log σ(±ℓ_b), the maximum-likelihood decode the reference recommends over clamping.
/// With `round`, x̂0 is the readout token's own vector (Diffusion-LM's clamp).
pub fn estimate(
    readout: Readout,
    logits: &[f32],
    rows: usize,
    out: usize,
    table: &Matrix,
    allowed: &[bool],
    round: bool,
) -> (Vec<f32>, Vec<u32>, Vec<f32>) {
    let ok = |v: usize| allowed.get(v).copied().unwrap_or(false);
    let width = table.cols;
    let mut x0 = vec![0.0f32; rows * width];
    let mut tokens = vec![0u32; rows];
    let mut p = vec![0.0f32; rows];
    let mut e = vec![0.0f32; width];
    for r in 0..rows {
        let l = &logits[r * out..(r + 1) * out];
        let x = &mut x0[r * width..(r + 1) * width];
        match readout {
            Readout::Softmax => {
                let mut m = f32::NEG_INFINITY;
                let (mut best, mut top) = (0usize, f32::NEG_INFINITY);
                for (v, &a) in l.iter().enumerate() {
                    m = m.max(a);
                    if a > top && ok(v) {
                        (best, top) = (v, a);
                    }
                }
                let mut sum = 0.0f32;
                for (v, &a) in l.iter().enumerate() {
                    let w = (a - m).exp();
                    sum += w;
                    table.rows_f32(v, v + 1, &mut e);
                    x.iter_mut().zip(&e).for_each(|(xi, ei)| *xi += w * ei);
                }
                x.iter_mut().for_each(|xi| *xi /= sum);
                tokens[r] = best as u32;
                p[r] = (top - m).exp() / sum;
            }
            Readout::Bits { scale } => {
                let mut id = 0usize;
                for (b, &a) in l.iter().enumerate() {
                    // 2σ(a) − 1 = tanh(a/2)
                    x[b] = (0.5 * a).tanh() * scale;
                    id = (id << 1) | usize::from(a > 0.0);
                }
                // log p(v) = Σ_b log σ(s_b(v)·ℓ_b), s_b = ±1 the bit of v
                let logp = |v: usize| -> f32 {
                    l.iter()
                        .enumerate()
                        .map(|(b, &a)| {
                            let on = (v >> (out - 1 - b)) & 1 == 1;
                            let s = if on { a } else { -a };
                            // log σ(s) = −softplus(−s), without overflow
                            -((-s).max(0.0) + (-s.abs()).exp().ln_1p())
                        })
                        .sum()
                };
                if !ok(id) {
                    let mut best = (f32::NEG_INFINITY, 0usize);
                    for v in (0..table.rows).filter(|&v| ok(v)) {
                        let lp = logp(v);
                        if lp > best.0 {
                            best = (lp, v);
                        }
                    }
                    id = best.1;
                }
                tokens[r] = id as u32;
                p[r] = logp(id).exp();
            }
        }
        if round {
            let t = tokens[r] as usize;
            table.rows_f32(t, t + 1, x);
        }
    }
    (x0, tokens, p)
}

/// `z' = z_coef·z + x0_coef·x̂0 + noise_coef·noise`, known positions set to their clean vector.
pub fn update(step: &VectorStep<'_>, x0: &[f32], width: usize) -> Vec<f32> {
    let mut z = Vec::with_capacity(step.z.len());
    for (i, (&zi, &xi)) in step.z.iter().zip(x0).enumerate() {
        let pos = i / width;
        z.push(if step.known[pos] {
            step.clean[i]
        } else {
            let n = if step.noise_coef != 0.0 {
                step.noise[i]
            } else {
                0.0
            };
            step.z_coef * zi + step.x0_coef * xi + step.noise_coef * n
        });
    }
    z
}

/// The whole step from the head's output of every position.
pub fn finish(
    step: &VectorStep<'_>,
    readout: Readout,
    logits: &[f32],
    out: usize,
    table: &Matrix,
) -> VectorOut {
    let len = step.row.ids.len();
    let (x0, tokens, p) = estimate(readout, logits, len, out, table, step.allowed, step.round);
    let z = update(step, &x0, table.cols);
    VectorOut { x0, tokens, p, z }
}
