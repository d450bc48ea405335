//! `unmask eval` for the continuous families (families-reference §3.4(e), §4): per chunk,
//! - accuracy: the accuracy pass's positions (the same hashed choice as the masked families')
//!   are replaced by pure noise (t = 1) while the rest stay clean, the infilling regime the
//!   models trained on; one pass without self-conditioning, read out as the sampler reads
//!   (argmax over the allowed tokens; for bits the id the bits spell, else the likeliest
//!   allowed id);
//! - the bound: the variational bound of a continuous-time VP diffusion (VDM; Plaid's `nll`),
//!   per token: `recon + diffusion + prior` with
//!   - diffusion `½·γ'(t)·e^{−γ(t)}·‖x − x̂0‖²`, every body token noised at the chunk's
//!     low-discrepancy t (the frame clean, as trained), x̂0 from one pass without
//!     self-conditioning (any x̂0(z_t) gives a valid bound; three quarters of the Gaussian
//!     model's and half the bits model's training rows saw none);
//!   - recon `−log p(x | z_0)` at t = 0 from the model's own output: the softmax over all V
//!     ids (Gaussian), or the product of the 12 per-bit Bernoullis, a distribution over all
//!     2¹² = 4096 ids, so the bound is on the tokens themselves (bits);
//!   - prior `KL(N(α₁x, σ₁²I) ‖ N(0, I))`.
//!
//! The noise comes from ChaCha8 seeded by `hash3(seed ^ NOISE, chunk, pass)`.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::backend::cpu::continuous::estimate;
use crate::backend::Denoiser;
use crate::batch::{Row, VectorInput};
use crate::diffusion::continuous::{network_input, normal};
use crate::diffusion::proposal::log_softmax;
use crate::diffusion::seeded::hash3;
use crate::diffusion::Infiller;
use crate::error::{Error, Result};
use crate::model::plan::Readout;
use crate::model::{Levels, VectorSpec};

/// Salt of the noise streams.
const NOISE: u64 = 0x000C_0471_0005;

/// One chunk's canvas in the model's vector space.
pub(super) struct Chunk<'c> {
    /// the framed canvas
    pub truth: &'c [u32],
    /// the body: `off..off + n`
    pub off: usize,
    pub n: usize,
    pub index: usize,
    pub seed: u64,
}

/// A pass over `z` at levels `lv` without self-conditioning: the logits of every position.
async fn pass<D: Denoiser>(
    inf: &mut Infiller<D>,
    ids: &[u32],
    z: &[f32],
    lv: Levels,
) -> Result<Vec<f32>> {
    let spec = &inf.model.spec;
    let w = spec.vectors.as_ref().expect("a continuous model").width;
    let len = ids.len();
    // no self-conditioning: the estimate's half of the input is zero
    let (mut input, mut prior) = (Vec::new(), Vec::new());
    network_input(spec.family, w, lv, z, &[], &mut input, &mut prior);
    let row = Row {
        ids,
        key_mask: None,
        token_types: None,
        sigma: lv.gamma as f32,
        vectors: Some(VectorInput {
            input: &input,
            prior: &prior,
        }),
    };
    let all: Vec<usize> = (0..len).collect();
    inf.denoiser.logits(&row, &all).await
}

fn clean_of(vs: &VectorSpec, ids: &[u32]) -> Vec<f32> {
    let w = vs.width;
    let mut x = vec![0.0f32; ids.len() * w];
    for (p, c) in x.chunks_mut(w).enumerate() {
        vs.clean(ids[p], c);
    }
    x
}

/// log p(id) of one row of head output over all ids: log-softmax (Gaussian), or the sum of
/// the per-bit log-sigmoids (bits).
fn log_p(readout: Readout, row: &[f32], id: u32, all: &[bool]) -> f64 {
    match readout {
        Readout::Softmax => log_softmax(row, all, 1.0)[id as usize],
        Readout::Bits { .. } => {
            let n = row.len();
            row.iter()
                .enumerate()
                .map(|(b, &a)| {
                    let s = if (id >> (n - 1 - b)) & 1 == 1 { a } else { -a } as f64;
                    -((-s).max(0.0) + (-s.abs()).exp().ln_1p())
                })
                .sum()
        }
    }
}

/// The accuracy pass: for each of `rows` (noised to t = 1), log p(true token), whether the
/// readout is the true token, and the readout's probability.
pub(super) async fn accuracy<D: Denoiser>(
    inf: &mut Infiller<D>,
    c: &Chunk<'_>,
    rows: &[usize],
) -> Result<Vec<(f64, bool, f64)>> {
    let spec = inf.model.spec.clone();
    let vs = spec.vectors.clone().expect("a continuous model");
    let noise = spec.noise.expect("a continuous schedule");
    let w = vs.width;
    let mut z = clean_of(&vs, c.truth);
    let mut rng = ChaCha8Rng::seed_from_u64(hash3(c.seed ^ NOISE, c.index as u64, 0));
    for &r in rows {
        for v in &mut z[r * w..(r + 1) * w] {
            *v = normal(&mut rng);
        }
    }
    let logits = pass(inf, c.truth, &z, noise.levels(1.0)).await?;
    let out = logits.len() / c.truth.len();
    let all = vec![true; spec.vocab_size];
    let mut scored = Vec::with_capacity(rows.len());
    for &r in rows {
        let row = &logits[r * out..(r + 1) * out];
        let (_, tok, p) = estimate(vs.readout, row, 1, out, &vs.table, &inf.allowed, false);
        let lp = match vs.readout {
            // as the masked families read it: over the allowed tokens
            Readout::Softmax => log_softmax(row, &inf.allowed, 1.0)[c.truth[r] as usize],
            Readout::Bits { .. } => log_p(vs.readout, row, c.truth[r], &all),
        };
        if !lp.is_finite() {
            return Err(Error::input(format!(
                "chunk {}: the log-probability of token {} is {lp}, not finite (are the \
                 model's weights finite?)",
                c.index + 1,
                r - c.off + 1
            )));
        }
        scored.push((lp, tok[0] == c.truth[r], p[0] as f64));
    }
    Ok(scored)
}

/// The chunk's bound (nats, summed over its body tokens) at time t, and the passes it took.
pub(super) async fn bound<D: Denoiser>(
    inf: &mut Infiller<D>,
    c: &Chunk<'_>,
    t: f64,
) -> Result<(f64, usize)> {
    let spec = inf.model.spec.clone();
    let vs = spec.vectors.clone().expect("a continuous model");
    let noise = spec.noise.expect("a continuous schedule");
    let w = vs.width;
    let x = clean_of(&vs, c.truth);
    let body = c.off..c.off + c.n;
    let noised = |lv: Levels, pass_no: u64| -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(hash3(c.seed ^ NOISE, c.index as u64, pass_no));
        let mut z = x.clone();
        for p in body.clone() {
            for d in 0..w {
                let i = p * w + d;
                z[i] = (lv.alpha * x[i] as f64 + lv.sigma * normal(&mut rng) as f64) as f32;
            }
        }
        z
    };
    // diffusion: ½ γ'(t) e^{−γ(t)} ‖x − x̂0‖² per token
    let lv = noise.levels(t);
    let z = noised(lv, 1);
    let logits = pass(inf, c.truth, &z, lv).await?;
    let out = logits.len() / c.truth.len();
    let len = c.truth.len();
    let (x0, _, _) = estimate(
        vs.readout,
        &logits,
        len,
        out,
        &vs.table,
        &inf.allowed,
        false,
    );
    let weight = 0.5 * noise.rate(t) * (-lv.gamma).exp();
    let mut diffusion = 0.0f64;
    for p in body.clone() {
        let e: f64 = (0..w)
            .map(|d| (x[p * w + d] as f64 - x0[p * w + d] as f64).powi(2))
            .sum();
        diffusion += weight * e;
    }
    // recon: −log p(x | z_0) from the model's output at t = 0, over all ids
    let l0 = noise.levels(0.0);
    let z0 = noised(l0, 2);
    let logits = pass(inf, c.truth, &z0, l0).await?;
    let all = vec![true; spec.vocab_size];
    let mut recon = 0.0f64;
    for p in body.clone() {
        recon -= log_p(
            vs.readout,
            &logits[p * out..(p + 1) * out],
            c.truth[p],
            &all,
        );
    }
    // prior: KL(N(α₁x, σ₁²) ‖ N(0, 1)) summed over the dimensions
    let l1 = noise.levels(1.0);
    let mut prior = 0.0f64;
    for p in body {
        let xx: f64 = (0..w).map(|d| (x[p * w + d] as f64).powi(2)).sum();
        let s2 = l1.sigma * l1.sigma;
        prior += 0.5 * (w as f64 * s2 + l1.alpha * l1.alpha * xx - w as f64 - w as f64 * s2.ln());
    }
    let total = diffusion + recon + prior;
    if !total.is_finite() {
        return Err(Error::input(format!(
            "chunk {}: the bound is {total}, not finite (are the model's weights finite?)",
            c.index + 1
        )));
    }
    Ok((total, 2))
}
