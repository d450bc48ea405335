//! The step math of score-entropy discrete diffusion (SEDD), for its absorb and uniform graphs,
//! as pure f64 functions: the noise schedules, the Euler and analytic (Tweedie τ-leaping)
//! predictors, the final denoiser and the per-position score-entropy loss.
//!
//! Source: `sedd` = louaaron/Score-Entropy-Discrete-Diffusion @ 0605786da5 (`graph_lib.py`,
//! `noise_lib.py`, `sampling.py`, `losses.py`); each function names the one it mirrors, and
//! `tests/family_math.rs` checks them against those functions run on fixed inputs
//! (`tests/fixtures/family_math/make.py`).
//!
//! Input: a row of log-scores `ŝ` (the model's output after SEDD's post-processing: for absorb
//! with `scale_by_sigma`, `− ln(e^σ − 1) − ln(dim − 1)`; for both graphs the current token's
//! entry set to 0, `model/transformer.py:SEDD.forward`), so `s = exp(ŝ)` and `s_x = 1`. The row
//! is `dim` long: the vocabulary for uniform, the vocabulary plus the mask (the last id) for
//! absorb.
//!
//! Output: the predictors' rows are the code's **unnormalised** weights. Some may be negative
//! (Euler's stay weight, the uniform graph's staggered score); the official Gumbel-argmax draw
//! (`catsample.py:sample_categorical`) then samples in proportion to `max(w, 0)`, which is what
//! [`clamp_normalise`] gives for an exact inverse-CDF draw. The summary forms
//! ([`euler_mixture`], [`analytic_absorb_mixture`]) give the same distribution from
//! `Σ_{y≠x} s_y = e^{lse(ŝ)} − 1` alone, for rows that stay on the device; the uniform graph's
//! analytic and denoiser steps need the whole row (their negative entries are clipped one by
//! one).

use super::uniform::Mixture;

/// One-line help of the strategies built on this module, `(name, help)`.
pub const STRATEGIES: &[(&str, &str)] = &[
    (
        "sedd-euler",
        "SEDD models: Euler steps of the reverse rate (move to y with probability \
         dt·g(t)·s_y·Q(y→x)); a final denoising step",
    ),
    (
        "sedd-analytic",
        "SEDD models: Tweedie τ-leaping (staggered score × transition over Δσ), SEDD's \
         default; a final denoising step",
    ),
];

/// A SEDD graph: the forward rate matrix Q.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Graph {
    /// Every token moves to the mask, the last id (`dim − 1`): `graph_lib.py:Absorbing`.
    Absorb,
    /// `Q = 11ᵀ/N − I`: `graph_lib.py:Uniform`.
    Uniform,
}

/// A SEDD noise schedule: total noise σ(t) and its rate g(t) = dσ/dt (`noise_lib.py`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Noise {
    /// `σ = σ_min^{1−t} σ_max^t`, `g = σ·(ln σ_max − ln σ_min)`: `GeometricNoise`.
    Geometric { sigma_min: f64, sigma_max: f64 },
    /// `σ = −log1p(−(1−ε)t)`, `g = (1−ε)/(1−(1−ε)t)`: `LogLinearNoise` (also
    /// `ddg@edb0f8c28b:noise_schedule.py:LogLinearNoise`).
    LogLinear { eps: f64 },
}

/// How a score-family model is read: its graph, its noise schedule, and whether its raw output
/// is offset by σ ([`crate::diffusion::reading::sigma_offset`]). `None` for other families.
pub fn of_spec(spec: &crate::model::ModelSpec) -> Option<(Graph, Noise, bool)> {
    let crate::model::Family::Score { uniform } = spec.family else {
        return None;
    };
    let graph = if uniform {
        Graph::Uniform
    } else {
        Graph::Absorb
    };
    let noise = match spec.noise {
        Some(crate::model::Noise::Geometric {
            sigma_min,
            sigma_max,
        }) => Noise::Geometric {
            sigma_min,
            sigma_max,
        },
        Some(crate::model::Noise::LogLinear { eps }) => Noise::LogLinear { eps },
        // a score model is never built with a continuous schedule
        Some(crate::model::Noise::LinearGamma { .. } | crate::model::Noise::Cosine) | None => {
            Noise::LOG_LINEAR
        }
    };
    let scale_by_sigma = matches!(
        spec.logits,
        crate::model::LogitReading::LogScore {
            scale_by_sigma: true
        }
    );
    Some((graph, noise, scale_by_sigma))
}

impl Noise {
    /// SEDD's uniform-graph recipe (README: `noise=geometric`, `configs/noise/geometric.yaml`).
    pub const GEOMETRIC: Noise = Noise::Geometric {
        sigma_min: 1e-4,
        sigma_max: 20.0,
    };
    /// SEDD's absorb default (`configs/noise/loglinear.yaml`).
    pub const LOG_LINEAR: Noise = Noise::LogLinear { eps: 1e-3 };

    /// σ(t): `sedd@0605786da5:noise_lib.py:*.total_noise`.
    pub fn sigma(&self, t: f64) -> f64 {
        match *self {
            Noise::Geometric {
                sigma_min,
                sigma_max,
            } => sigma_min.powf(1.0 - t) * sigma_max.powf(t),
            Noise::LogLinear { eps } => -(-(1.0 - eps) * t).ln_1p(),
        }
    }

    /// g(t) = dσ/dt: `sedd@0605786da5:noise_lib.py:*.rate_noise`.
    pub fn rate(&self, t: f64) -> f64 {
        match *self {
            Noise::Geometric {
                sigma_min,
                sigma_max,
            } => sigma_min.powf(1.0 - t) * sigma_max.powf(t) * (sigma_max.ln() - sigma_min.ln()),
            Noise::LogLinear { eps } => (1.0 - eps) / (1.0 - (1.0 - eps) * t),
        }
    }
}

/// `e^σ − 1` as SEDD computes it: `expm1` below 0.5, `exp − 1` above
/// (`graph_lib.py:*.score_entropy`).
pub fn esigm1(sigma: f64) -> f64 {
    if sigma < 0.5 {
        sigma.exp_m1()
    } else {
        sigma.exp() - 1.0
    }
}

/// The Euler predictor's weights of the next token, into `out`:
/// `one_hot(x) + dt·g·reverse_rate(x, s)` (`sedd@0605786da5:sampling.py:EulerPredictor.update_fn`,
/// `graph_lib.py:Graph.reverse_rate`, `sample_rate`), with `rate = g(t)` and the scores at σ(t).
/// Moving to y ≠ x has weight `dt·g·s_y·Q(y→x)` (uniform `1/N`; absorb 1 from the mask, 0 from
/// a clean token, which never moves); staying has `1 − Σ` of those, which can be negative.
pub fn euler_row(graph: Graph, log_score: &[f64], x: u32, dt: f64, rate: f64, out: &mut [f64]) {
    let dim = log_score.len();
    let x = x as usize;
    let coef = match graph {
        Graph::Uniform => 1.0 / dim as f64,
        Graph::Absorb if x == dim - 1 => 1.0,
        Graph::Absorb => 0.0,
    };
    let step = dt * rate;
    let mut sum = 0.0;
    for (y, (o, &ls)) in out.iter_mut().zip(log_score).enumerate() {
        if y == x {
            *o = 0.0;
        } else {
            let r = coef * ls.exp();
            sum += r;
            *o = step * r;
        }
    }
    out[x] = 1.0 + step * -sum;
}

/// The analytic (Tweedie τ-leaping) predictor's weights, into `out`:
/// `staggered_score(s, Δσ) ⊙ transp_transition(x, Δσ)` with `Δσ = σ(t) − σ(t − dt)`
/// (`sedd@0605786da5:sampling.py:AnalyticPredictor.update_fn`; `graph_lib.py:
/// {Uniform,Absorbing}.staggered_score`, `.transp_transition`).
pub fn analytic_row(graph: Graph, log_score: &[f64], x: u32, dsigma: f64, out: &mut [f64]) {
    let dim = log_score.len();
    let x = x as usize;
    let total: f64 = log_score.iter().map(|l| l.exp()).sum();
    match graph {
        Graph::Uniform => {
            let n = dim as f64;
            let epow = (-dsigma).exp();
            let shift = (epow - 1.0) / (n * epow) * total;
            // transition(x, Δσ): (1 − e^{−Δσ})/N off x, 1 − the others' sum at x
            let off = (1.0 - epow) / n;
            let diag = 1.0 - off * (n - 1.0);
            for (y, (o, &ls)) in out.iter_mut().zip(log_score).enumerate() {
                let stag = shift + ls.exp() / epow;
                *o = stag * if y == x { diag } else { off };
            }
        }
        Graph::Absorb => {
            let m = dim - 1;
            let e = dsigma.exp();
            let emin = (-dsigma).exp();
            for (y, (o, &ls)) in out.iter_mut().zip(log_score).enumerate() {
                let mut stag = ls.exp() * e;
                if y == m {
                    stag += (1.0 - e) * total;
                }
                // transp_transition: e^{−σ} at x, plus 1 − e^{−σ} everywhere when x is the mask
                let mut edge = if y == x { emin } else { 0.0 };
                if x == m {
                    edge += 1.0 - emin;
                }
                *o = stag * edge;
            }
        }
    }
}

/// The final denoising step's weights at `t = eps`, into `out`: the analytic formula with the
/// absolute `σ(eps)` in place of Δσ; for absorb the mask's entry is 0 (the code drops the
/// column, so the mask is never drawn) (`sedd@0605786da5:sampling.py:Denoiser.update_fn`).
pub fn denoiser_row(graph: Graph, log_score: &[f64], x: u32, sigma: f64, out: &mut [f64]) {
    analytic_row(graph, log_score, x, sigma, out);
    if graph == Graph::Absorb {
        out[log_score.len() - 1] = 0.0;
    }
}

/// Turns a predictor's weights into the distribution the official Gumbel-argmax draw samples:
/// `max(w, 0)` renormalised, in place. Returns the positive total (0 when no weight is
/// positive, and then `out` is left as is).
pub fn clamp_normalise(out: &mut [f64]) -> f64 {
    let total: f64 = out.iter().filter(|w| **w > 0.0).sum();
    if total > 0.0 {
        out.iter_mut().for_each(|w| *w = w.max(0.0) / total);
    }
    total
}

/// The Euler step at one position as a mixture, from `others = Σ_{y≠x} s_y` alone (with a
/// row summary, `e^{lse(ŝ)} − 1`, since `s_x = 1`): `stay` keeps x, `model` moves to y drawn
/// in proportion to `s_y` over y ≠ x (for absorb, x is the mask and the draw excludes it).
/// The distribution of [`euler_row`] after [`clamp_normalise`].
pub fn euler_mixture(
    graph: Graph,
    dim: usize,
    x_is_mask: bool,
    dt: f64,
    rate: f64,
    others: f64,
) -> Mixture {
    let coef = match graph {
        Graph::Uniform => 1.0 / dim as f64,
        Graph::Absorb if x_is_mask => 1.0,
        Graph::Absorb => 0.0,
    };
    split(1.0 - dt * rate * coef * others, dt * rate * coef * others)
}

/// The absorb graph's analytic step (and, with `dsigma = σ(eps)`, its denoiser, which drops the
/// stay weight) at a masked position as a mixture, from `others = Σ_{y≠mask} s_y`: the mask
/// stays with weight `1 − (e^{Δσ}−1)·others`, and moves to y in proportion to `s_y` with total
/// weight `(e^{Δσ}−1)·others`. A clean position stays. The distribution of [`analytic_row`]
/// after [`clamp_normalise`].
pub fn analytic_absorb_mixture(x_is_mask: bool, dsigma: f64, others: f64) -> Mixture {
    if !x_is_mask {
        return split(1.0, 0.0);
    }
    let mv = dsigma.exp_m1() * others;
    split(1.0 - mv, mv)
}

/// Stay and move weights, the stay clipped at 0 as the Gumbel draw does, renormalised.
fn split(stay: f64, mv: f64) -> Mixture {
    let stay = stay.max(0.0);
    let total = stay + mv;
    Mixture {
        stay: stay / total,
        model: mv / total,
        prior: 0.0,
    }
}

/// The score-entropy loss at one position, without the `g(t)` factor, for current id `x` and
/// clean id `x0` at total noise σ (`sedd@0605786da5:graph_lib.py:{Uniform,Absorbing}.score_entropy`):
///
/// - absorb (only where x is the mask; 0 elsewhere), `r = 1/(e^σ−1)`:
///   `Σ_{y≠mask} s_y − r·ŝ_{x0} + r(ln r − 1)`;
/// - uniform, `E = e^σ − 1`, `ρ = E/(E+N)`, `A = (1/N)Σ_{y≠x} s_y`, `B = (1/N)Σ_{y≠x} ŝ_y`:
///   `A − ρB + (N−1)/N·ρ(ln ρ − 1)` when `x = x0`, else
///   `A − (B + ŝ_{x0}/E) + ((−ln ρ − 1)/ρ − (N−2))/N`.
///
/// The training loss of a sequence is `g(t)·Σ_positions` of this
/// (`losses.py:get_loss_fn`): [`score_entropy_loss`].
pub fn score_entropy(graph: Graph, log_score: &[f64], sigma: f64, x: u32, x0: u32) -> f64 {
    let dim = log_score.len();
    let (x, x0) = (x as usize, x0 as usize);
    let e = esigm1(sigma);
    match graph {
        Graph::Absorb => {
            if x != dim - 1 {
                return 0.0;
            }
            let ratio = 1.0 / e;
            let neg = ratio * log_score[x0];
            let pos: f64 = log_score[..dim - 1].iter().map(|l| l.exp()).sum();
            let cst = ratio * (ratio.ln() - 1.0);
            pos - neg + cst
        }
        Graph::Uniform => {
            let n = dim as f64;
            let ratio = 1.0 - n / (e + n);
            let mean: f64 = log_score.iter().sum::<f64>() / n;
            let mut neg = mean - log_score[x] / n;
            let cst = if x == x0 {
                neg *= ratio;
                (n - 1.0) / n * ratio * (ratio.ln() - 1.0)
            } else {
                neg += log_score[x0] / e;
                ((-ratio.ln() - 1.0) / ratio - (n - 2.0)) / n
            };
            let mean_exp: f64 = log_score.iter().map(|l| l.exp()).sum::<f64>() / n;
            let pos = mean_exp - log_score[x].exp() / n;
            pos - neg + cst
        }
    }
}

/// One position's share of SEDD's training loss, `g(t)·score_entropy` at σ(t)
/// (`sedd@0605786da5:losses.py:get_loss_fn`); summed over positions it is the sequence loss,
/// and over positions / L the per-token bound (no prior term).
pub fn score_entropy_loss(
    graph: Graph,
    noise: Noise,
    t: f64,
    log_score: &[f64],
    x: u32,
    x0: u32,
) -> f64 {
    noise.rate(t) * score_entropy(graph, log_score, noise.sigma(t), x, x0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::seeded::{hash3, unit};

    fn log_scores(seed: u64, dim: usize, x: usize, scale: f64) -> Vec<f64> {
        let mut r: Vec<f64> = (0..dim)
            .map(|i| (unit(hash3(seed, i as u64, 1)) - 0.6) * scale)
            .collect();
        r[x] = 0.0;
        r
    }

    /// The summary forms give the rows' clipped distributions.
    #[test]
    fn mixtures_are_the_clipped_rows() {
        for dim in [5usize, 40] {
            for (k, scale) in [1.0, 6.0, 14.0].into_iter().enumerate() {
                for graph in [Graph::Uniform, Graph::Absorb] {
                    let xs = match graph {
                        Graph::Uniform => vec![0, dim - 2],
                        Graph::Absorb => vec![dim - 1, 2],
                    };
                    for x in xs {
                        let ls = log_scores(k as u64 * 31 + dim as u64, dim, x, scale);
                        let others: f64 = ls.iter().map(|l| l.exp()).sum::<f64>() - ls[x].exp();
                        let s: Vec<f64> = ls.iter().map(|l| l.exp()).collect();
                        let check = |m: Mixture, row: &mut Vec<f64>, what: &str| {
                            clamp_normalise(row);
                            // move weights over y ≠ x (and ≠ mask) in proportion to s_y
                            let denom: f64 = (0..dim)
                                .filter(|&y| y != x && !(graph == Graph::Absorb && y == dim - 1))
                                .map(|y| s[y])
                                .sum();
                            for y in 0..dim {
                                let masked = graph == Graph::Absorb && y == dim - 1;
                                let want = if y == x {
                                    m.stay
                                } else if masked {
                                    0.0
                                } else {
                                    m.model * s[y] / denom
                                };
                                assert!(
                                    (row[y] - want).abs() < 1e-12,
                                    "{what} {graph:?} dim={dim} x={x} y={y}: {} vs {want}",
                                    row[y]
                                );
                            }
                        };
                        for (dt, rate) in [(0.01, 1.0), (0.0625, 50.0)] {
                            let mut row = vec![0.0; dim];
                            euler_row(graph, &ls, x as u32, dt, rate, &mut row);
                            let m = euler_mixture(graph, dim, x == dim - 1, dt, rate, others);
                            check(m, &mut row, "euler");
                        }
                        if graph == Graph::Absorb {
                            for dsigma in [1e-3, 0.1, 3.0] {
                                let mut row = vec![0.0; dim];
                                analytic_row(graph, &ls, x as u32, dsigma, &mut row);
                                let m = analytic_absorb_mixture(x == dim - 1, dsigma, others);
                                check(m, &mut row, "analytic");
                                denoiser_row(graph, &ls, x as u32, dsigma, &mut row);
                                if x == dim - 1 {
                                    let m = Mixture {
                                        stay: 0.0,
                                        model: 1.0,
                                        prior: 0.0,
                                    };
                                    check(m, &mut row, "denoiser");
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The absorb graph's analytic weights sum to 1 before clipping, for any score; at Δσ = 0
    /// both graphs keep the current token.
    #[test]
    fn analytic_weights_sum_to_one() {
        for graph in [Graph::Uniform, Graph::Absorb] {
            let dim = 12;
            let x = if graph == Graph::Absorb { dim - 1 } else { 4 };
            let ls = log_scores(9, dim, x, 3.0);
            let mut row = vec![0.0; dim];
            for dsigma in [1e-4, 0.3] {
                analytic_row(graph, &ls, x as u32, dsigma, &mut row);
                if graph == Graph::Absorb {
                    assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                }
            }
            analytic_row(graph, &ls, x as u32, 0.0, &mut row);
            for (y, w) in row.iter().enumerate() {
                assert!(
                    (w - if y == x { 1.0 } else { 0.0 }).abs() < 1e-12,
                    "{graph:?}"
                );
            }
        }
    }

    #[test]
    fn noise_schedules() {
        let g = Noise::GEOMETRIC;
        assert!((g.sigma(0.0) - 1e-4).abs() < 1e-18 && (g.sigma(1.0) - 20.0).abs() < 1e-12);
        let l = Noise::LOG_LINEAR;
        // g = dσ/dt, by central differences
        for noise in [g, l] {
            for t in [0.1, 0.5, 0.9] {
                let h = 1e-6;
                let fd = (noise.sigma(t + h) - noise.sigma(t - h)) / (2.0 * h);
                assert!((fd - noise.rate(t)).abs() / noise.rate(t) < 1e-7);
            }
        }
    }
}
