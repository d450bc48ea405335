//! The summary contract of a step: one row of logits reduced to a [`RowSummary`] (the
//! normaliser, the entropy and the top candidates), and [`summarize`], its reference in f64,
//! which the CPU backend runs, the GPU's `shaders/reduce.wgsl` is tested against, and the
//! sampler applies where it holds whole rows (guidance).
//!
//! The arithmetic is the reference's, term for term: `lse` is `max + ln Σ exp(x − max)` summed
//! in id order, and `neg_entropy` is `Σ exp(x − lse)·(x − lse)` in the same order, so scores
//! read from a host summary equal those of a full-row f64 log-softmax bit for bit.

/// Candidates a [`RowSummary`] keeps per row.
pub const TOP_K: usize = 16;

/// One masked row's distribution, reduced: enough to score the position exactly and to draw
/// its token exactly from the top candidates (the tail needs the row itself).
#[derive(Clone, Debug, PartialEq)]
pub struct RowSummary {
    /// Largest allowed logit.
    pub max: f64,
    /// `log Σ exp(x)` over the allowed tokens.
    pub lse: f64,
    /// `log Σ exp(x / T)` at the sampling temperature T.
    pub lse_t: f64,
    /// `Σ p log p` at T = 1 (higher = more certain).
    pub neg_entropy: f64,
    /// The [`TOP_K`] largest allowed logits, `(id, raw logit)`, descending, ties to the lower id.
    pub top: Vec<(u32, f32)>,
    /// Some allowed logit of the row is NaN or ±∞ (computed by the reduction from the logits'
    /// bits, on the device for the GPU): nothing above can be trusted, and the sampler stops
    /// with [`Error::NonFinite`](crate::error::Error::NonFinite).
    pub non_finite: bool,
}

impl RowSummary {
    /// Whether every figure of the summary is a finite number and its row had no non-finite
    /// allowed logit: the condition for drawing from it.
    pub fn is_finite(&self) -> bool {
        !self.non_finite
            && self.max.is_finite()
            && self.lse.is_finite()
            && self.lse_t.is_finite()
            && self.neg_entropy.is_finite()
            && self.top.iter().all(|t| t.1.is_finite())
    }
}

/// One row of logits reduced over the `allowed` tokens, `lse_t` at `temperature`.
pub fn summarize(row: &[f32], allowed: &[bool], temperature: f64) -> RowSummary {
    let inv_t = if temperature > 0.0 {
        1.0 / temperature
    } else {
        1.0
    };
    let ok = |i: usize| allowed.get(i).copied().unwrap_or(false);
    let mut max = f64::NEG_INFINITY;
    let mut non_finite = false;
    for (i, &x) in row.iter().enumerate() {
        if ok(i) {
            max = max.max(x as f64);
            non_finite |= !x.is_finite();
        }
    }
    let (mut s1, mut st) = (0.0f64, 0.0f64);
    for (i, &x) in row.iter().enumerate() {
        if ok(i) {
            s1 += (x as f64 - max).exp();
            st += ((x as f64 - max) * inv_t).exp();
        }
    }
    let lse = max + s1.ln();
    let lse_t = max * inv_t + st.ln();
    let mut neg_entropy = 0.0f64;
    // the K best (value, id), descending with ties to the lower id: one pass, no vocabulary sort
    let mut top: Vec<(u32, f32)> = Vec::with_capacity(TOP_K + 1);
    for (i, &x) in row.iter().enumerate() {
        if !ok(i) {
            continue;
        }
        let v = x as f64 - lse;
        neg_entropy += v.exp() * v;
        if top.len() == TOP_K && x <= top[TOP_K - 1].1 {
            continue;
        }
        // ids arrive ascending, so an equal value goes after the ones already kept
        let at = top.partition_point(|&(_, y)| y >= x);
        top.insert(at, (i as u32, x));
        top.truncate(TOP_K);
    }
    RowSummary {
        max,
        lse,
        lse_t,
        neg_entropy,
        top,
        non_finite,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_sorted_reference() {
        let v = 1003;
        let row: Vec<f32> = (0..v)
            .map(|i| ((i * 7919 % 1009) as f32 / 100.0) - 5.0)
            .collect();
        let allowed: Vec<bool> = (0..v).map(|i| i % 7 != 3 && i != 1002).collect();
        let s = summarize(&row, &allowed, 0.7);
        let mut want: Vec<(u32, f32)> = (0..v)
            .filter(|&i| allowed[i])
            .map(|i| (i as u32, row[i]))
            .collect();
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        want.truncate(TOP_K);
        assert_eq!(s.top, want);
        let z: f64 = (0..v)
            .filter(|&i| allowed[i])
            .map(|i| (row[i] as f64).exp())
            .sum();
        assert!((s.lse - z.ln()).abs() < 1e-12);
        let zt: f64 = (0..v)
            .filter(|&i| allowed[i])
            .map(|i| (row[i] as f64 / 0.7).exp())
            .sum();
        assert!((s.lse_t - zt.ln()).abs() < 1e-12);
        let ne: f64 = (0..v)
            .filter(|&i| allowed[i])
            .map(|i| {
                let p = (row[i] as f64).exp() / z;
                p * p.ln()
            })
            .sum();
        assert!((s.neg_entropy - ne).abs() < 1e-9);
    }

    #[test]
    fn non_finite_allowed_logits_are_flagged() {
        let allowed = [true, true, false, true];
        let clean = summarize(&[1.0, 2.0, f32::NAN, 0.5], &allowed, 1.0);
        assert!(!clean.non_finite && clean.is_finite(), "{clean:?}");
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let s = summarize(&[1.0, bad, 0.0, 0.5], &allowed, 0.5);
            assert!(s.non_finite && !s.is_finite(), "{bad}: {s:?}");
        }
        // finite logits whose tempered sum overflows are caught by the figures
        let s = summarize(&[f32::MAX, -f32::MAX, 0.0, 0.0], &allowed, 1.0);
        assert!(!s.non_finite);
    }

    #[test]
    fn ties_go_to_the_lower_id() {
        let row = [1.0f32, 3.0, 3.0, 2.0, 3.0];
        let s = summarize(&row, &[true; 5], 1.0);
        assert_eq!(&s.top[..4], &[(1, 3.0), (2, 3.0), (4, 3.0), (3, 2.0)]);
    }
}
