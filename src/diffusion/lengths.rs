//! Holes of unknown length (`[MASK*?]`, `[MASK*A-B]`): the template is filled once per
//! combination of its holes' lengths, each fill is scored by a likelihood bound under the model,
//! and the best-scored fill is the answer. No peer offers this; a masked diffusion model can,
//! because it scores any fill of any length in a handful of passes.
//!
//! **The score** of a fill y (all the hole tokens of one canvas, n of them) given the known text
//! c is an estimate of the any-order bound on its negative log-likelihood,
//!
//! ```text
//! −log p(y | c) ≤ E_σ Σ_{k=1..n} −log p(y_σk | y_σ<k, c)
//! ```
//!
//! over orders σ of the holes, which for a masked diffusion model is its NELBO restricted to the
//! holes (Ou et al. 2024; Sahoo et al. 2024). One seeded order σ gives an unbiased estimate with
//! n passes: pass k masks the holes σk…σn and adds the mean −log p of their tokens (the next
//! token of a uniformly random order is any of them equally, so averaging over them should
//! remove much of one order's noise; the variance was not measured). Order σ sorts the holes
//! by `hash3(seed, hole index, 3)`. A time-conditioned model sees σ(t) at t = the masked fraction of the holes. Probabilities are
//! read as the sampler reads them (log-softmax over the allowed tokens, no temperature), and
//! guidance is not applied: the score is the plain conditional model's.
//!
//! **The ranking**: the lowest bound per token, `nats / tokens` (the highest geometric-mean
//! token probability), wins; ties go to the earlier (shorter) combination. The total bound
//! would be the likelihood of the fill as a whole, but it charges every added token its full
//! cost, so it nearly always picks the shortest length. Measured with the first default model
//! (PyTorch, seed 5, lengths 1–8, so chance is 12.5%), how often the true length won:
//!
//! | rule | 200 two-word spans | 200 spans of 1, 2, 3 or 4 words (50 each) |
//! |---|---|---|
//! | total bound | 2.0% | 24.5% (picks 1 token 97% of the time) |
//! | bound per token (chosen) | 21.5% | 19.0% |
//! | bound / √tokens | 12.0% | 25.5% |
//! | marginal bound of the known text around an empty gap | 16.5% | 22.5% |
//! | bound of the whole text | 6.5% | 24.5% |
//! | always the most common true length | 74.5% | 24.0% |
//!
//! Per token is the only rule that does not collapse onto one token, and it is the best on
//! the eval's two-word spans; no rule reads the length well, because length is ambiguous in
//! language (two words can often be said in one) and the model is small. docs/quality.md reports
//! the engine's figure with both baselines.
//!
//! Every candidate is a whole fill with the caller's options and seed, so the winner is exactly
//! what a template with its lengths written out would give. The loop that fills and scores the
//! candidates is `Infiller::fill_lengths` (sampler.rs); this module holds the maths.

use serde::Serialize;

use super::proposal::log_softmax;
use super::seeded::hash3;
use crate::error::{Error, Result};

/// One fill of a template with unknown-length holes: in `--json`, `--trace` and the library's
/// result.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LengthCandidate {
    /// Tokens given to each hole of unknown length, in template order.
    pub lengths: Vec<usize>,
    pub text: String,
    /// Hole tokens scored (every hole of the canvas, the fixed-length ones too).
    pub tokens: usize,
    /// The bound on −log p(fill | known text), in nats (module documentation).
    pub nats: f64,
    /// `nats / tokens`: what the candidates are ranked by, lowest first.
    pub nats_per_token: f64,
    /// Forward passes of the fill and of its score.
    pub nfe: usize,
    /// The candidate returned.
    pub chosen: bool,
}

/// The trace line listing every candidate, written after the chosen fill's steps and before
/// `done`: `{"lengths": [...]}`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LengthsEvent {
    pub lengths: Vec<LengthCandidate>,
}

/// What the candidates are ranked by, lowest first (module documentation).
pub fn rank_key(c: &LengthCandidate) -> f64 {
    c.nats_per_token
}

/// Every combination of lengths, the first range varying slowest (so shorter first).
pub fn combinations(ranges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new()];
    for &(min, max) in ranges {
        out = out
            .into_iter()
            .flat_map(|c| {
                (min..=max).map(move |n| {
                    let mut c = c.clone();
                    c.push(n);
                    c
                })
            })
            .collect();
    }
    out
}

/// The passes of the bound for the hole tokens of a filled canvas `ids`: for each, the canvas
/// with its masked holes, those positions (in canvas order), and t, their fraction of the holes.
pub fn bound_passes(
    ids: &[u32],
    holes: &[usize],
    seed: u64,
    mask: u32,
) -> Vec<(Vec<u32>, Vec<usize>, f64)> {
    let n = holes.len();
    let mut order: Vec<(u64, usize)> = holes
        .iter()
        .enumerate()
        .map(|(k, &p)| (hash3(seed, k as u64, 3), p))
        .collect();
    order.sort_unstable();
    (0..n)
        .map(|k| {
            let mut masked: Vec<usize> = order[k..].iter().map(|&(_, p)| p).collect();
            masked.sort_unstable();
            let mut canvas = ids.to_vec();
            for &p in &masked {
                canvas[p] = mask;
            }
            let t = masked.len() as f64 / n as f64;
            (canvas, masked, t)
        })
        .collect()
}

/// One pass's term of the bound: the mean −log p of the true tokens `ids[p]` at the masked
/// positions, from their logits rows (`[masked.len(), v]`) read over the allowed tokens.
pub fn bound_term(
    logits: &[f32],
    v: usize,
    allowed: &[bool],
    masked: &[usize],
    ids: &[u32],
) -> Result<f64> {
    let mut sum = 0.0;
    for (i, &p) in masked.iter().enumerate() {
        let lp = log_softmax(&logits[i * v..(i + 1) * v], allowed, 1.0);
        let x = lp
            .get(ids[p] as usize)
            .copied()
            .unwrap_or(f64::NEG_INFINITY);
        if !x.is_finite() {
            return Err(Error::input(format!(
                "the model's log-probability of its own fill at canvas position {p} is {x}, \
                 not finite (are its weights finite?)"
            )));
        }
        sum -= x;
    }
    Ok(sum / masked.len().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_vary_the_last_range_fastest() {
        assert_eq!(
            combinations(&[(1, 2), (3, 4)]),
            vec![vec![1, 3], vec![1, 4], vec![2, 3], vec![2, 4]]
        );
        assert_eq!(combinations(&[]), vec![Vec::<usize>::new()]);
    }
}
