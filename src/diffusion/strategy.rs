//! Unmasking strategies: which masked positions a step commits, and how many (each variant
//! names the paper or code it follows).

use std::fmt;
use std::str::FromStr;

use super::proposal::Proposal;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Strategy {
    /// MDLM `ddpm`: each masked position commits with the posterior probability `(α_s − α_t)/(1 − α_t)`.
    Ancestral,
    /// Exactly one uniformly chosen position per step, `t ← t·u^{1/n}` (Zheng et al.).
    FirstHitting,
    /// LLaDA low-confidence: the k most probable proposals, k from the transfer-count schedule.
    TopProb,
    /// The k largest `p1 − p2` (Kim et al. 2025, arXiv 2502.06768; Dream's `topk_margin`).
    Margin,
    /// The k lowest entropies (Dream's `entropy`, in its `generation_utils.py`).
    Entropy,
    /// Fast-dLLM: the most confident proposal plus every other with `p ≥ τ`; with a step
    /// budget, at least the transfer count that finishes in it (the most confident first).
    Threshold(f64),
    /// Entropy-bounded acceptance (EB-sampler, arXiv 2505.24857; DiffusionGemma's
    /// `EntropyBoundSampler`): sort the proposals by entropy, lowest first, and commit the longest
    /// run whose entropies sum to at most γ more than its last one's, `Σ_{j≤k} H_(j) − H_(k) ≤ γ`
    /// (the lowest always); with a step budget, at least what finishes in it.
    EntropyBound(f64),
    /// Mask-Predict: predict every hole, then re-mask and re-predict the least probable ones.
    MaskPredict,
    /// ReMDM (`remdm@f830d659fb`, max-capped-η): MDLM's ancestral step where a committed token is
    /// re-masked with probability σ = min(η, (1 − α_s)/α_t), so a fill can revise itself.
    Remdm(f64),
    /// Uniform-state models (UDLM, Duo): every hole holds a token and each step draws from the
    /// closed-form posterior q(x_s | x_t, x_θ) (keep, the model's draw, or uniform noise), then
    /// one greedy step at the end (Duo's `noise_removal=greedy`).
    Uniform,
    /// Duo's Ψ-sampler with a constant κ: κ·posterior + (1 − κ)·(α_s·q(x_0 | x_t) + (1 − α_s)·π),
    /// π uniform; κ = 1 is `uniform`, smaller κ re-noises more (a predictor-corrector step).
    Psi(f64),
    /// SEDD's Euler step on the reverse rate, then the final denoiser.
    SeddEuler,
    /// SEDD's analytic step (Tweedie τ-leaping), then the final denoiser.
    SeddAnalytic,
    /// Continuous families: deterministic DDIM steps `z_s = α_s·x̂0 + σ_s·ε̂` from the
    /// self-conditioned x̂0, known positions clamped to their clean vectors every step; the
    /// argument is the fraction of last steps that round x̂0 to its token's vector first
    /// (Diffusion-LM's clamping trick; 0: none).
    Ddim(f64),
    /// Continuous families: ancestral (DDPM) steps from the posterior q(z_s | z_t, x̂0), as
    /// Plaid's sampler writes it (`c = −expm1(γ_s − γ_t)`); the argument as for `Ddim`.
    Ddpm(f64),
}

/// One strategy as the surfaces list it: its name, how it is written with its argument, and
/// one line of help.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct StrategyInfo {
    pub name: &'static str,
    pub usage: &'static str,
    pub help: &'static str,
}

impl Strategy {
    /// Every strategy, in the order the surfaces list them: the one list the CLI's help, the
    /// npm package's types, the web demo and the docs take their names from (or are tested
    /// against).
    pub const ALL: [StrategyInfo; 15] = [
        StrategyInfo {
            name: "ancestral",
            usage: "ancestral",
            help: "MDLM's sampler: each masked position commits with the posterior probability",
        },
        StrategyInfo {
            name: "first-hitting",
            usage: "first-hitting",
            help: "one uniformly chosen position per step (Zheng et al.)",
        },
        StrategyInfo {
            name: "top-prob",
            usage: "top-prob",
            help: "the most probable proposals first (LLaDA's low-confidence remasking)",
        },
        StrategyInfo {
            name: "margin",
            usage: "margin",
            help: "the largest gap between the best two tokens first",
        },
        StrategyInfo {
            name: "entropy",
            usage: "entropy",
            help: "the lowest-entropy positions first",
        },
        StrategyInfo {
            name: "threshold",
            usage: "threshold[:TAU]",
            help: "Fast-dLLM: the most confident plus every proposal with p >= TAU (0.9)",
        },
        StrategyInfo {
            name: "entropy-bound",
            usage: "entropy-bound[:GAMMA]",
            help: "DiffusionGemma's rule: the lowest-entropy proposals while their entropies sum to at most GAMMA (0.1) over the last",
        },
        StrategyInfo {
            name: "mask-predict",
            usage: "mask-predict",
            help: "predict every hole, then re-mask and re-predict the least probable",
        },
        StrategyInfo {
            name: "remdm",
            usage: "remdm[:ETA]",
            help: "masked models: ancestral steps that re-mask committed tokens (ReMDM, eta 0.05)",
        },
        StrategyInfo {
            name: "uniform",
            usage: "uniform",
            help: "uniform-state models: the ancestral posterior every step, a greedy last step",
        },
        StrategyInfo {
            name: "psi",
            usage: "psi[:KAPPA]",
            help: "uniform-state models: Duo's Psi-sampler, KAPPA (0.9) of posterior, the rest re-noised",
        },
        StrategyInfo {
            name: "sedd-euler",
            usage: "sedd-euler",
            help: "SEDD models: Euler steps on the reverse rate, then the final denoiser",
        },
        StrategyInfo {
            name: "sedd-analytic",
            usage: "sedd-analytic",
            help: "SEDD models: analytic (Tweedie tau-leaping) steps, then the final denoiser",
        },
        StrategyInfo {
            name: "ddim",
            usage: "ddim[:ROUND]",
            help: "continuous models: deterministic DDIM steps; the last ROUND (0) of them round to tokens",
        },
        StrategyInfo {
            name: "ddpm",
            usage: "ddpm[:ROUND]",
            help: "continuous models: ancestral (DDPM) steps, fresh noise each step; ROUND as for ddim",
        },
    ];

    /// Names accepted by `FromStr` (the CLI's `--strategy`), from [`Strategy::ALL`].
    pub fn names() -> String {
        Strategy::ALL.map(|s| s.usage).join(", ")
    }

    /// The score to rank positions by (higher commits first), for the ranking strategies.
    pub fn score(&self, p: &Proposal) -> f64 {
        match self {
            Strategy::Margin => p.margin,
            Strategy::Entropy => p.neg_entropy,
            _ => p.p,
        }
    }

    /// What a strategy that commits as many as its confidence allows (threshold, entropy-bound)
    /// takes of this step's proposals, at least the `floor` best; the others' `floor` best.
    pub fn accepted(&self, props: &[Proposal], floor: usize) -> Vec<usize> {
        match *self {
            Strategy::Threshold(tau) => {
                let conf: Vec<f64> = props.iter().map(|p| p.p).collect();
                threshold_select(&conf, tau, floor)
            }
            Strategy::EntropyBound(gamma) => {
                let h: Vec<f64> = props.iter().map(|p| -p.neg_entropy).collect();
                entropy_bound_select(&h, gamma, floor)
            }
            _ => {
                let s: Vec<f64> = props.iter().map(|p| self.score(p)).collect();
                top_k(&s, floor.max(1))
            }
        }
    }

    /// Strategies that never revise a committed token.
    pub fn is_absorbing(&self) -> bool {
        !matches!(
            self,
            Strategy::MaskPredict
                | Strategy::Remdm(_)
                | Strategy::Uniform
                | Strategy::Psi(_)
                | Strategy::SeddEuler
                | Strategy::SeddAnalytic
                | Strategy::Ddim(_)
                | Strategy::Ddpm(_)
        )
    }

    /// The family of model a strategy samples: the masking strategies run on absorbing models,
    /// `uniform` and `psi` on uniform-state ones, the SEDD steps on score models.
    pub fn family_fits(&self, family: crate::model::Family) -> bool {
        use crate::model::Family;
        match self {
            Strategy::Uniform | Strategy::Psi(_) => family == Family::Uniform,
            Strategy::SeddEuler | Strategy::SeddAnalytic => matches!(family, Family::Score { .. }),
            Strategy::Ddim(_) | Strategy::Ddpm(_) => family.is_continuous(),
            _ => family == Family::Absorbing,
        }
    }

    /// The strategy a fill uses on a `family` model when none is asked for.
    pub fn default_for(family: crate::model::Family) -> Strategy {
        use crate::model::Family;
        match family {
            Family::Absorbing => Strategy::TopProb,
            Family::Uniform => Strategy::Uniform,
            Family::Score { .. } => Strategy::SeddAnalytic,
            Family::Gaussian | Family::Bits => Strategy::Ddim(0.0),
        }
    }
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Strategy, String> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let strategy = match name {
            "ancestral" | "random" => Strategy::Ancestral,
            "first-hitting" => Strategy::FirstHitting,
            "top-prob" | "low-confidence" | "confidence" => Strategy::TopProb,
            "margin" => Strategy::Margin,
            "entropy" => Strategy::Entropy,
            "threshold" => {
                let tau = match arg {
                    None => 0.9,
                    Some(a) => a
                        .parse::<f64>()
                        .ok()
                        .filter(|t| (0.0..=1.0).contains(t))
                        .ok_or_else(|| format!("threshold `{a}` must be a number in [0, 1]"))?,
                };
                return Ok(Strategy::Threshold(tau));
            }
            "entropy-bound" | "eb" => {
                let gamma = match arg {
                    None => 0.1,
                    Some(a) => a
                        .parse::<f64>()
                        .ok()
                        .filter(|g| g.is_finite() && *g >= 0.0)
                        .ok_or_else(|| {
                            format!("entropy bound `{a}` must be a number of nats, 0 or more")
                        })?,
                };
                return Ok(Strategy::EntropyBound(gamma));
            }
            "mask-predict" | "remask" => Strategy::MaskPredict,
            "remdm" | "psi" => {
                let (default, what) = if name == "remdm" {
                    (0.05, "eta")
                } else {
                    (0.9, "kappa")
                };
                let x = match arg {
                    None => default,
                    Some(a) => a
                        .parse::<f64>()
                        .ok()
                        .filter(|t| (0.0..=1.0).contains(t))
                        .ok_or_else(|| format!("{name} {what} `{a}` must be a number in [0, 1]"))?,
                };
                return Ok(if name == "remdm" {
                    Strategy::Remdm(x)
                } else {
                    Strategy::Psi(x)
                });
            }
            "uniform" | "udlm" => Strategy::Uniform,
            "sedd-euler" | "euler" => Strategy::SeddEuler,
            "sedd-analytic" | "analytic" => Strategy::SeddAnalytic,
            "ddim" | "ddpm" => {
                let r = match arg {
                    None => 0.0,
                    Some(a) => a
                        .parse::<f64>()
                        .ok()
                        .filter(|r| (0.0..=1.0).contains(r))
                        .ok_or_else(|| {
                            format!("{name} rounding fraction `{a}` must be a number in [0, 1]")
                        })?,
                };
                return Ok(if name == "ddim" {
                    Strategy::Ddim(r)
                } else {
                    Strategy::Ddpm(r)
                });
            }
            _ => {
                return Err(format!(
                    "unknown strategy `{s}`; one of: {}",
                    Strategy::names()
                ))
            }
        };
        match arg {
            Some(a) => Err(format!("strategy `{name}` takes no argument (`:{a}`)")),
            None => Ok(strategy),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Strategy::Ancestral => write!(f, "ancestral"),
            Strategy::FirstHitting => write!(f, "first-hitting"),
            Strategy::TopProb => write!(f, "top-prob"),
            Strategy::Margin => write!(f, "margin"),
            Strategy::Entropy => write!(f, "entropy"),
            Strategy::Threshold(t) => write!(f, "threshold:{t}"),
            Strategy::EntropyBound(g) => write!(f, "entropy-bound:{g}"),
            Strategy::MaskPredict => write!(f, "mask-predict"),
            Strategy::Remdm(e) => write!(f, "remdm:{e}"),
            Strategy::Uniform => write!(f, "uniform"),
            Strategy::Psi(k) => write!(f, "psi:{k}"),
            Strategy::SeddEuler => write!(f, "sedd-euler"),
            Strategy::SeddAnalytic => write!(f, "sedd-analytic"),
            Strategy::Ddim(0.0) => write!(f, "ddim"),
            Strategy::Ddpm(0.0) => write!(f, "ddpm"),
            Strategy::Ddim(r) => write!(f, "ddim:{r}"),
            Strategy::Ddpm(r) => write!(f, "ddpm:{r}"),
        }
    }
}

/// LLaDA's `get_num_transfer_tokens`: `n` tokens over `steps` steps, `n / steps` each and the
/// remainder to the first steps.
pub fn transfer_counts(n: usize, steps: usize) -> Vec<usize> {
    let steps = steps.max(1);
    (0..steps)
        .map(|i| n / steps + usize::from(i < n % steps))
        .collect()
}

/// Mask-Predict: how many tokens iteration `c` (1 ≤ c < T) re-masks, `⌊N·(1 − c/T)⌋`.
pub fn remask_count(n: usize, c: usize, iterations: usize) -> usize {
    // in u128: n·T must not overflow (a 32-bit usize on wasm32)
    (n as u128 * iterations.saturating_sub(c) as u128 / iterations.max(1) as u128) as usize
}

/// Indices of the `k` highest scores; ties go to the earlier index (stable).
pub fn top_k(scores: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx.sort_unstable();
    idx
}

/// Fast-dLLM: the `floor` best always (1 without a step budget), and every other at or
/// above `tau`.
pub fn threshold_select(p: &[f64], tau: f64, floor: usize) -> Vec<usize> {
    let best = top_k(p, floor.max(1));
    let mut out: Vec<usize> = (0..p.len())
        .filter(|&i| p[i] >= tau || best.contains(&i))
        .collect();
    out.dedup();
    out
}

/// Entropy-bounded acceptance: indices (ascending) of the longest run of the lowest entropies
/// `h` with `Σ_{j≤k} h_(j) − h_(k) ≤ gamma`, and at least the `floor` lowest (1 without a step
/// budget). Ties keep the earlier index first, as a stable sort does.
pub fn entropy_bound_select(h: &[f64], gamma: f64, floor: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..h.len()).collect();
    idx.sort_by(|&a, &b| h[a].total_cmp(&h[b]).then(a.cmp(&b)));
    let mut sum = 0.0;
    let mut k = 0;
    for (n, &i) in idx.iter().enumerate() {
        sum += h[i];
        if n > 0 && sum - h[i] > gamma {
            break;
        }
        k = n + 1;
    }
    idx.truncate(k.max(floor.max(1)).min(h.len()));
    idx.sort_unstable();
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Strategy::ALL` is the whole list: each entry parses to a strategy that prints as its
    /// name, and every strategy is in it once.
    #[test]
    fn all_lists_every_strategy_once() {
        let parsed: Vec<Strategy> = Strategy::ALL
            .iter()
            .map(|s| s.name.parse().unwrap_or_else(|e| panic!("{}: {e}", s.name)))
            .collect();
        for (info, s) in Strategy::ALL.iter().zip(&parsed) {
            assert_eq!(s.to_string().split(':').next(), Some(info.name));
            assert!(info.usage.starts_with(info.name) && !info.help.is_empty());
        }
        // one of each variant (a new variant must be added to ALL: this match stops compiling)
        let variant = |s: &Strategy| match s {
            Strategy::Ancestral => 0,
            Strategy::FirstHitting => 1,
            Strategy::TopProb => 2,
            Strategy::Margin => 3,
            Strategy::Entropy => 4,
            Strategy::Threshold(_) => 5,
            Strategy::MaskPredict => 6,
            Strategy::Remdm(_) => 7,
            Strategy::Uniform => 8,
            Strategy::Psi(_) => 9,
            Strategy::SeddEuler => 10,
            Strategy::SeddAnalytic => 11,
            Strategy::Ddim(_) => 12,
            Strategy::Ddpm(_) => 13,
            Strategy::EntropyBound(_) => 14,
        };
        let mut seen: Vec<usize> = parsed.iter().map(variant).collect();
        seen.sort();
        assert_eq!(seen, (0..15).collect::<Vec<_>>());
        assert!(Strategy::names().contains("threshold[:TAU]"));
    }

    #[test]
    fn llada_transfer_counts() {
        assert_eq!(transfer_counts(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(transfer_counts(3, 5), vec![1, 1, 1, 0, 0]);
        assert_eq!(transfer_counts(8, 8), vec![1; 8]);
        for (n, s) in [(37, 5), (1, 1), (100, 7)] {
            assert_eq!(transfer_counts(n, s).iter().sum::<usize>(), n);
        }
    }

    #[test]
    fn selections() {
        assert_eq!(top_k(&[0.1, 0.9, 0.5, 0.9], 2), vec![1, 3]);
        assert_eq!(
            threshold_select(&[0.1, 0.95, 0.5, 0.92], 0.9, 1),
            vec![1, 3]
        );
        // a step budget's floor: the two best, plus any other over the threshold
        assert_eq!(threshold_select(&[0.1, 0.3, 0.2, 0.95], 0.9, 2), vec![1, 3]);
        assert_eq!(
            threshold_select(&[0.1, 0.3, 0.2, 0.95], 0.25, 2),
            vec![1, 3]
        );
        assert_eq!(
            threshold_select(&[0.1, 0.3, 0.2, 0.95], 0.9, 3),
            vec![1, 2, 3]
        );
        // at least one commit even when nothing reaches τ
        assert_eq!(threshold_select(&[0.1, 0.3, 0.2], 0.9, 1), vec![1]);
        assert_eq!(remask_count(10, 1, 4), 7);
        assert_eq!(remask_count(10, 3, 4), 2);
    }

    #[test]
    fn parse_names() {
        assert_eq!(
            "threshold:0.8".parse::<Strategy>().unwrap(),
            Strategy::Threshold(0.8)
        );
        assert_eq!(
            "threshold".parse::<Strategy>().unwrap(),
            Strategy::Threshold(0.9)
        );
        assert!("threshold:2"
            .parse::<Strategy>()
            .unwrap_err()
            .contains("[0, 1]"));
        assert!("greedy"
            .parse::<Strategy>()
            .unwrap_err()
            .contains("one of: ancestral"));
        for s in [
            "ancestral",
            "first-hitting",
            "top-prob",
            "margin",
            "entropy",
            "threshold:0.5",
            "mask-predict",
            "remdm:0.1",
            "uniform",
            "psi:0.5",
            "sedd-euler",
            "sedd-analytic",
        ] {
            assert_eq!(s.parse::<Strategy>().unwrap().to_string(), s);
        }
    }

    /// The EB rule on known entropies: sorted 0.01, 0.02, 0.05, 0.3, 0.5, the sums less the last
    /// are 0, 0.01, 0.03, 0.08, 0.38, so γ = 0.1 takes four; γ = 0 takes the lowest alone; a
    /// floor raises the count; an empty step takes nothing.
    #[test]
    fn entropy_bound_takes_the_longest_run_within_gamma() {
        let h = [0.5, 0.01, 0.02, 0.3, 0.05];
        assert_eq!(entropy_bound_select(&h, 0.1, 1), vec![1, 2, 3, 4]);
        assert_eq!(entropy_bound_select(&h, 0.02, 1), vec![1, 2]);
        assert_eq!(entropy_bound_select(&h, 0.0, 1), vec![1]);
        assert_eq!(entropy_bound_select(&h, 0.0, 3), vec![1, 2, 4]);
        assert_eq!(entropy_bound_select(&h, 10.0, 1), vec![0, 1, 2, 3, 4]);
        // what counts is the others' sum: after two certain rows any one more fits γ = 0
        assert_eq!(
            entropy_bound_select(&[0.0, 0.0, 0.7, 0.9], 0.0, 1),
            vec![0, 1, 2]
        );
        assert!(entropy_bound_select(&[], 0.1, 1).is_empty());
        assert_eq!(
            "entropy-bound".parse::<Strategy>(),
            Ok(Strategy::EntropyBound(0.1))
        );
        assert_eq!(
            "eb:0.5".parse::<Strategy>(),
            Ok(Strategy::EntropyBound(0.5))
        );
        assert!("entropy-bound:-1".parse::<Strategy>().is_err());
    }
}
