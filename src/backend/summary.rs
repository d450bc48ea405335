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

/// Ids a caller may name per row whose logits come back beside the summary
/// ([`RowSummary::probed`]): a uniform-state step needs x_θ of the token a position holds and
/// of the noise token it may jump to, and either can lie outside the top candidates.
pub const PROBES: usize = 2;

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
    /// One draw from the tail (the allowed tokens after the [`TOP_K`] candidates) at the
    /// sampling temperature, `(id, raw logit)`, made where the logits are (the device) from
    /// the step's seed ([`tail_draw`] is its reference); `None` where the logits are on the
    /// host anyway, or the tail is empty.
    pub tail: Option<(u32, f32)>,
    /// The raw logits of the ids the caller probed for this row, `(id, logit)` in the order
    /// asked (empty when none were): exact however far down the row they are.
    pub probed: Vec<(u32, f32)>,
}

impl RowSummary {
    /// x_θ(id) at temperature 1 over the allowed tokens, when the summary holds its logit (a
    /// probe or a candidate); 0 for a suppressed token.
    pub fn prob(&self, id: u32, allowed: &[bool]) -> Option<f64> {
        if !allowed.get(id as usize).copied().unwrap_or(false) {
            return Some(0.0);
        }
        let hit = |&&(i, _): &&(u32, f32)| i == id;
        let x = self
            .probed
            .iter()
            .find(hit)
            .or_else(|| self.top.iter().find(hit))?;
        Some((x.1 as f64 - self.lse).exp())
    }

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
        tail: None,
        probed: Vec::new(),
    }
}

/// PCG hash (Jarzynski & Olano, "Hash Functions for GPU Rendering", 2020), as
/// `shaders/reduce.wgsl` has it.
fn pcg(v: u32) -> u32 {
    let s = v.wrapping_mul(747796405).wrapping_add(2891336453);
    let w = ((s >> ((s >> 28) + 4)) ^ s).wrapping_mul(277803737);
    (w >> 22) ^ w
}

/// The tail draw's uniform for `row` under `seed`: 24 bits in [0, 1).
pub fn tail_uniform(seed: u32, row: u32) -> f64 {
    (pcg(seed ^ pcg(row)) >> 8) as f64 / 16_777_216.0
}

/// The reference of the device's tail draw for output row `r`: among the allowed tokens after
/// the summary's K-th candidate (in the candidates' order: larger logit, then lower id), weighted
/// `exp((x − max) / T)`, the CDF inverted in id order at [`tail_uniform`]. `None` when the tail
/// is empty or its weights underflow.
pub fn tail_draw(
    row: &[f32],
    allowed: &[bool],
    s: &RowSummary,
    temperature: f64,
    seed: u32,
    r: u32,
) -> Option<(u32, f32)> {
    if s.top.len() < TOP_K {
        return None;
    }
    let inv_t = if temperature > 0.0 {
        1.0 / temperature
    } else {
        1.0
    };
    let (li, lv) = s.top[TOP_K - 1];
    let in_tail = |i: usize, x: f32| {
        allowed.get(i).copied().unwrap_or(false) && (x < lv || (x == lv && i as u32 > li))
    };
    let weight = |x: f32| ((x as f64 - s.max) * inv_t).exp();
    let total: f64 = row
        .iter()
        .enumerate()
        .filter(|&(i, &x)| in_tail(i, x))
        .map(|(_, &x)| weight(x))
        .sum();
    if total <= 0.0 || !total.is_finite() {
        return None;
    }
    let target = tail_uniform(seed, r) * total;
    let mut acc = 0.0;
    let mut last = None;
    for (i, &x) in row.iter().enumerate() {
        if in_tail(i, x) {
            acc += weight(x);
            last = Some((i as u32, x));
            if target < acc {
                break;
            }
        }
    }
    last
}

/// [`summarize`] over each row of `logits` (`[rows, V]`), with each row's [`PROBES`] probed
/// ids from `probes` when it is not empty (the host's side of an [`Ask`](crate::backend::Ask)).
pub fn summarize_rows(
    logits: &[f32],
    vocab: usize,
    allowed: &[bool],
    temperature: f64,
    probes: &[u32],
) -> Vec<RowSummary> {
    // the tail draws stay `None`: with the row on the host a draw inverts it directly
    logits
        .chunks_exact(vocab.max(1))
        .enumerate()
        .map(|(k, row)| {
            let mut s = summarize(row, allowed, temperature);
            if let Some(ids) = probes.get(k * PROBES..(k + 1) * PROBES) {
                s.probed = probe(row, ids);
            }
            s
        })
        .collect()
}

/// The logits of the probed `ids` (`(id, logit)`; an id outside the row reads −∞).
pub fn probe(row: &[f32], ids: &[u32]) -> Vec<(u32, f32)> {
    ids.iter()
        .map(|&i| (i, row.get(i as usize).copied().unwrap_or(f32::NEG_INFINITY)))
        .collect()
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

    /// Over many seeds the tail draw follows the tempered distribution of the tokens after the
    /// candidates, and never names a candidate or a suppressed token.
    #[test]
    fn tail_draws_follow_the_tail_distribution() {
        let v = 40;
        let row: Vec<f32> = (0..v).map(|i| ((i * 13 % 17) as f32) * 0.3 - 2.0).collect();
        let allowed: Vec<bool> = (0..v).map(|i| i != 7 && i != 30).collect();
        let t = 0.8;
        let s = summarize(&row, &allowed, t);
        let top: Vec<u32> = s.top.iter().map(|c| c.0).collect();
        let tail: Vec<usize> = (0..v)
            .filter(|&i| allowed[i] && !top.contains(&(i as u32)))
            .collect();
        let w: Vec<f64> = tail.iter().map(|&i| (row[i] as f64 / t).exp()).collect();
        let z: f64 = w.iter().sum();
        let n = 40_000;
        let mut counts = vec![0usize; v];
        for seed in 0..n {
            let (id, x) = tail_draw(&row, &allowed, &s, t, seed, 3).expect("a tail");
            assert_eq!(x, row[id as usize]);
            counts[id as usize] += 1;
        }
        for (k, &i) in tail.iter().enumerate() {
            let (want, got) = (w[k] / z, counts[i] as f64 / n as f64);
            let sd = (want * (1.0 - want) / n as f64).sqrt();
            assert!(
                (got - want).abs() < 5.0 * sd + 1e-4,
                "token {i}: {got} vs {want}"
            );
        }
        let outside: usize = (0..v)
            .filter(|&i| !tail.contains(&i))
            .map(|i| counts[i])
            .sum();
        assert_eq!(outside, 0);
        // fewer allowed tokens than candidates: no tail
        let few: Vec<bool> = (0..v).map(|i| i < 10).collect();
        let s = summarize(&row, &few, t);
        assert_eq!(tail_draw(&row, &few, &s, t, 1, 0), None);
    }

    #[test]
    fn ties_go_to_the_lower_id() {
        let row = [1.0f32, 3.0, 3.0, 2.0, 3.0];
        let s = summarize(&row, &[true; 5], 1.0);
        assert_eq!(&s.top[..4], &[(1, 3.0), (2, 3.0), (4, 3.0), (3, 2.0)]);
    }
}
