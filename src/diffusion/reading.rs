//! The readings of a DiT's output that are not MDLM's subs: UDLM's and Duo's plain
//! log-softmax, and SEDD's log score. Each works on one row (one position) at a time, as the
//! sampler reads them, and on a whole `[B, L, V]` output for the forward contract.

use crate::tensor::Tensor;

/// `log_softmax` of one row over all its columns, in place (max-shifted, the sum in f64).
/// UDLM (`Diffusion.forward` with `d3pm`, no subs masking) and Duo
/// (`DUO_BASE._process_model_output`): no column suppressed, no row carried over.
pub fn log_softmax_in_place(row: &mut [f32]) {
    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = row.iter().map(|&v| ((v - max) as f64).exp()).sum();
    let lse = max + sum.ln() as f32;
    row.iter_mut().for_each(|v| *v -= lse);
}

/// [`log_softmax_in_place`] of every row of `[B, L, V]` logits.
pub fn log_softmax(logits: &Tensor) -> Tensor {
    let mut out = logits.clone();
    out.data
        .chunks_exact_mut(logits.cols().max(1))
        .for_each(log_softmax_in_place);
    out
}

/// What SEDD subtracts from the raw output of an absorb model with `scale_by_sigma`:
/// `log(e^σ − 1) + log(V − 1)`, with `e^σ − 1` as `expm1(σ)` below σ = 0.5 and `exp(σ) − 1`
/// above, as `SEDD.forward` computes it (in f32). Infinite at σ = 0 (no score exists there).
pub fn sigma_offset(sigma: f32, vocab: usize) -> f32 {
    let s = sigma as f64;
    let esigm1 = if sigma < 0.5 {
        s.exp_m1()
    } else {
        s.exp() - 1.0
    };
    (esigm1 as f32).ln() + ((vocab - 1) as f64).ln() as f32
}

/// SEDD's log score for one row in place (`SEDD.forward`): with `scale_by_sigma` the raw row
/// minus [`sigma_offset`], then 0 at the current token `token` (the ratio p(x)/p(x) = 1).
pub fn log_score_in_place(row: &mut [f32], token: u32, sigma: f32, scale_by_sigma: bool) {
    if scale_by_sigma {
        let off = sigma_offset(sigma, row.len());
        row.iter_mut().for_each(|v| *v -= off);
    }
    row[token as usize] = 0.0;
}

/// [`log_score_in_place`] of every row of `[B, L, V]` logits; `ids` the canvas (`[B·L]`),
/// `sigma` one noise level per sequence.
pub fn log_score(logits: &Tensor, ids: &[u32], sigma: &[f32], scale_by_sigma: bool) -> Tensor {
    let v = logits.cols().max(1);
    let len = ids.len() / sigma.len().max(1);
    let mut out = logits.clone();
    for (i, (row, &t)) in out.data.chunks_exact_mut(v).zip(ids).enumerate() {
        log_score_in_place(row, t, sigma[i / len.max(1)], scale_by_sigma);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_sums_to_one_and_keeps_every_column() {
        let mut row = vec![1.0, 2.0, 3.0, 50.0];
        log_softmax_in_place(&mut row);
        let p: f64 = row.iter().map(|&v| (v as f64).exp()).sum();
        assert!((p - 1.0).abs() < 1e-6);
        assert!(row[3] > -1e-6, "the largest column is not suppressed");
    }

    #[test]
    fn score_offset_branches_meet_and_the_current_token_is_zero() {
        // expm1 below 0.5, exp − 1 above: the two agree near the switch
        let (a, b) = (sigma_offset(0.499_999, 65), sigma_offset(0.5, 65));
        assert!((a - b).abs() < 1e-4, "{a} {b}");
        let want = (0.1f64.exp_m1().ln() + 64f64.ln()) as f32;
        assert!((sigma_offset(0.1, 65) - want).abs() < 1e-6);
        assert!(sigma_offset(0.0, 65).is_infinite());
        let mut row = vec![1.0, 2.0, 3.0];
        log_score_in_place(&mut row, 1, 2.0, true);
        let off = sigma_offset(2.0, 3);
        assert_eq!(row, vec![1.0 - off, 0.0, 3.0 - off]);
        let mut row = vec![1.0, 2.0, 3.0];
        log_score_in_place(&mut row, 2, 2.0, false);
        assert_eq!(row, vec![1.0, 2.0, 0.0]);
    }
}
