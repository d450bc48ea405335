//! From one masked row's logits to a proposal: the token to put there and the scores the
//! strategies rank positions by. All probability arithmetic is f64 and the categorical draw is
//! an inverse-CDF over f64 probabilities with a 53-bit uniform, so the intended distribution is
//! sampled exactly (no f32 Gumbel truncation: Zheng et al. 2024, arXiv 2409.02908).
//!
//! Nothing here panics on hostile numbers: a row or summary that is NaN or ±∞ where a token
//! must be chosen, or that names no allowed token, is an error. The sampler checks every
//! row's summary once per step before proposing (`Error::NonFinite`, with the step and row),
//! so these errors are for direct callers.

use rand::Rng;

use crate::backend::RowSummary;
use crate::error::{Error, Result};

/// How the token at a position is chosen. The sampler accepts the ranges in
/// [`options`](super::options) (`MIN_TEMPERATURE` …); these functions never panic outside them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenChoice {
    /// 0 = argmax; otherwise sample from `softmax(logits / T)`.
    pub temperature: f64,
    /// Keep only the k most likely tokens (0 = all; a k at or above the vocabulary keeps all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose mass reaches p (1 = all).
    pub top_p: f64,
}

impl Default for TokenChoice {
    fn default() -> Self {
        TokenChoice {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
        }
    }
}

/// One position's proposal and its certainty scores, from the un-tempered distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Proposal {
    pub token: u32,
    /// Probability of `token` under the model (not temperature-scaled), as LLaDA's confidence.
    pub p: f64,
    /// `p(1st) − p(2nd)`
    pub margin: f64,
    /// `Σ p log p` (higher = more certain)
    pub neg_entropy: f64,
}

/// Log-softmax in f64 over the allowed entries; suppressed entries get −∞.
pub fn log_softmax(logits: &[f32], allowed: &[bool], scale: f64) -> Vec<f64> {
    let mut x: Vec<f64> = logits
        .iter()
        .zip(allowed)
        .map(|(&l, &ok)| {
            if ok {
                l as f64 * scale
            } else {
                f64::NEG_INFINITY
            }
        })
        .collect();
    let max = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = max + x.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
    x.iter_mut().for_each(|v| *v -= lse);
    x
}

/// The sampling distribution over token ids: tempered, then top-k / top-p filtered and
/// renormalised, as (id, probability) pairs. With a filter they come in descending probability
/// (ids ascending on ties); without one in id order, sparing a sort of the whole vocabulary.
pub fn sampling_distribution(
    logits: &[f32],
    allowed: &[bool],
    choice: &TokenChoice,
) -> Vec<(u32, f64)> {
    let lp = log_softmax(logits, allowed, 1.0 / choice.temperature);
    let mut cand: Vec<(u32, f64)> = lp
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, v)| (i as u32, v.exp()))
        .collect();
    if choice.top_k == 0 && choice.top_p >= 1.0 {
        return cand;
    }
    cand.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if choice.top_k > 0 && cand.len() > choice.top_k {
        cand.truncate(choice.top_k);
    }
    if choice.top_p < 1.0 {
        let mut mass = 0.0;
        let mut keep = 0;
        for (_, p) in &cand {
            keep += 1;
            mass += p;
            if mass >= choice.top_p {
                break;
            }
        }
        cand.truncate(keep.max(1));
    }
    let total: f64 = cand.iter().map(|c| c.1).sum();
    cand.iter_mut().for_each(|c| c.1 /= total);
    cand
}

/// One listed token under a [`TokenChoice`], from [`reweigh`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Reweighed {
    /// Its probability after the temperature, renormalised over the listed tokens (at
    /// temperature 0: 1 for the most likely, 0 for the others).
    pub tempered: f64,
    /// Inside the top-k / top-p cut.
    pub kept: bool,
    /// Its probability in the distribution a draw samples: `tempered` renormalised over the
    /// kept tokens; 0 for the cut ones.
    #[serde(rename = "final")]
    pub drawn: f64,
}

/// What `choice` makes of a few tokens whose model probabilities (at temperature 1) are
/// `probs`, e.g. the candidates a step event lists. They are taken as the whole distribution,
/// renormalised over them, and tempered and cut by [`sampling_distribution`] as a row is; at
/// temperature 0 the most likely (the first of equals) takes it all, as in [`propose_row`].
/// For teaching views: what another temperature or top-p would have made of a position. A
/// probability that is not a positive number counts as the smallest positive one.
pub fn reweigh(probs: &[f64], choice: &TokenChoice) -> Vec<Reweighed> {
    // log-probabilities are logits of the same distribution: the softmax renormalises them
    let logits: Vec<f32> = probs
        .iter()
        .map(|&p| p.max(f64::MIN_POSITIVE).ln() as f32)
        .collect();
    let allowed = vec![true; probs.len()];
    let spread = |choice: &TokenChoice| {
        let mut out = vec![None; probs.len()];
        if choice.temperature <= 0.0 {
            let lp = log_softmax(&logits, &allowed, 1.0);
            if let Some(best) = (0..lp.len()).reduce(|a, b| if lp[b] > lp[a] { b } else { a }) {
                out[best] = Some(1.0);
            }
        } else {
            for (id, p) in sampling_distribution(&logits, &allowed, choice) {
                out[id as usize] = Some(p);
            }
        }
        out
    };
    let tempered = spread(&TokenChoice {
        top_k: 0,
        top_p: 1.0,
        ..*choice
    });
    let drawn = spread(choice);
    tempered
        .iter()
        .zip(&drawn)
        .map(|(t, d)| Reweighed {
            tempered: t.unwrap_or(0.0),
            kept: d.is_some(),
            drawn: d.unwrap_or(0.0),
        })
        .collect()
}

/// The error of a row that offers nothing to draw.
fn nothing_to_draw() -> Error {
    Error::input("no token can be drawn: the row's scores are not finite numbers or allow no token")
}

/// The index an inverse-CDF draw at a 53-bit uniform picks from probabilities that sum to 1;
/// rounding that leaves the uniform past the sum picks the last. `None` when there are none.
fn draw_index(probs: impl Iterator<Item = f64>, rng: &mut impl Rng) -> Option<usize> {
    let u: f64 = rng.random();
    let mut acc = 0.0;
    let mut last = None;
    for (i, p) in probs.enumerate() {
        acc += p;
        if u < acc {
            return Some(i);
        }
        last = Some(i);
    }
    last
}

/// Draws from `(id, prob)` pairs that sum to 1 by inverting the CDF at a 53-bit uniform; an
/// error when there are none (every score non-finite or suppressed).
pub fn draw(dist: &[(u32, f64)], rng: &mut impl Rng) -> Result<u32> {
    draw_index(dist.iter().map(|d| d.1), rng)
        .map(|i| dist[i].0)
        .ok_or_else(nothing_to_draw)
}

/// Proposal for one row from its whole logits. `allowed[v] = false` suppresses token v (mask,
/// specials, padding rows). An error when no allowed token has a finite score (NaN or +∞
/// anywhere in the allowed row makes every score NaN).
pub fn propose_row(
    logits: &[f32],
    allowed: &[bool],
    choice: &TokenChoice,
    rng: &mut impl Rng,
) -> Result<Proposal> {
    let lp = log_softmax(logits, allowed, 1.0);
    // top two and entropy of the model's own distribution
    let (mut best, mut second) = ((0usize, f64::NEG_INFINITY), f64::NEG_INFINITY);
    let mut neg_entropy = 0.0;
    for (i, &v) in lp.iter().enumerate() {
        if v.is_finite() {
            neg_entropy += v.exp() * v;
        }
        if v > best.1 {
            second = best.1;
            best = (i, v);
        } else if v > second {
            second = v;
        }
    }
    if !best.1.is_finite() {
        return Err(nothing_to_draw());
    }
    let token = if choice.temperature <= 0.0 {
        best.0 as u32
    } else {
        draw(&sampling_distribution(logits, allowed, choice), rng)?
    };
    Ok(Proposal {
        token,
        p: lp[token as usize].exp(),
        margin: best.1.exp() - second.exp(),
        neg_entropy,
    })
}

/// What a proposal from a summary still needs after [`propose_from_summary`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FromSummary {
    Done(Proposal),
    /// The draw landed in the mass beyond the candidates (its uniform is spent): finish it with
    /// the row's logits through [`finish_with_row`].
    Tail,
    /// The top-k/top-p filter closes beyond the candidates: the whole row decides it.
    Filter,
}

/// The scores of a position, read from its summary.
fn scores(s: &RowSummary, token: u32, p: f64) -> Proposal {
    let p_of = |x: f32| (x as f64 - s.lse).exp();
    let second = s.top.get(1).map_or(0.0, |t| p_of(t.1));
    Proposal {
        token,
        p,
        margin: s.top.first().map_or(0.0, |t| p_of(t.1)) - second,
        neg_entropy: s.neg_entropy,
    }
}

/// The summary's best candidate, once the summary is known to be usable: finite figures and
/// at least one candidate.
fn top1(s: &RowSummary) -> Result<(u32, f32)> {
    if !s.is_finite() {
        return Err(nothing_to_draw());
    }
    s.top
        .first()
        .copied()
        .ok_or_else(|| Error::input("a row had no allowed token to propose"))
}

/// A proposal from a row summary when the row's logits are on the host: the scores come from
/// the summary and the draw inverts the whole row's CDF, exactly as [`propose_row`] does.
pub fn propose_with_row(
    s: &RowSummary,
    row: &[f32],
    allowed: &[bool],
    choice: &TokenChoice,
    rng: &mut impl Rng,
) -> Result<Proposal> {
    let best = top1(s)?;
    let token = if choice.temperature <= 0.0 {
        best.0
    } else {
        draw(&sampling_distribution(row, allowed, choice), rng)?
    };
    // a summary that is not this row's could name a token outside it or a suppressed one
    let x = match (row.get(token as usize), allowed.get(token as usize)) {
        (Some(&x), Some(true)) if x.is_finite() => x,
        _ => {
            return Err(Error::input(format!(
                "token {token} is not an allowed token with a finite score in this row"
            )))
        }
    };
    Ok(scores(s, token, (x as f64 - s.lse).exp()))
}

/// A proposal from a row summary alone (the logits stayed on the device), with the same
/// distribution as [`propose_row`]:
/// - the K candidates carry the exact tempered probabilities `exp(x/T − lse_T)`;
/// - a draw that lands in the remaining mass, or a top-k/top-p filter the candidates cannot
///   decide, asks for the row ([`FromSummary::Tail`], [`FromSummary::Filter`]) and
///   [`finish_with_row`] samples exactly from what is left, so the composite draw is exact;
///   that is rare for a confident model.
pub fn propose_from_summary(
    s: &RowSummary,
    choice: &TokenChoice,
    rng: &mut impl Rng,
) -> Result<FromSummary> {
    let p_of = |x: f32| (x as f64 - s.lse).exp();
    let best = top1(s)?;
    if choice.temperature <= 0.0 {
        return Ok(FromSummary::Done(scores(s, best.0, p_of(best.1))));
    }
    let inv_t = 1.0 / choice.temperature;
    let q: Vec<f64> = s
        .top
        .iter()
        .map(|t| (t.1 as f64 * inv_t - s.lse_t).exp())
        .collect();
    let filtered = choice.top_k > 0 || choice.top_p < 1.0;
    if filtered {
        // The filter is decided by the candidates when top-k ends inside them or the nucleus
        // closes inside them; otherwise the full row decides it.
        let limit = if choice.top_k > 0 {
            choice.top_k
        } else {
            usize::MAX
        };
        let mut keep = None;
        let mut mass = 0.0;
        for (i, &qi) in q.iter().enumerate() {
            if i == limit {
                keep = Some(i);
                break;
            }
            mass += qi;
            if mass >= choice.top_p {
                keep = Some(i + 1);
                break;
            }
        }
        if keep.is_none() && limit == q.len() {
            keep = Some(limit);
        }
        let Some(keep) = keep else {
            return Ok(FromSummary::Filter);
        };
        let total: f64 = q[..keep].iter().sum();
        let i =
            draw_index(q[..keep].iter().map(|qi| qi / total), rng).ok_or_else(nothing_to_draw)?;
        let (token, x) = s.top[i];
        return Ok(FromSummary::Done(scores(s, token, p_of(x))));
    }
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for (t, qi) in s.top.iter().zip(&q) {
        acc += qi;
        if u < acc {
            return Ok(FromSummary::Done(scores(s, t.0, p_of(t.1))));
        }
    }
    Ok(FromSummary::Tail)
}

/// Finishes a [`FromSummary::Tail`] proposal with the device's draw from the tail
/// ([`RowSummary::tail`]): the candidates' mass was drawn on the host and the tail's on the
/// device, so the composite has the row's tempered distribution, as [`finish_with_row`] does.
pub fn finish_with_tail(s: &RowSummary, (token, x): (u32, f32)) -> Result<Proposal> {
    let p = (x as f64 - s.lse).exp();
    if !p.is_finite() {
        return Err(nothing_to_draw());
    }
    Ok(scores(s, token, p))
}

/// Finishes a proposal that [`propose_from_summary`] could not decide, with the row's logits.
pub fn finish_with_row(
    s: &RowSummary,
    need: FromSummary,
    row: &[f32],
    allowed: &[bool],
    choice: &TokenChoice,
    rng: &mut impl Rng,
) -> Result<Proposal> {
    match need {
        FromSummary::Done(p) => Ok(p),
        FromSummary::Filter => {
            let p = propose_row(row, allowed, choice, rng)?;
            Ok(scores(s, p.token, p.p))
        }
        FromSummary::Tail => {
            // every allowed token outside the candidates, tempered and renormalised
            let mut tail_allowed = allowed.to_vec();
            for t in &s.top {
                if let Some(a) = tail_allowed.get_mut(t.0 as usize) {
                    *a = false;
                }
            }
            let dist = sampling_distribution(row, &tail_allowed, choice);
            let lp = log_softmax(row, allowed, 1.0);
            let token = match dist.is_empty() {
                // every allowed token is a candidate: the uniform fell past their sum by
                // rounding, and a draw from the candidates alone takes the last of them
                true => s.top.last().ok_or_else(nothing_to_draw)?.0,
                false => draw(&dist, rng)?,
            };
            match lp.get(token as usize) {
                Some(l) if l.is_finite() => Ok(scores(s, token, l.exp())),
                _ => Err(nothing_to_draw()),
            }
        }
    }
}

#[cfg(test)]
mod summary_tests {
    use super::*;
    use crate::backend::summarize;
    use crate::backend::TOP_K;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// With the row on the host, a proposal read through its summary is the full-row
    /// proposal bit for bit (token, probability and scores) and leaves the random stream where
    /// the full-row proposal leaves it: the CPU's fills do not change with the summary path.
    #[test]
    fn a_host_summary_proposes_exactly_as_the_full_row() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for case in 0..200 {
            let v = 5 + case % 97;
            let row: Vec<f32> = (0..v)
                .map(|_| rng.random_range(-6.0f32..6.0) * if case % 3 == 0 { 0.01 } else { 1.0 })
                .collect();
            let allowed: Vec<bool> = (0..v)
                .map(|i| i == 0 || rng.random_range(0..5) > 0)
                .collect();
            let choice = TokenChoice {
                temperature: [0.0, 0.5, 1.0, 1.7][case % 4],
                top_k: [0, 0, 3, 40][case / 4 % 4],
                top_p: [1.0, 0.8][case / 16 % 2],
            };
            let s = summarize(&row, &allowed, choice.temperature);
            let (mut a, mut b) = (
                ChaCha8Rng::seed_from_u64(case as u64),
                ChaCha8Rng::seed_from_u64(case as u64),
            );
            let want = propose_row(&row, &allowed, &choice, &mut a).unwrap();
            let got = propose_with_row(&s, &row, &allowed, &choice, &mut b).unwrap();
            assert_eq!(
                (
                    got.token,
                    got.p.to_bits(),
                    got.margin.to_bits(),
                    got.neg_entropy.to_bits()
                ),
                (
                    want.token,
                    want.p.to_bits(),
                    want.margin.to_bits(),
                    want.neg_entropy.to_bits()
                ),
                "case {case}: {got:?} vs {want:?}"
            );
            assert_eq!(
                a.random::<u64>(),
                b.random::<u64>(),
                "case {case}: random stream"
            );
        }
    }

    /// The summary path samples the same distribution as the full-row path, including the tail
    /// beyond the K candidates (a flat row puts most of its mass there).
    #[test]
    fn summary_sampling_is_exact() {
        let v = 40;
        let logits: Vec<f32> = (0..v)
            .map(|i| {
                if i < 3 {
                    2.0 - i as f32 * 0.5
                } else {
                    -(i as f32) * 0.01
                }
            })
            .collect();
        let allowed: Vec<bool> = (0..v).map(|i| i != 7).collect();
        let n = 300_000u64;
        for choice in [
            TokenChoice::default(),
            TokenChoice {
                temperature: 0.6,
                ..Default::default()
            },
            TokenChoice {
                temperature: 1.0,
                top_k: 5,
                top_p: 1.0,
            },
            TokenChoice {
                temperature: 1.0,
                top_k: 0,
                top_p: 0.3,
            },
            TokenChoice {
                temperature: 1.0,
                top_k: 0,
                top_p: 0.95,
            },
        ] {
            let s = summarize(&logits, &allowed, choice.temperature);
            assert_eq!(s.top.len(), TOP_K);
            let want = sampling_distribution(&logits, &allowed, &choice);
            let mut counts = vec![0u64; v];
            let mut fetches = 0u64;
            let mut rng = ChaCha8Rng::seed_from_u64(11);
            for _ in 0..n {
                let p = match propose_from_summary(&s, &choice, &mut rng).unwrap() {
                    FromSummary::Done(p) => p,
                    need => {
                        fetches += 1;
                        finish_with_row(&s, need, &logits, &allowed, &choice, &mut rng).unwrap()
                    }
                };
                counts[p.token as usize] += 1;
            }
            assert_eq!(counts[7], 0);
            let mut x2 = 0.0;
            let mut dof = 0;
            for (id, p) in &want {
                let e = p * n as f64;
                if e >= 5.0 {
                    x2 += (counts[*id as usize] as f64 - e).powi(2) / e;
                    dof += 1;
                }
            }
            // 0.1% critical value of chi-square with up to 40 dof is 73.4
            eprintln!(
                "{choice:?}: chi-square {x2:.1} over {dof} cells, {fetches} full-row fetches"
            );
            assert!(x2 < 73.4, "{choice:?}: {x2}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const LOGITS: [f32; 6] = [2.0, 1.0, 0.5, -1.0, 3.0, 0.0];

    fn chi_square(counts: &[u64], probs: &[f64], n: u64) -> f64 {
        counts
            .iter()
            .zip(probs)
            .filter(|(_, p)| **p > 0.0)
            .map(|(&c, &p)| {
                let e = p * n as f64;
                (c as f64 - e).powi(2) / e
            })
            .sum()
    }

    /// Sampled frequencies follow the intended distribution: softmax(logits/T) with the
    /// suppressed token never drawn, and top-p keeping exactly the nucleus. A chi-square
    /// statistic far below the 0.1% critical value (dof ≤ 4: 18.47) passes; a biased sampler
    /// (e.g. f32 Gumbel truncation at T = 0.7, or forgetting the temperature) fails by orders of
    /// magnitude at this sample size.
    #[test]
    fn sampling_matches_the_intended_distribution() {
        let allowed = [true, true, true, true, true, false];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 200_000u64;
        for choice in [
            TokenChoice::default(),
            TokenChoice {
                temperature: 0.7,
                ..Default::default()
            },
            TokenChoice {
                temperature: 1.5,
                top_p: 0.9,
                top_k: 0,
            },
            TokenChoice {
                temperature: 1.0,
                top_p: 1.0,
                top_k: 3,
            },
        ] {
            // the intended distribution, written out independently of `sampling_distribution`
            let mut w: Vec<f64> = LOGITS
                .iter()
                .zip(&allowed)
                .map(|(&l, &ok)| {
                    if ok {
                        (l as f64 / choice.temperature).exp()
                    } else {
                        0.0
                    }
                })
                .collect();
            let mut order: Vec<usize> = (0..w.len()).collect();
            order.sort_by(|&a, &b| w[b].total_cmp(&w[a]));
            let z: f64 = w.iter().sum();
            let mut kept = vec![false; w.len()];
            let mut mass = 0.0;
            for (rank, &i) in order.iter().enumerate() {
                if w[i] == 0.0 || (choice.top_k > 0 && rank >= choice.top_k) || mass >= choice.top_p
                {
                    break;
                }
                kept[i] = true;
                mass += w[i] / z;
            }
            w.iter_mut().zip(&kept).for_each(|(v, k)| {
                if !k {
                    *v = 0.0
                }
            });
            let z: f64 = w.iter().sum();
            let want: Vec<f64> = w.iter().map(|v| v / z).collect();

            let mut counts = vec![0u64; LOGITS.len()];
            for _ in 0..n {
                counts[propose_row(&LOGITS, &allowed, &choice, &mut rng)
                    .unwrap()
                    .token as usize] += 1;
            }
            assert_eq!(counts[5], 0, "a suppressed token was drawn");
            for (i, (&c, &p)) in counts.iter().zip(&want).enumerate() {
                assert!(
                    p > 0.0 || c == 0,
                    "{choice:?}: token {i} outside the nucleus was drawn"
                );
            }
            let x2 = chi_square(&counts, &want, n);
            eprintln!("{choice:?}: chi-square {x2:.2}");
            assert!(
                x2 < 18.47,
                "{choice:?}: chi-square {x2} — sampled frequencies {counts:?} vs {want:?}"
            );

            // the same test detects a sampler that ignores the temperature
            if choice.temperature != 1.0 && choice.top_p == 1.0 {
                let wrong: Vec<f64> = {
                    let e: Vec<f64> = LOGITS
                        .iter()
                        .zip(&allowed)
                        .map(|(&l, &ok)| if ok { (l as f64).exp() } else { 0.0 })
                        .collect();
                    let z: f64 = e.iter().sum();
                    e.iter().map(|v| v / z).collect()
                };
                assert!(chi_square(&counts, &wrong, n) > 1000.0);
            }
        }
    }

    /// `reweigh` is `sampling_distribution` over the listed tokens: renormalised at temperature
    /// 1, sharpened as `p^(1/T)` below it, cut by top-p and top-k, greedy at temperature 0.
    #[test]
    fn reweigh_takes_the_listed_tokens_as_the_distribution() {
        let probs = [0.4, 0.2, 0.1, 0.1]; // 0.8 of the mass listed
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        let r = reweigh(&probs, &TokenChoice::default());
        for (x, p) in r.iter().zip(&probs) {
            assert!(
                x.kept && close(x.tempered, p / 0.8) && close(x.drawn, p / 0.8),
                "{x:?}"
            );
        }
        // T = 0.5 squares the probabilities (0.73, 0.18, 0.05, 0.05 renormalised); top-p 0.8
        // keeps the first two, renormalised
        let half = TokenChoice {
            temperature: 0.5,
            top_p: 0.8,
            top_k: 0,
        };
        let r = reweigh(&probs, &half);
        let z = 0.16 + 0.04 + 0.01 + 0.01;
        let want = [0.16 / z, 0.04 / z, 0.01 / z, 0.01 / z];
        for (x, w) in r.iter().zip(&want) {
            assert!(close(x.tempered, *w), "{x:?} vs {w}");
        }
        assert_eq!(
            r.iter().map(|x| x.kept).collect::<Vec<_>>(),
            [true, true, false, false]
        );
        let kept = want[0] + want[1];
        assert!(close(r[0].drawn, want[0] / kept) && close(r[1].drawn, want[1] / kept));
        assert_eq!((r[2].drawn, r[3].drawn), (0.0, 0.0));
        // top-k 1 keeps the most likely
        let r = reweigh(
            &probs,
            &TokenChoice {
                top_k: 1,
                ..Default::default()
            },
        );
        assert_eq!(
            r.iter().map(|x| x.drawn).collect::<Vec<_>>(),
            [1.0, 0.0, 0.0, 0.0]
        );
        // temperature 0: the first of the most likely takes it all
        let r = reweigh(
            &[0.1, 0.3, 0.3, 0.0],
            &TokenChoice {
                temperature: 0.0,
                ..Default::default()
            },
        );
        let got: Vec<(f64, bool, f64)> = r.iter().map(|x| (x.tempered, x.kept, x.drawn)).collect();
        assert_eq!(
            got,
            [
                (0.0, false, 0.0),
                (1.0, true, 1.0),
                (0.0, false, 0.0),
                (0.0, false, 0.0)
            ]
        );
        // a zero probability stays (as the smallest positive one); nothing listed, nothing back
        let r = reweigh(&[1.0, 0.0], &TokenChoice::default());
        assert!(r[1].kept && r[1].drawn < 1e-300 && close(r[0].drawn, 1.0));
        assert!(reweigh(&[], &TokenChoice::default()).is_empty());
    }

    #[test]
    fn greedy_scores() {
        let allowed = [true; 6];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let choice = TokenChoice {
            temperature: 0.0,
            ..Default::default()
        };
        let p = propose_row(&LOGITS, &allowed, &choice, &mut rng).unwrap();
        let z: f64 = LOGITS.iter().map(|&l| (l as f64).exp()).sum();
        let probs: Vec<f64> = LOGITS.iter().map(|&l| (l as f64).exp() / z).collect();
        assert_eq!(p.token, 4);
        assert!((p.p - probs[4]).abs() < 1e-12);
        assert!((p.margin - (probs[4] - probs[0])).abs() < 1e-12);
        let ne: f64 = probs.iter().map(|p| p * p.ln()).sum();
        assert!((p.neg_entropy - ne).abs() < 1e-12);
    }
}
