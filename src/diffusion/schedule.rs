//! Noise schedules of absorbing diffusion (kuleshov-group/mdlm@c112c526d1:noise_schedule.py):
//! `α_t = exp(−σ(t))` is the chance a token is still clean at time t, `1 − α_t` the "move
//! chance" that it is masked.

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// `1 − α_t = (1 − ε)·t` (MDLM's default; LLaDA's linear-in-t masking).
    LogLinear { eps: f64 },
    /// `1 − α_t = (1 − ε)·(1 − cos(πt/2))`
    Cosine { eps: f64 },
    /// `σ(t) = σ_min + t·(σ_max − σ_min)`
    Linear { sigma_min: f64, sigma_max: f64 },
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::LogLinear { eps: 1e-3 }
    }
}

impl Schedule {
    /// `1 − α_t`, the probability that a token is masked at time t ∈ [0, 1].
    pub fn move_chance(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        match *self {
            Schedule::LogLinear { eps } => (1.0 - eps) * t,
            Schedule::Cosine { eps } => {
                (1.0 - eps) * (1.0 - (std::f64::consts::FRAC_PI_2 * t).cos())
            }
            // as MDLM's `Linear`: a little noise (σ_min) even at t = 0; the sampler's last
            // step commits whatever is left
            Schedule::Linear {
                sigma_min,
                sigma_max,
            } => 1.0 - (-(sigma_min + t * (sigma_max - sigma_min))).exp(),
        }
    }

    /// Total noise `σ(t) = −log α_t`, the input of time-conditioned models.
    pub fn sigma(&self, t: f64) -> f64 {
        match *self {
            Schedule::Linear {
                sigma_min,
                sigma_max,
            } => sigma_min + t.clamp(0.0, 1.0) * (sigma_max - sigma_min),
            _ => -(1.0 - self.move_chance(t)).ln(),
        }
    }

    /// Probability that a token masked at time t is unmasked by time s < t (absorbing posterior,
    /// Sahoo et al. 2024, arXiv 2406.07524): `(α_s − α_t)/(1 − α_t)`.
    pub fn unmask_probability(&self, t: f64, s: f64) -> f64 {
        let (mt, ms) = (self.move_chance(t), self.move_chance(s));
        if mt <= 0.0 {
            return 1.0;
        }
        ((mt - ms) / mt).clamp(0.0, 1.0)
    }

    pub fn parse(name: &str) -> Option<Schedule> {
        name.parse::<ScheduleKind>()
            .ok()
            .map(ScheduleKind::schedule)
    }
}

/// A schedule as a user names it (`--schedule`, the JS `schedule` option): the family, each
/// with the parameters MDLM's configs use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    #[default]
    LogLinear,
    Cosine,
    Linear,
}

impl ScheduleKind {
    pub const NAMES: &'static str = "loglinear, cosine, linear";

    pub fn schedule(self) -> Schedule {
        match self {
            ScheduleKind::LogLinear => Schedule::LogLinear { eps: 1e-3 },
            ScheduleKind::Cosine => Schedule::Cosine { eps: 1e-3 },
            ScheduleKind::Linear => Schedule::Linear {
                sigma_min: 1e-3,
                sigma_max: 7.0,
            },
        }
    }
}

impl std::str::FromStr for ScheduleKind {
    type Err = String;
    fn from_str(s: &str) -> Result<ScheduleKind, String> {
        match s {
            "loglinear" => Ok(ScheduleKind::LogLinear),
            "cosine" => Ok(ScheduleKind::Cosine),
            "linear" => Ok(ScheduleKind::Linear),
            _ => Err(format!(
                "unknown schedule `{s}`; one of: {}",
                ScheduleKind::NAMES
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_monotone_and_bounded() {
        for s in ["loglinear", "cosine", "linear"].map(|n| Schedule::parse(n).unwrap()) {
            assert!(s.move_chance(0.0) < 1e-2, "{s:?}");
            let mut prev = s.move_chance(0.0);
            for i in 1..=100 {
                let m = s.move_chance(i as f64 / 100.0);
                assert!(m > prev && m < 1.0, "{s:?} at {i}");
                prev = m;
            }
        }
        // schedules that reach zero noise unmask everything left in their last step
        for s in ["loglinear", "cosine"].map(|n| Schedule::parse(n).unwrap()) {
            assert_eq!(s.unmask_probability(0.01, 0.0), 1.0);
        }
    }

    #[test]
    fn loglinear_posterior_is_dt_over_t() {
        let s = Schedule::LogLinear { eps: 1e-3 };
        assert!((s.unmask_probability(0.8, 0.6) - 0.25).abs() < 1e-12);
        assert!((s.sigma(0.5) - -(1.0 - 0.999 * 0.5f64).ln()).abs() < 1e-12);
    }
}
