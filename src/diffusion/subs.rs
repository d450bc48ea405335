//! MDLM's "subs" parameterisation (`Diffusion._subs_parameterization`): the mask can never be
//! the clean token, and a token that is already unmasked stays what it is ("carry-over").
//!
//! ```text
//! logits[:, :, mask] += -1e6
//! logp = logits - logsumexp(logits)
//! unmasked rows: logp = -1e6 everywhere, 0 at the current token
//! ```
//! The reference uses −1e6, not −∞; we keep its constant so outputs compare exactly.

use crate::tensor::Tensor;

pub const NEG_INFINITY: f32 = -1_000_000.0;

/// One row in place: `logits` of one position, `token` the current token there.
pub fn row_in_place(row: &mut [f32], token: u32, mask_id: u32) {
    if token != mask_id {
        row.fill(NEG_INFINITY);
        row[token as usize] = 0.0;
        return;
    }
    row[mask_id as usize] += NEG_INFINITY;
    super::reading::log_softmax_in_place(row);
}

/// Subs log-probabilities for logits `[B, L, V]` and the canvas `ids` (`[B·L]`).
pub fn log_probs(logits: &Tensor, ids: &[u32], mask_id: u32) -> Tensor {
    let v = logits.cols();
    let mut out = logits.clone();
    for (row, &t) in out.data.chunks_exact_mut(v).zip(ids) {
        row_in_place(row, t, mask_id);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_rows_are_log_softmax_without_the_mask() {
        let mut row = vec![1.0, 2.0, 3.0, 50.0];
        row_in_place(&mut row, 3, 3);
        let p: Vec<f64> = row.iter().map(|&v| (v as f64).exp()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-6);
        assert!(row[3] < -1e5, "mask column stays −∞-like");
        let z = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        assert!((row[0] as f64 - (1.0 - z)).abs() < 1e-6);
    }

    #[test]
    fn unmasked_rows_carry_over() {
        let mut row = vec![1.0, 2.0, 3.0, 4.0];
        row_in_place(&mut row, 1, 3);
        assert_eq!(row, vec![NEG_INFINITY, 0.0, NEG_INFINITY, NEG_INFINITY]);
    }
}
