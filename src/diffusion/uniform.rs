//! The step math of uniform-state diffusion (UDLM, Duo), of Duo's Ψ-samplers and of ReMDM, as
//! pure f64 functions: no backend, no allocation except where a whole row is sorted or a
//! schedule is built once per run.
//!
//! Sources (aliases as in `families-reference.md`):
//! - `ddg` = kuleshov-group/discrete-diffusion-guidance @ edb0f8c28b (UDLM)
//! - `duo` = s-sahoo/duo @ 7c9b498f5b (Duo, Ψ-samplers)
//! - `remdm` = kuleshov-group/remdm @ f830d659fb (ReMDM)
//!
//! Each function names the official function it mirrors; `tests/family_math.rs` checks every
//! one against those functions run on fixed inputs (`tests/fixtures/family_math/make.py`).
//!
//! Notation: `n` = the number of states the noise can produce (the model's whole vocabulary for
//! a uniform model), `z` = the current id at a position, `x` or `x_θ` = the model's clean-token
//! distribution (exp of its log-softmax row), `α_t` = the probability a token is still clean.
//!
//! How the engine uses it: a step needs, per position, only `p_z = x_θ(z)` and a way to draw
//! from `x_θ` (the proposal code: a whole row or a summary's candidates, with its tail). The
//! exact posterior is the three-component [`Mixture`] of [`posterior_mixture`]: pick a
//! component with one uniform ([`Mixture::pick`]), then keep `z`, draw from `x_θ`, or draw from
//! the prior ([`uniform_id`], or the mask). The V-wide rows ([`posterior_row`], [`psi_row`],
//! [`remdm_row`]) are the official expressions written out, for the tests and a CPU path.

/// ε of the log-linear schedule (`duo:configs/noise/log-linear.yaml` `eps`, the default of
/// `ddg:noise_schedule.py:LogLinearNoise` and of SEDD).
pub const LOG_LINEAR_EPS: f64 = 1e-3;

/// The last time of the sampling loops (`duo:trainer_base.py:Diffusion.generate_samples`,
/// `ddg:diffusion.py:Diffusion._diffusion_sample`: `eps=1e-5`).
pub const SAMPLING_EPS: f64 = 1e-5;

/// One-line help of the strategies built on this module, `(name, help)`, for the strategy
/// list. `κ` and `η` are the numbers the user gives.
pub const STRATEGIES: &[(&str, &str)] = &[
    (
        "uniform",
        "uniform-state models (UDLM, Duo): every position draws from the exact ancestral \
         posterior each step and may change; an argmax pass at the end (greedy tail)",
    ),
    (
        "psi:κ",
        "Duo's Ψ-sampler: κ·posterior + (1−κ)·(predict x0, re-noise to s), so each step also \
         corrects; κ = 1 is `uniform`, smaller κ revises more",
    ),
    (
        "remdm:η",
        "ReMDM for masked models: each step re-masks a committed token with probability \
         σ = min(η, (1−α_s)/α_t), so earlier choices can be revised",
    ),
];

// ---------------------------------------------------------------------------------------------
// Schedule

/// `α_t = 1 − (1−ε)t`: `duo@7c9b498f5b:trainer_base.py:LogLinear.forward` (second output).
pub fn log_linear_alpha(t: f64, eps: f64) -> f64 {
    1.0 - (1.0 - eps) * t
}

/// `α'_t = −(1−ε)`: `duo@7c9b498f5b:trainer_base.py:LogLinear.forward` (first output).
pub fn log_linear_dalpha(eps: f64) -> f64 {
    -(1.0 - eps)
}

/// `σ = −ln α`, the time input of a uniform model:
/// `duo@7c9b498f5b:trainer_base.py:Diffusion._sigma_from_alphat`. (ddg computes the same σ as
/// `−log1p(−(1−ε)t)`, `ddg@edb0f8c28b:noise_schedule.py:LogLinearNoise.total_noise`: see
/// [`score::Noise`](super::score::Noise).)
pub fn sigma_of_alpha(alpha: f64) -> f64 {
    -alpha.ln()
}

/// The t of an α under the log-linear schedule as Duo computes it, `1 − α`:
/// `duo@7c9b498f5b:trainer_base.py:LogLinear.get_t_for_alpha`. It ignores ε (the exact inverse
/// would be `(1−α)/(1−ε)`); kept as the code has it, since the Ψ time profiles use it.
pub fn log_linear_t_for_alpha(alpha: f64) -> f64 {
    1.0 - alpha
}

// ---------------------------------------------------------------------------------------------
// The posterior as a mixture

/// One of the three components of a step's distribution at a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// Keep the current id `z`.
    Stay,
    /// Draw from the model's `x_θ` (after any nucleus filter).
    Model,
    /// Draw from the prior π: uniform over the `n` ids, or the mask.
    Prior,
}

/// A step's distribution at one position as a mixture: `stay·δ_z + model·x_θ + prior·π`.
/// The weights are probabilities (non-negative, sum 1 up to rounding).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mixture {
    pub stay: f64,
    pub model: f64,
    pub prior: f64,
}

impl Mixture {
    /// `[stay, model, prior]`
    pub fn weights(&self) -> [f64; 3] {
        [self.stay, self.model, self.prior]
    }

    /// The component a uniform `u ∈ [0, 1)` picks, by inverting the CDF over
    /// (stay, model, prior). A `u` past the sum (rounding) picks the last component of positive
    /// weight, so a zero-weight component is never picked.
    pub fn pick(&self, u: f64) -> Component {
        if u < self.stay {
            return Component::Stay;
        }
        if u < self.stay + self.model {
            return Component::Model;
        }
        if self.prior > 0.0 {
            Component::Prior
        } else if self.model > 0.0 {
            Component::Model
        } else {
            Component::Stay
        }
    }

    /// The probability of one token under the mixture: `stay·[v = z] + model·x_θ(v) +
    /// prior·π(v)`, given whether v is z, `x_v = x_θ(v)` and `prior_v = π(v)` (1/n, or 1 at
    /// the mask). For a step's trace.
    pub fn prob(&self, is_z: bool, x_v: f64, prior_v: f64) -> f64 {
        (if is_z { self.stay } else { 0.0 }) + self.model * x_v + self.prior * prior_v
    }
}

/// The id a uniform `u ∈ [0, 1)` picks from the uniform prior over `n` ids (it may be `z`).
pub fn uniform_id(u: f64, n: usize) -> u32 {
    ((u * n as f64) as usize).min(n.saturating_sub(1)) as u32
}

/// The exact ancestral posterior `q(x_s | x_t = z, x_θ)` of a uniform-state model as a mixture
/// of keep-z, draw-from-`x_θ` and draw-uniform, with `p_z = x_θ(z)`:
///
/// ```text
/// D = n α_t p_z + 1 − α_t
/// stay = (n α_t p_z + α_t/α_s − α_t)/D,  model = (α_s − α_t)/D,  prior = (1 − α_t/α_s)(1 − α_s)/D
/// ```
///
/// It is [`posterior_row`] regrouped (`ddg@edb0f8c28b:diffusion.py:Diffusion._compute_posterior`,
/// the same expression as `duo@7c9b498f5b:algo.py:DUO_BASE._posterior_from_x0`). `α_s = 1` gives
/// the posterior of x0 (Duo's `ancestral` noise removal, and Ψ's `q(x_0 | x_t)`). A clean `x0`
/// in place of `x_θ` is `p_z = [z = x0]` with the model component δ_x0. With a nucleus filter
/// (Duo's `p_nucleus`), `x_θ` is the filtered distribution and `p_z` its value at z (0 when z
/// is cut).
pub fn posterior_mixture(alpha_t: f64, alpha_s: f64, n: usize, p_z: f64) -> Mixture {
    let n = n as f64;
    let alpha_ts = alpha_t / alpha_s;
    let d = alpha_t * n * p_z + (1.0 - alpha_t);
    Mixture {
        stay: (alpha_t * n * p_z + alpha_ts - alpha_t) / d,
        model: (alpha_s - alpha_t) / d,
        prior: (1.0 - alpha_ts) * (1.0 - alpha_s) / d,
    }
}

/// The V-wide posterior `q(x_s | x_t = z, x)` written as the code writes it, into `out`
/// (`x.len()` = n): `ddg@edb0f8c28b:diffusion.py:Diffusion._compute_posterior` (uniform, with
/// the uniform limiting distribution), `duo@7c9b498f5b:algo.py:DUO_BASE._posterior_from_x0`.
/// `x` is `x_θ` or a one-hot x0.
pub fn posterior_row(x: &[f64], z: u32, alpha_t: f64, alpha_s: f64, out: &mut [f64]) {
    let n = x.len() as f64;
    let z = z as usize;
    let alpha_ts = alpha_t / alpha_s;
    let d_alpha = alpha_s - alpha_t;
    let unif = (1.0 - alpha_ts) * (1.0 - alpha_s) / n;
    let den = alpha_t * n * x[z] + (1.0 - alpha_t);
    for (v, (o, &xv)) in out.iter_mut().zip(x).enumerate() {
        let onehot = if v == z { 1.0 } else { 0.0 };
        *o =
            (alpha_t * n * xv * onehot + (alpha_ts - alpha_t) * onehot + d_alpha * xv + unif) / den;
    }
}

// ---------------------------------------------------------------------------------------------
// Duo's Ψ update and ReMDM

/// The prior π that Ψ's corrector re-noises toward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prior {
    /// Uniform over the n ids: `duo:trainer_base.py:UniformState._forward_process`.
    Uniform,
    /// All mass on the mask id (absorbing models, MDLM): `AbsorbingState._forward_process`.
    Mask(u32),
}

/// Duo's Ψ step at one position as a mixture:
/// `q_Ψ = κ·q(x_s | x_t, x_θ) + (1−κ)·[α_s·q(x_0 | x_t, x_θ) + (1−α_s)·π]`
/// (`duo@7c9b498f5b:trainer_base.py:Diffusion._psi_update`).
///
/// - [`Prior::Uniform`]: both posteriors are [`posterior_mixture`] (at α_s and at 1).
/// - [`Prior::Mask`]: the absorbing posterior (`AbsorbingState._posterior_from_x0`), where
///   `x_θ` has had MDLM's carry-over (SUBS): a masked `z` gets model weight `(α_s−α_t)/(1−α_t)`
///   and mask weight `(1−α_s)/(1−α_t)`; a clean `z` is kept (its `x_θ` is δ_z). The result is
///   ReMDM's step with `σ = (1−κ)(1−α_s)` ([`remdm_mixture`]). `p_z` is not used.
pub fn psi_mixture(
    prior: Prior,
    alpha_t: f64,
    alpha_s: f64,
    kappa: f64,
    n: usize,
    z: u32,
    p_z: f64,
) -> Mixture {
    let (q, q0) = match prior {
        Prior::Uniform => (
            posterior_mixture(alpha_t, alpha_s, n, p_z),
            posterior_mixture(alpha_t, 1.0, n, p_z),
        ),
        Prior::Mask(mask) if z == mask => (
            Mixture {
                stay: 0.0,
                model: (alpha_s - alpha_t) / (1.0 - alpha_t),
                prior: (1.0 - alpha_s) / (1.0 - alpha_t),
            },
            Mixture {
                stay: 0.0,
                model: 1.0,
                prior: 0.0,
            },
        ),
        Prior::Mask(_) => {
            let keep = Mixture {
                stay: 1.0,
                model: 0.0,
                prior: 0.0,
            };
            (keep, keep)
        }
    };
    Mixture {
        stay: kappa * q.stay + (1.0 - kappa) * alpha_s * q0.stay,
        model: kappa * q.model + (1.0 - kappa) * alpha_s * q0.model,
        prior: kappa * q.prior + (1.0 - kappa) * (1.0 - alpha_s),
    }
}

/// The V-wide Ψ distribution as the code computes it, into `out`
/// (`duo@7c9b498f5b:trainer_base.py:Diffusion._psi_update`, with
/// `algo.py:DUO_BASE._posterior_from_x0` and `UniformState._forward_process` for
/// [`Prior::Uniform`], `AbsorbingState._posterior_from_x0` and `_forward_process` for
/// [`Prior::Mask`]). `x` is `x_θ` after any nucleus filter (and, for the mask prior, after
/// SUBS: a clean position's row is δ_z, and the code copies it as it is).
pub fn psi_row(
    prior: Prior,
    x: &[f64],
    z: u32,
    alpha_t: f64,
    alpha_s: f64,
    kappa: f64,
    out: &mut [f64],
) {
    let n = x.len() as f64;
    let zu = z as usize;
    match prior {
        Prior::Uniform => {
            // q_xs (posterior at α_s) and q_x0 (at α = 1), both in _posterior_from_x0's form
            let post = |alpha_s: f64, v: usize, xv: f64| {
                let alpha_ts = alpha_t / alpha_s;
                let onehot = if v == zu { 1.0 } else { 0.0 };
                (alpha_t * n * xv * onehot
                    + (alpha_ts - alpha_t) * onehot
                    + (alpha_s - alpha_t) * xv
                    + (1.0 - alpha_ts) * (1.0 - alpha_s) / n)
                    / (alpha_t * n * x[zu] + (1.0 - alpha_t))
            };
            for (v, (o, &xv)) in out.iter_mut().zip(x).enumerate() {
                let q_xs = post(alpha_s, v, xv);
                let q_x0 = post(1.0, v, xv);
                let pc = alpha_s * q_x0 + (1.0 - alpha_s) / n;
                *o = kappa * q_xs + (1.0 - kappa) * pc;
            }
        }
        Prior::Mask(mask) => {
            let m = mask as usize;
            let masked = zu == m;
            for (v, (o, &xv)) in out.iter_mut().zip(x).enumerate() {
                // _posterior_from_x0: (α_s−α_t)/(1−α_t)·x, the mask column set to
                // (1−α_s)/(1−α_t); a clean position copies its row
                let absorbing = |alpha_s: f64| {
                    if !masked {
                        xv
                    } else if v == m {
                        (1.0 - alpha_s) / (1.0 - alpha_t)
                    } else {
                        (alpha_s - alpha_t) / (1.0 - alpha_t) * xv
                    }
                };
                let q_xs = absorbing(alpha_s);
                let q_x0 = absorbing(1.0);
                // _forward_process: α_s·q_x0, the mask column set to 1 − α_s
                let pc = if v == m {
                    1.0 - alpha_s
                } else {
                    alpha_s * q_x0
                };
                *o = kappa * q_xs + (1.0 - kappa) * pc;
            }
        }
    }
}

/// How ReMDM chooses its re-masking probability σ from η
/// (`remdm@f830d659fb:diffusion.py:Diffusion._ddpm_caching_update`, `sampling.sampler`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemdmSchedule {
    /// `remdm-cap`: `σ = min(η, (1−α_s)/α_t)` (η where α_t = 0).
    Cap,
    /// `remdm-rescale`: `σ = η·min(1, (1−α_s)/α_t)` (η where α_t = 0).
    Rescale,
}

/// ReMDM's σ for one step (`remdm@f830d659fb:diffusion.py:Diffusion._ddpm_caching_update`,
/// samplers `remdm-cap` and `remdm-rescale`). ReMDM's own loop uses `α = 1 − t` (no ε).
pub fn remdm_sigma(schedule: RemdmSchedule, eta: f64, alpha_t: f64, alpha_s: f64) -> f64 {
    match schedule {
        RemdmSchedule::Cap if alpha_t > 0.0 => eta.min((1.0 - alpha_s) / alpha_t),
        RemdmSchedule::Cap => eta,
        RemdmSchedule::Rescale => {
            let sigma_max = if alpha_t > 0.0 {
                (1.0 - alpha_s) / alpha_t
            } else {
                1.0
            };
            eta * sigma_max.min(1.0)
        }
    }
}

/// ReMDM's step at one position of a masked model as a mixture (prior = the mask): a clean
/// token stays with probability `1−σ` and is re-masked with probability σ; a masked one becomes
/// a draw from `x_θ` with probability `(α_s − (1−σ)α_t)/(1−α_t)` and stays masked with
/// `(1 − α_s − σα_t)/(1−α_t)` (`remdm@f830d659fb:diffusion.py:Diffusion._ddpm_caching_update`).
/// Equal to [`psi_mixture`] with [`Prior::Mask`] and `κ = 1 − σ/(1−α_s)` ([`remdm_kappa`]).
pub fn remdm_mixture(alpha_t: f64, alpha_s: f64, sigma: f64, z_is_mask: bool) -> Mixture {
    if z_is_mask {
        Mixture {
            stay: 0.0,
            model: (alpha_s - (1.0 - sigma) * alpha_t) / (1.0 - alpha_t),
            prior: (1.0 - alpha_s - sigma * alpha_t) / (1.0 - alpha_t),
        }
    } else {
        Mixture {
            stay: 1.0 - sigma,
            model: 0.0,
            prior: sigma,
        }
    }
}

/// ReMDM's V-wide distribution as the code computes it, into `out`
/// (`remdm@f830d659fb:diffusion.py:Diffusion._ddpm_caching_update`, `remdm-*` samplers): a
/// clean position `x·(1−σ)` with σ at the mask; a masked one
/// `x·(α_s − (1−σ)α_t)/(1−α_t)` with `(1 − α_s − σα_t)/(1−α_t)` at the mask. `x` is after SUBS.
pub fn remdm_row(
    x: &[f64],
    z: u32,
    mask: u32,
    alpha_t: f64,
    alpha_s: f64,
    sigma: f64,
    out: &mut [f64],
) {
    let m = mask as usize;
    let (scale, at_mask) = if z == mask {
        (
            (alpha_s - (1.0 - sigma) * alpha_t) / (1.0 - alpha_t),
            (1.0 - alpha_s - sigma * alpha_t) / (1.0 - alpha_t),
        )
    } else {
        (1.0 - sigma, sigma)
    };
    for (v, (o, &xv)) in out.iter_mut().zip(x).enumerate() {
        *o = if v == m { at_mask } else { xv * scale };
    }
}

/// The κ at which Ψ with the mask prior is ReMDM with re-masking probability σ:
/// `clip(1 − σ/(1−α_s), 0, 1)`, as `duo@7c9b498f5b:trainer_base.py:Diffusion._mode_to_psi_kappas`
/// computes it for its ReMDM-like modes.
pub fn remdm_kappa(sigma: f64, alpha_s: f64) -> f64 {
    (1.0 - sigma / (1.0 - alpha_s)).clamp(0.0, 1.0)
}

// ---------------------------------------------------------------------------------------------
// κ schedules and Ψ time profiles

/// One phase's κ mode (`duo@7c9b498f5b:trainer_base.py:Diffusion._mode_to_psi_kappas`; the
/// config strings `pure-posterior`, `pure-pc`, `constant-η`, `constant-remdm-η`,
/// `max-capped-η`, `max-rescale-η`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KappaMode {
    /// κ = 1: the ancestral posterior alone.
    PurePosterior,
    /// κ = 0: predict x0 and re-noise to s alone.
    PurePc,
    /// κ = η.
    Constant(f64),
    /// ReMDM-like, σ = η.
    ConstantRemdm(f64),
    /// ReMDM-like, σ = min(η, (1−α_s)/α_t) (η where α_t = 0).
    MaxCapped(f64),
    /// ReMDM-like, σ = η·min(η, (1−α_s)/α_t) (η where α_t = 0). The code has `min(η, …)`
    /// inside, where ReMDM's `remdm-rescale` has `min(1, …)` ([`RemdmSchedule::Rescale`]); this
    /// follows Duo's code.
    MaxRescale(f64),
}

impl std::str::FromStr for KappaMode {
    type Err = String;

    /// The config string, parsed as the code does: `pure-posterior`, `pure-pc`, else η is
    /// the text after the last `-` and the prefix picks the mode.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pure-posterior" => return Ok(KappaMode::PurePosterior),
            "pure-pc" => return Ok(KappaMode::PurePc),
            _ => {}
        }
        let eta: f64 = s
            .rsplit('-')
            .next()
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| format!("κ mode {s:?}: no number after the last '-'"))?;
        if s.starts_with("constant-remdm") {
            Ok(KappaMode::ConstantRemdm(eta))
        } else if s.starts_with("constant-") {
            Ok(KappaMode::Constant(eta))
        } else if s.starts_with("max-capped-") {
            Ok(KappaMode::MaxCapped(eta))
        } else if s.starts_with("max-rescale-") {
            Ok(KappaMode::MaxRescale(eta))
        } else {
            Err(format!(
                "unknown κ mode {s:?} (pure-posterior, pure-pc, constant-η, constant-remdm-η, \
                 max-capped-η, max-rescale-η)"
            ))
        }
    }
}

impl KappaMode {
    /// The κ of one step from α_t to α_s. For the ReMDM-like modes: σ from the mode, then
    /// [`remdm_kappa`].
    pub fn kappa(&self, alpha_t: f64, alpha_s: f64) -> f64 {
        let sigma = match *self {
            KappaMode::PurePosterior => return 1.0,
            KappaMode::PurePc => return 0.0,
            KappaMode::Constant(eta) => return eta,
            KappaMode::ConstantRemdm(eta) => eta,
            KappaMode::MaxCapped(eta) if alpha_t == 0.0 => eta,
            KappaMode::MaxCapped(eta) => eta.min((1.0 - alpha_s) / alpha_t),
            KappaMode::MaxRescale(eta) if alpha_t > 0.0 => eta.min((1.0 - alpha_s) / alpha_t) * eta,
            KappaMode::MaxRescale(eta) => eta,
        };
        remdm_kappa(sigma, alpha_s)
    }

    /// The κ at each of a phase's timesteps, given their α:
    /// `duo@7c9b498f5b:trainer_base.py:Diffusion._mode_to_psi_kappas`. The constant modes give
    /// one κ per timestep; the ReMDM-like ones one per consecutive pair, then a κ = 1 for the
    /// phase's last point (none for an empty or one-point phase, as in the code).
    pub fn kappas(&self, alphas: &[f64]) -> Vec<f64> {
        match self {
            KappaMode::PurePosterior | KappaMode::PurePc | KappaMode::Constant(_) => {
                vec![self.kappa(1.0, 1.0); alphas.len()]
            }
            _ => {
                let mut k: Vec<f64> = alphas.windows(2).map(|w| self.kappa(w[0], w[1])).collect();
                if !k.is_empty() {
                    k.push(1.0);
                }
                k
            }
        }
    }
}

/// `torch.linspace(start, end, steps)`, with torch's symmetric formula (the first half from
/// the start, the second from the end, so the last point is `end` exactly).
pub fn linspace(start: f64, end: f64, steps: usize) -> Vec<f64> {
    if steps == 1 {
        return vec![start];
    }
    let step = (end - start) / (steps as f64 - 1.0);
    let half = steps / 2;
    (0..steps)
        .map(|i| {
            if i < half {
                start + step * i as f64
            } else {
                end - step * (steps - i - 1) as f64
            }
        })
        .collect()
}

/// A Ψ-sampler's time grid (`sampling.psi.time_profile`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimeProfile {
    /// `linear`: `linspace(1, eps, steps + 1)`.
    Linear,
    /// `linear-constant-linear-c[-inv]`: down to c, held at c for the middle phase, then down
    /// to eps; with `inv`, c is an α and becomes a t through the schedule.
    LinearConstantLinear { c: f64, inv: bool },
}

impl std::str::FromStr for TimeProfile {
    type Err = String;

    /// Parsed as the code does: `linear`, or `linear-constant-linear-…` with c the fourth
    /// `-`-separated field and `inv` anywhere in the string.
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "linear" {
            return Ok(TimeProfile::Linear);
        }
        if !s.starts_with("linear-constant-linear") {
            return Err(format!("unknown time profile {s:?}"));
        }
        let c = s
            .split('-')
            .nth(3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| {
                format!("time profile {s:?}: no number after linear-constant-linear-")
            })?;
        Ok(TimeProfile::LinearConstantLinear {
            c,
            inv: s.contains("inv"),
        })
    }
}

/// Python's `round`: to the nearest integer, ties to even.
fn py_round(x: f64) -> usize {
    x.round_ties_even().max(0.0) as usize
}

/// The `steps + 1` timesteps of a Ψ run: `duo@7c9b498f5b:trainer_base.py:
/// Diffusion._get_sampling_time_profile` (for `predictor=psi`; any other predictor is
/// [`TimeProfile::Linear`]). `t_for_alpha` converts an `inv` profile's α
/// ([`log_linear_t_for_alpha`] for the log-linear schedule).
pub fn time_profile(
    profile: TimeProfile,
    high_frac: f64,
    middle_frac: f64,
    eps: f64,
    steps: usize,
    t_for_alpha: impl Fn(f64) -> f64,
) -> Vec<f64> {
    let n = steps + 1;
    match profile {
        TimeProfile::Linear => linspace(1.0, eps, n),
        TimeProfile::LinearConstantLinear { c, inv } => {
            let c = if inv { t_for_alpha(c) } else { c };
            let n_hi = py_round(high_frac * n as f64);
            let n_mid = py_round(middle_frac * n as f64);
            let mut t = linspace(1.0, c, n_hi);
            t.extend(std::iter::repeat_n(c, n_mid));
            t.extend(linspace(c, eps, n.saturating_sub(n_hi + n_mid)));
            t
        }
    }
}

/// The κ modes of a Ψ run and where they apply (`sampling.psi`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PsiPhases {
    pub high: KappaMode,
    pub middle: KappaMode,
    pub low: KappaMode,
    /// Fraction of the timesteps in the high phase.
    pub high_frac: f64,
    /// Fraction of the timesteps in the middle phase.
    pub middle_frac: f64,
}

/// κ at every timestep of a run, given the α at each (`alphas[i] = α(timesteps[i])`):
/// `duo@7c9b498f5b:trainer_base.py:Diffusion._get_kappas`. Step i uses `kappas[i]`. `None`
/// where the code's own check fails (a κ outside [0, 1], or a ReMDM-like phase of one point,
/// which gives no κ).
pub fn psi_kappas(phases: &PsiPhases, alphas: &[f64]) -> Option<Vec<f64>> {
    let n = alphas.len();
    let n_hi = py_round(phases.high_frac * n as f64).min(n);
    let n_mid = py_round(phases.middle_frac * n as f64).min(n - n_hi);
    let mut k = phases.high.kappas(&alphas[..n_hi]);
    k.extend(phases.middle.kappas(&alphas[n_hi..n_hi + n_mid]));
    k.extend(phases.low.kappas(&alphas[n_hi + n_mid..]));
    (k.len() == n && k.iter().all(|k| (0.0..=1.0).contains(k))).then_some(k)
}

// ---------------------------------------------------------------------------------------------
// Nucleus filter and the greedy tail

/// Which nucleus (top-p) rule: both always keep the most likely token and renormalise the kept
/// probabilities by their sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NucleusRule {
    /// Keep a token while the mass before it is ≤ p, so the token that crosses p is kept:
    /// `duo@7c9b498f5b:utils.py:top_k_top_p_filtering` (`sampling.p_nucleus`).
    Duo,
    /// Keep a token while the mass up to and including it is ≤ p (the crossing token is
    /// dropped): `remdm@f830d659fb:diffusion.py:Diffusion._ddpm_caching_update`
    /// (`sampling.nucleus_p`).
    Remdm,
}

/// How many of the most likely probabilities the nucleus keeps, given them sorted in
/// descending order: all of a row, or the leading candidates of a summary. `None` when the
/// listed mass never passes `p` (or `p ≥ 1`, no filter): for candidates, the cut lies beyond
/// them (the row decides); for a whole row, every token is kept.
///
/// The engine's `TokenChoice::top_p` (`proposal::sampling_distribution`) stops at the first
/// token whose cumulative mass reaches p (`≥`), Duo's rule but for a mass exactly at p.
pub fn nucleus_keep(sorted_desc: &[f64], p: f64, rule: NucleusRule) -> Option<usize> {
    if p >= 1.0 {
        // no filter (both codes apply it only for p < 1)
        return None;
    }
    let mut acc = 0.0;
    for (i, &q) in sorted_desc.iter().enumerate() {
        acc += q;
        if acc > p {
            return Some(match rule {
                NucleusRule::Duo => i + 1,
                NucleusRule::Remdm => i.max(1),
            });
        }
    }
    None
}

/// The nucleus-filtered, renormalised distribution of a whole row of probabilities, into `out`
/// (0 for dropped tokens): `duo@7c9b498f5b:utils.py:top_k_top_p_filtering` with `top_p = p`
/// (then `exp`), or ReMDM's filter. Sorts the row (allocates its order); ties keep the lower id
/// first.
pub fn nucleus_row(x: &[f64], p: f64, rule: NucleusRule, out: &mut [f64]) {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[b].total_cmp(&x[a]).then(a.cmp(&b)));
    let sorted: Vec<f64> = order.iter().map(|&i| x[i]).collect();
    let keep = nucleus_keep(&sorted, p, rule).unwrap_or(x.len());
    out.iter_mut().for_each(|o| *o = 0.0);
    let total: f64 = sorted[..keep].iter().sum();
    for &i in &order[..keep] {
        out[i] = x[i] / total;
    }
}

/// The noise-removal step after a uniform model's loop (`sampling.noise_removal`,
/// `duo@7c9b498f5b:trainer_base.py:Diffusion.generate_samples`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseRemoval {
    /// Stop after the loop.
    None,
    /// One more posterior step at `t = eps` with `α_s = 1` ([`posterior_mixture`]`(α_t, 1, …)`):
    /// Duo's default.
    Ancestral,
    /// The greedy tail: every position becomes the argmax of `x_θ(· | x, σ(eps))`
    /// ([`greedy`]); Duo's README setting for the distilled model.
    Greedy,
}

/// The argmax of a row (the first of equals, as `torch.argmax`): the greedy tail's token.
pub fn greedy(row: &[f64]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

// ---------------------------------------------------------------------------------------------
// NELBO

/// The continuous-time uniform NELBO of one token, written as the one-hot sum over the
/// vocabulary: with `x̄ = nα_t e_x0 + (1−α_t)`, `x̄_θ = nα_t x_θ + (1−α_t)`,
/// `ℓ = α'_t/(nα_t)·[n/x̄_z − n/x̄_θ,z − Σ_j (x̄_j/x̄_z)(ln x̄_θ,z − ln x̄_θ,j + ln x̄_j − ln x̄_z)]`
/// (`ddg@edb0f8c28b:diffusion.py:Diffusion._forward_pass_diffusion`, uniform branch, T = 0).
/// ddg itself calls it with `α_t = 1 − t`, `α'_t = −1` while noising with `(1−ε)t`.
pub fn nelbo_sum(log_x: &[f64], x0: u32, z: u32, alpha_t: f64, dalpha_t: f64) -> f64 {
    let n = log_x.len() as f64;
    let (x0, z) = (x0 as usize, z as usize);
    let bar = |j: usize| n * alpha_t * if j == x0 { 1.0 } else { 0.0 } + 1.0 - alpha_t;
    let bar_theta = |lx: f64| n * alpha_t * lx.exp() + 1.0 - alpha_t;
    let x_bar_z = bar(z);
    let x_bar_theta_z = bar_theta(log_x[z]);
    let coeff = dalpha_t / (n * alpha_t);
    let term1 = n / x_bar_z - n / x_bar_theta_z;
    let term2: f64 = log_x
        .iter()
        .enumerate()
        .map(|(j, &lx)| {
            let xb = bar(j);
            (xb / x_bar_z) * (x_bar_theta_z.ln() - bar_theta(lx).ln() + xb.ln() - x_bar_z.ln())
        })
        .sum();
    coeff * (term1 - term2)
}

/// The same bound in Duo's O(V) form without the one-hot sum:
/// `duo@7c9b498f5b:algo.py:DUO_BASE.nll_per_token` (with `c = (1−α_t)/(nα_t + 1−α_t)`,
/// `S = Σ_j ln x̄_θ,j`). Duo calls it with its own schedule, `α_t = 1 − (1−ε)t`,
/// `α'_t = −(1−ε)`.
pub fn nelbo_duo(log_x: &[f64], x0: u32, z: u32, alpha_t: f64, dalpha_t: f64) -> f64 {
    let n = log_x.len() as f64;
    let bar_theta = |lx: f64| n * alpha_t * lx.exp() + 1.0 - alpha_t;
    let coeff = dalpha_t / (n * alpha_t);
    let (eq, neq) = if x0 == z { (1.0, 0.0) } else { (0.0, 1.0) };
    let xbar_xt = (1.0 - alpha_t) + n * alpha_t * eq;
    let xbar_theta_xt = bar_theta(log_x[z as usize]);
    let xbar_theta_x = bar_theta(log_x[x0 as usize]);
    let term1 = n * (1.0 / xbar_xt - 1.0 / xbar_theta_xt);
    let c = (1.0 - alpha_t) / (n * alpha_t + 1.0 - alpha_t);
    let term2_coefs = eq * c + neq;
    let term2_offset = ((n - 1.0) * c * eq - (1.0 / c) * neq) * c.ln();
    let sum_log: f64 = log_x.iter().map(|&lx| bar_theta(lx).ln()).sum();
    let term2_theta = -term2_coefs * (sum_log - n * xbar_theta_xt.ln())
        - n * alpha_t / (1.0 - alpha_t) * (xbar_theta_x.ln() - xbar_theta_xt.ln()) * neq;
    let term2 = term2_theta + term2_offset;
    coeff * (term1 - term2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn softmax(logits: &[f64]) -> Vec<f64> {
        let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    fn row(seed: u64, n: usize, scale: f64) -> Vec<f64> {
        let logits: Vec<f64> = (0..n)
            .map(|i| {
                let u = crate::diffusion::seeded::unit(crate::diffusion::seeded::hash3(
                    seed, i as u64, 0,
                ));
                (u - 0.5) * scale
            })
            .collect();
        softmax(&logits)
    }

    /// Expanding a mixture over the vocabulary gives the official V-wide row.
    fn expand(m: &Mixture, x: &[f64], z: u32, prior: Prior) -> Vec<f64> {
        let n = x.len();
        (0..n)
            .map(|v| {
                let pv = match prior {
                    Prior::Uniform => 1.0 / n as f64,
                    Prior::Mask(mask) => (v as u32 == mask) as u8 as f64,
                };
                m.prob(v as u32 == z, x[v], pv)
            })
            .collect()
    }

    #[test]
    fn the_mixture_is_the_posterior_row() {
        for (case, &(t, s)) in [
            (1.0, 0.9),
            (0.5, 0.49),
            (0.1, 0.0),
            (0.3, 0.3),
            (1e-5, -1.0),
        ]
        .iter()
        .enumerate()
        {
            let (at, as_) = (
                log_linear_alpha(t, 1e-3),
                if s < 0.0 {
                    1.0
                } else {
                    log_linear_alpha(s, 1e-3)
                },
            );
            for n in [2usize, 7, 50] {
                let x = row(case as u64 * 100 + n as u64, n, 6.0);
                let z = (case * 3 % n) as u32;
                let m = posterior_mixture(at, as_, n, x[z as usize]);
                assert!((m.weights().iter().sum::<f64>() - 1.0).abs() < 1e-12);
                assert!(m.weights().iter().all(|w| *w >= 0.0));
                let mut want = vec![0.0; n];
                posterior_row(&x, z, at, as_, &mut want);
                let got = expand(&m, &x, z, Prior::Uniform);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-13, "{g} vs {w}");
                }
                for kappa in [0.0, 0.4, 1.0] {
                    let m = psi_mixture(Prior::Uniform, at, as_, kappa, n, z, x[z as usize]);
                    psi_row(Prior::Uniform, &x, z, at, as_, kappa, &mut want);
                    let got = expand(&m, &x, z, Prior::Uniform);
                    for (g, w) in got.iter().zip(&want) {
                        assert!((g - w).abs() < 1e-13, "Ψ κ={kappa}: {g} vs {w}");
                    }
                }
            }
        }
    }

    /// Ψ with the mask prior and κ = 1 − σ/(1−α_s) is ReMDM with re-masking probability σ,
    /// position by position and as rows, for σ ≤ 1 − α_s; beyond, κ clips at 0 and Ψ re-masks
    /// with probability 1 − α_s only.
    #[test]
    fn psi_with_the_mask_prior_is_remdm() {
        let n = 9;
        let mask = 8u32;
        for (t, dt) in [(0.9, 0.1), (0.5, 0.01), (0.05, 0.04)] {
            let (at, as_) = (1.0 - t, 1.0 - (t - dt));
            for sched in [RemdmSchedule::Cap, RemdmSchedule::Rescale] {
                for eta in [0.01, 0.2, 1.0] {
                    let sigma = remdm_sigma(sched, eta, at, as_);
                    let kappa = remdm_kappa(sigma, as_);
                    assert!((0.0..=1.0).contains(&kappa));
                    // the σ Ψ can give: (1−κ)(1−α_s), which is σ unless κ was clipped
                    let clipped = sigma > 1.0 - as_;
                    assert_eq!(clipped, kappa == 0.0 && sigma != 1.0 - as_);
                    let sigma = (1.0 - kappa) * (1.0 - as_);
                    for z in [mask, 3] {
                        let mut x = row(z as u64 + 5, n, 4.0);
                        if z == mask {
                            x[mask as usize] = 0.0;
                            let s: f64 = x.iter().sum();
                            x.iter_mut().for_each(|v| *v /= s);
                        } else {
                            x.iter_mut().for_each(|v| *v = 0.0);
                            x[z as usize] = 1.0;
                        }
                        let a = psi_mixture(Prior::Mask(mask), at, as_, kappa, n, z, 0.0);
                        let b = remdm_mixture(at, as_, sigma, z == mask);
                        for (p, q) in a.weights().iter().zip(b.weights()) {
                            assert!((p - q).abs() < 1e-12, "{a:?} vs {b:?}");
                        }
                        let (mut ra, mut rb) = (vec![0.0; n], vec![0.0; n]);
                        psi_row(Prior::Mask(mask), &x, z, at, as_, kappa, &mut ra);
                        remdm_row(&x, z, mask, at, as_, sigma, &mut rb);
                        for (p, q) in ra.iter().zip(&rb) {
                            assert!((p - q).abs() < 1e-12, "{ra:?} vs {rb:?}");
                        }
                        let e = expand(&a, &x, z, Prior::Mask(mask));
                        for (p, q) in e.iter().zip(&ra) {
                            assert!((p - q).abs() < 1e-12);
                        }
                    }
                }
            }
        }
    }

    /// The two NELBO forms agree (§1.7): to 1e-6 relative in f64, here far tighter.
    #[test]
    fn the_two_nelbo_forms_agree() {
        let mut worst: f64 = 0.0;
        for n in [2usize, 11, 64, 300] {
            for (k, t) in [0.999, 0.9, 0.5, 0.1, 0.01, 1e-3].into_iter().enumerate() {
                let x = row(n as u64 * 7 + k as u64, n, 10.0);
                let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
                let (at, da) = (log_linear_alpha(t, 1e-3), log_linear_dalpha(1e-3));
                for (x0, z) in [(0u32, 0u32), (1, 0), (n as u32 - 1, n as u32 - 1), (0, 1)] {
                    let a = nelbo_sum(&lx, x0, z, at, da);
                    let b = nelbo_duo(&lx, x0, z, at, da);
                    let rel = (a - b).abs() / a.abs().max(1.0);
                    worst = worst.max(rel);
                    assert!(rel < 1e-6, "n={n} t={t} x0={x0} z={z}: {a} vs {b}");
                    assert!(a >= -1e-9, "the bound is a KL rate: {a}");
                }
            }
        }
        eprintln!("NELBO forms: worst relative difference {worst:e}");
        assert!(worst < 1e-9);
    }

    #[test]
    fn pick_never_returns_a_zero_weight_component() {
        let m = Mixture {
            stay: 0.25,
            model: 0.75,
            prior: 0.0,
        };
        assert_eq!(m.pick(0.0), Component::Stay);
        assert_eq!(m.pick(0.3), Component::Model);
        assert_eq!(m.pick(1.0 - 1e-17), Component::Model);
        assert_eq!(m.pick(1.5), Component::Model);
        assert_eq!(uniform_id(0.999_999_999_999, 7), 6);
        assert_eq!(uniform_id(0.0, 7), 0);
    }

    #[test]
    fn nucleus_rules() {
        let p = [0.5, 0.3, 0.1, 0.1];
        // Duo keeps the token that crosses p, ReMDM drops it; both keep the first
        assert_eq!(nucleus_keep(&p, 0.6, NucleusRule::Duo), Some(2));
        assert_eq!(nucleus_keep(&p, 0.6, NucleusRule::Remdm), Some(1));
        assert_eq!(nucleus_keep(&p, 0.1, NucleusRule::Duo), Some(1));
        assert_eq!(nucleus_keep(&p, 0.1, NucleusRule::Remdm), Some(1));
        assert_eq!(nucleus_keep(&p, 0.85, NucleusRule::Remdm), Some(2));
        assert_eq!(nucleus_keep(&p[..2], 0.85, NucleusRule::Duo), None);
        assert_eq!(nucleus_keep(&p, 1.0, NucleusRule::Duo), None);
        let mut out = [0.0; 4];
        nucleus_row(&[0.1, 0.5, 0.1, 0.3], 0.6, NucleusRule::Duo, &mut out);
        for (o, w) in out.iter().zip([0.0, 0.625, 0.0, 0.375]) {
            assert!((o - w).abs() < 1e-15, "{out:?}");
        }
        // p ≥ 1 is no filter, even where the row's sum rounds above 1
        let third = [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0 + 1e-16];
        assert_eq!(nucleus_keep(&third, 1.0, NucleusRule::Remdm), None);
        assert_eq!(greedy(&[0.1, 0.4, 0.4, 0.1]), 1);
    }

    #[test]
    fn kappa_modes_parse_as_the_code_does() {
        let parse = |s: &str| s.parse::<KappaMode>();
        assert_eq!(parse("pure-posterior"), Ok(KappaMode::PurePosterior));
        assert_eq!(parse("pure-pc"), Ok(KappaMode::PurePc));
        assert_eq!(parse("constant-0.3"), Ok(KappaMode::Constant(0.3)));
        assert_eq!(
            parse("constant-remdm-0.01"),
            Ok(KappaMode::ConstantRemdm(0.01))
        );
        assert_eq!(parse("max-capped-0.01"), Ok(KappaMode::MaxCapped(0.01)));
        assert_eq!(parse("max-rescale-0.05"), Ok(KappaMode::MaxRescale(0.05)));
        assert!(parse("max-0.1").is_err() && parse("constant-x").is_err());
        assert_eq!(
            "linear-constant-linear-0.9-inv".parse::<TimeProfile>(),
            Ok(TimeProfile::LinearConstantLinear { c: 0.9, inv: true })
        );
        assert_eq!("linear".parse::<TimeProfile>(), Ok(TimeProfile::Linear));
        assert!("cosine".parse::<TimeProfile>().is_err());
        assert_eq!(linspace(1.0, 0.0, 5), [1.0, 0.75, 0.5, 0.25, 0.0]);
        assert_eq!(py_round(128.5), 128);
        assert_eq!(py_round(115.65), 116);
    }
}
