//! Step math of the continuous families (families-reference §3–§5), pure f64: the time grid,
//! the network's input scaling and output prior, and the DDIM and DDPM updates written as
//! `z_s = a·z_t + b·x̂0 + c·n`, the form the backends' update kernel takes.
//!
//! Both families are variance-preserving and conditioned on γ = −log SNR
//! ([`Noise::levels`](crate::model::Noise::levels)): Plaid's linear γ for the Gaussian on
//! embeddings, Analog Bits' cosine for bits.

use crate::model::{Family, Levels};

/// Steps of a continuous fill when none are asked for. On our models span accuracy does not
/// rise with steps (8, 32 and 128 are all within noise, docs/quality.md), so this is a teaching
/// default: enough frames to watch text condense, under a second of CPU per fill here.
pub const DEFAULT_STEPS: usize = 32;

/// `z_s = z·z_t + x0·x̂0 + noise·n`
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coefs {
    pub z: f64,
    pub x0: f64,
    pub noise: f64,
}

/// DDIM (η = 0): `z_s = α_s·x̂0 + σ_s·ε̂` with `ε̂ = (z_t − α_t·x̂0)/σ_t` (`ddim_sample`,
/// Analog Bits' `ddim_step`).
pub fn ddim(t: Levels, s: Levels) -> Coefs {
    let r = s.sigma / t.sigma;
    Coefs {
        z: r,
        x0: s.alpha - r * t.alpha,
        noise: 0.0,
    }
}

/// Ancestral (DDPM) from the posterior q(z_s | z_t, x̂0), as Plaid writes it
/// (`sample.py:generate_samples`): `c = −expm1(γ_s − γ_t)`,
/// `z_s = (1 − c)·(α_s/α_t)·z_t + c·α_s·x̂0 + √c·σ_s·n`.
pub fn ddpm(t: Levels, s: Levels) -> Coefs {
    let c = -(s.gamma - t.gamma).exp_m1();
    Coefs {
        z: (1.0 - c) * s.alpha / t.alpha,
        x0: c * s.alpha,
        noise: c.sqrt() * s.sigma,
    }
}

/// What the network's input path multiplies the noisy canvas and the self-conditioning
/// estimate by: Plaid scales z to unit variance, `z/√(α²/d + σ²)`, and the estimate by √d
/// (its rows have unit norm); Analog Bits feeds both as they are.
pub fn input_scales(family: Family, width: usize, lv: Levels) -> (f64, f64) {
    match family {
        Family::Gaussian => {
            let d = width as f64;
            (
                1.0 / (lv.alpha * lv.alpha / d + lv.sigma * lv.sigma).sqrt(),
                d.sqrt(),
            )
        }
        _ => (1.0, 1.0),
    }
}

/// Plaid's output prior coefficient α/σ² (the logits gain `(α/σ²)·z·Eᵀ`, the Gaussian
/// log-likelihood of z under each unit-norm embedding); `None` for bits.
pub fn prior_coef(family: Family, lv: Levels) -> Option<f64> {
    (family == Family::Gaussian).then(|| lv.alpha / (lv.sigma * lv.sigma))
}

/// Writes the network's input `[L, 2·width]` (z and the self-conditioning estimate, each scaled
/// by [`input_scales`]; `x_sc` empty for none) and the output prior `(α/σ²)·z` (left empty for
/// bits), reusing both buffers.
pub fn network_input(
    family: Family,
    width: usize,
    lv: Levels,
    z: &[f32],
    x_sc: &[f32],
    input: &mut Vec<f32>,
    prior: &mut Vec<f32>,
) {
    let (kz, ksc) = input_scales(family, width, lv);
    input.clear();
    for (p, zp) in z.chunks(width).enumerate() {
        input.extend(zp.iter().map(|&v| (v as f64 * kz) as f32));
        match x_sc.get(p * width..(p + 1) * width) {
            Some(sc) => input.extend(sc.iter().map(|&v| (v as f64 * ksc) as f32)),
            None => input.extend(std::iter::repeat_n(0.0, width)),
        }
    }
    prior.clear();
    if let Some(c) = prior_coef(family, lv) {
        prior.extend(z.iter().map(|&v| (v as f64 * c) as f32));
    }
}

/// The times of step `i` of `steps`: from `t = 1 − i/steps` to `s = 1 − (i + 1)/steps`.
pub fn step_times(i: usize, steps: usize) -> (f64, f64) {
    let n = steps as f64;
    (1.0 - i as f64 / n, (1.0 - (i + 1) as f64 / n).max(0.0))
}

/// A standard normal draw (Box–Muller on two uniforms in (0, 1]).
pub fn normal<R: rand::Rng>(rng: &mut R) -> f32 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Noise;

    #[test]
    fn ddim_and_ddpm_reach_x0_when_s_is_clean() {
        let t = Noise::Cosine.levels(0.5);
        let clean = Levels {
            alpha: 1.0,
            sigma: 0.0,
            gamma: f64::NEG_INFINITY,
        };
        for c in [ddim(t, clean), ddpm(t, clean)] {
            assert!(c.z.abs() < 1e-12 && (c.x0 - 1.0).abs() < 1e-12 && c.noise.abs() < 1e-12);
        }
    }

    #[test]
    fn ddpm_keeps_the_marginal_variance_when_x0_is_exact() {
        // z_t = α_t x + σ_t ε; with x̂0 = x, Var(z_s | x) must be σ_s²
        let (t, s) = (Noise::Cosine.levels(0.7), Noise::Cosine.levels(0.6));
        let c = ddpm(t, s);
        let mean_x = c.z * t.alpha + c.x0;
        let var = c.z * c.z * t.sigma * t.sigma + c.noise * c.noise;
        assert!((mean_x - s.alpha).abs() < 1e-12, "{mean_x} vs {}", s.alpha);
        assert!((var - s.sigma * s.sigma).abs() < 1e-12, "{var}");
    }

    #[test]
    fn levels_are_variance_preserving() {
        let g = Noise::LinearGamma {
            gamma_min: -3.0,
            gamma_max: 6.0,
        };
        for t in [0.0, 0.3, 1.0] {
            for lv in [g.levels(t), Noise::Cosine.levels(t)] {
                assert!((lv.alpha * lv.alpha + lv.sigma * lv.sigma - 1.0).abs() < 1e-12);
            }
        }
        // the cosine schedule's ᾱ = cos²θ
        let th = (0.4 + 2e-4) / (1.0 + 2.5e-4) * std::f64::consts::FRAC_PI_2;
        let lv = Noise::Cosine.levels(0.4);
        assert!((lv.alpha * lv.alpha - th.cos().powi(2)).abs() < 1e-12);
        // rate = dγ/dt, numerically
        let h = 1e-6;
        let num = (Noise::Cosine.sigma(0.4 + h) - Noise::Cosine.sigma(0.4 - h)) / (2.0 * h);
        assert!((num - Noise::Cosine.rate(0.4)).abs() < 1e-5 * num.abs());
    }
}
