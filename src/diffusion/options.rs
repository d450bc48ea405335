//! What a caller asks of a fill, as every surface spells it (the CLI's flags, the JS options
//! object, JSON), and the library's policy for what it leaves out: per-model and per-strategy
//! defaults, and forced text turned into token ids. One serde shape for requests
//! ([`InfillOptions`]) and one for results ([`InfillReport`]); the trace events are in
//! `trace.rs`.
//!
//! ```json
//! {"strategy": "top-prob", "steps": 8, "temperature": 0.7, "topK": 0, "topP": 1.0,
//!  "schedule": "loglinear", "blockLength": null, "cfg": 0.0,
//!  "force": [{"hole": 0, "text": "cat"}], "cache": true, "seed": 0, "candidates": 5}
//! ```
//! Every field is optional.
//!
//! ## Ranges
//!
//! Every value is either in range or refused with a message that names the option and the
//! range ([`SamplerOptions::check`], run by [`InfillOptions::resolve`] and again by the sampler
//! on whatever options it is handed). Nothing is clamped.
//!
//! | option | accepted |
//! |---|---|
//! | temperature | 0 (argmax), or [`MIN_TEMPERATURE`] ≤ T ≤ [`MAX_TEMPERATURE`] |
//! | cfg (guidance weight) | 0 (off) ≤ w ≤ [`MAX_CFG`] |
//! | top-p | 0 < p ≤ 1 |
//! | top-k | any; 0 and any k at or above the vocabulary keep every token |
//! | steps | 1 ≤ steps ≤ min([`MAX_STEPS`], [`MAX_STEPS_PER_HOLE`] × max(holes, 1)) |
//! | block length | ≥ 1; one larger than the holes is one block |
//! | candidates | ≤ [`TOP_K`](crate::backend::TOP_K) |
//!
//! Below [`MIN_TEMPERATURE`], `x / T` overflows for ordinary logits (1e-310 makes every score
//! infinite); above [`MAX_TEMPERATURE`] the distribution is uniform for any model; a guidance
//! weight past [`MAX_CFG`] only amplifies noise and overflows f32 logits. The step caps are
//! checked before anything is allocated for the run, and a run's memory does not grow with
//! its steps.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::sampler::{InfillResult, SamplerOptions};
use super::{ScheduleKind, Strategy};
use crate::error::{Error, Result};
use crate::model::Model;

/// The smallest temperature other than 0 (argmax).
pub const MIN_TEMPERATURE: f64 = 1e-3;
/// The largest temperature.
pub const MAX_TEMPERATURE: f64 = 100.0;
/// The largest classifier-free guidance weight.
pub const MAX_CFG: f64 = 100.0;
/// The most steps a fill may ask for, whatever its holes.
pub const MAX_STEPS: usize = 1_000_000;
/// The most steps per hole (`max(holes, 1)`): beyond one commit per step the extra steps commit
/// nothing, and 64 leaves room for fine ancestral schedules.
pub const MAX_STEPS_PER_HOLE: usize = 64;
/// The most steps of a continuous sampler (DDIM, DDPM): Plaid samples with 4096.
pub const MAX_CONTINUOUS_STEPS: usize = 4096;

impl SamplerOptions {
    /// Refuses any value out of range (see the table in the module's documentation), naming the
    /// option. `holes`: the template's holes when known (the per-hole step cap applies then;
    /// before, only [`MAX_STEPS`]).
    pub fn check(&self, holes: Option<usize>) -> Result<()> {
        let c = &self.choice;
        let t = c.temperature;
        if !(t == 0.0 || (MIN_TEMPERATURE..=MAX_TEMPERATURE).contains(&t)) {
            return Err(Error::input(format!(
                "temperature must be 0 (argmax) or between {MIN_TEMPERATURE} and \
                 {MAX_TEMPERATURE}, not {}",
                num(t)
            )));
        }
        if !(c.top_p > 0.0 && c.top_p <= 1.0) {
            return Err(Error::input(format!(
                "top-p must be in (0, 1], not {}",
                num(c.top_p)
            )));
        }
        let w = self.cfg_scale;
        if !(0.0..=MAX_CFG).contains(&w) {
            return Err(Error::input(format!(
                "the guidance weight (cfg) must be between 0 (off) and {MAX_CFG}, not {}",
                num(w)
            )));
        }
        if let Some(steps) = self.steps {
            // a continuous step moves every hole a little, so its count is not per hole
            let continuous = matches!(self.strategy, Strategy::Ddim(_) | Strategy::Ddpm(_));
            let cap = match holes {
                Some(_) if continuous => MAX_CONTINUOUS_STEPS,
                Some(h) => MAX_STEPS.min(MAX_STEPS_PER_HOLE.saturating_mul(h.max(1))),
                None => MAX_STEPS,
            };
            if steps == 0 || steps > cap {
                let per_hole = match holes {
                    Some(_) if continuous => {
                        " (a continuous sampler's most, Plaid's 4096)".to_string()
                    }
                    Some(h) => format!(
                        " ({MAX_STEPS_PER_HOLE} per hole for {h} hole{})",
                        if h == 1 { "" } else { "s" }
                    ),
                    None => String::new(),
                };
                return Err(Error::input(format!(
                    "steps must be between 1 and {cap}{per_hole}, not {steps}"
                )));
            }
        }
        if self.block_len == Some(0) {
            return Err(Error::input("the block length must be at least 1, not 0"));
        }
        if self.candidates > crate::backend::TOP_K {
            return Err(Error::input(format!(
                "candidates: {} is more than the {} a step keeps per position",
                self.candidates,
                crate::backend::TOP_K
            )));
        }
        Ok(())
    }
}

/// A number as a message shows it: `1e-310` and `1e308` rather than hundreds of digits.
fn num(x: f64) -> String {
    if x == 0.0 || !x.is_finite() || (1e-4..1e16).contains(&x.abs()) {
        x.to_string()
    } else {
        format!("{x:e}")
    }
}

/// A token fixed before sampling starts: hole number (from 0) and its text, one token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Force {
    pub hole: usize,
    pub text: String,
}

impl FromStr for Force {
    type Err = Error;
    /// `HOLE=TEXT`, the CLI's `--force`.
    fn from_str(spec: &str) -> Result<Force> {
        let bad = |why: String| Error::input(format!("force {spec}: {why}"));
        let (hole, text) = spec
            .split_once('=')
            .ok_or_else(|| bad("expected HOLE=TEXT".into()))?;
        let hole = hole
            .trim()
            .parse()
            .map_err(|_| bad(format!("`{hole}` is not a hole number")))?;
        Ok(Force {
            hole,
            text: text.to_string(),
        })
    }
}

impl fmt::Display for Force {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}={}", self.hole, self.text)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct InfillOptions {
    /// Default: top-prob for every model (chosen by `unmask eval --spans`, docs/quality.md).
    pub strategy: Option<Strategy>,
    /// Denoising steps. Default: one per hole; Mask-Predict: 10 iterations. At most
    /// [`MAX_STEPS_PER_HOLE`] per hole and [`MAX_STEPS`].
    pub steps: Option<usize>,
    /// 0 = argmax, else in [[`MIN_TEMPERATURE`], [`MAX_TEMPERATURE`]]. Default: 1 for ancestral and first-hitting on MDLM, 0 for the ranking
    /// strategies (as LLaDA) and for MLMs.
    pub temperature: Option<f64>,
    /// Keep only the k most likely tokens (0, or any k at or above the vocabulary = all).
    pub top_k: usize,
    /// Nucleus sampling: keep the most likely tokens up to this mass, in (0, 1].
    pub top_p: f64,
    /// `loglinear` (default), `cosine` or `linear`.
    pub schedule: ScheduleKind,
    /// Semi-autoregressive blocks of this many holes, filled left to right.
    pub block_length: Option<usize>,
    /// Classifier-free guidance weight (0 = off), at most [`MAX_CFG`].
    pub cfg: f64,
    pub force: Vec<Force>,
    /// Skip the forward pass when nothing changed since the last one.
    pub cache: bool,
    /// Fast-dLLM's DualCache: while a block of holes is decoded, reuse the keys and values of
    /// the rest of the canvas from the block's first pass (LLaDA, Dream, Qwen3 A2D on the CPU;
    /// elsewhere every pass runs the whole canvas). Fewer FLOPs per step; fills may differ.
    pub dual_cache: bool,
    pub seed: u64,
    /// Report this many of each committed position's most likely tokens in its step event
    /// (at most 16; default none).
    pub candidates: Option<usize>,
    /// With `candidates`: also report, in each step event, the candidates of every position the
    /// step predicted but left masked (`pending`), for views that scrub through the steps.
    pub pending: bool,
    /// On a model that grows holes (DreamOn): the length each hole of unknown length starts
    /// at, clamped into its range. Default: DreamOn's 4.
    pub hole_start: Option<usize>,
}

impl Default for InfillOptions {
    fn default() -> Self {
        InfillOptions {
            strategy: None,
            steps: None,
            temperature: None,
            top_k: 0,
            top_p: 1.0,
            schedule: ScheduleKind::LogLinear,
            block_length: None,
            cfg: 0.0,
            force: Vec::new(),
            cache: true,
            dual_cache: false,
            seed: 0,
            candidates: None,
            pending: false,
            hole_start: None,
        }
    }
}

impl InfillOptions {
    /// The sampler's options for `model`: the model's defaults, the strategy's defaults, then
    /// what was asked; forced text becomes token ids through the model's tokenizer.
    pub fn resolve(&self, model: &Model) -> Result<SamplerOptions> {
        let mut o = SamplerOptions::default();
        let s = self
            .strategy
            .unwrap_or_else(|| Strategy::default_for(model.spec.family));
        o.strategy = s;
        // ranking strategies are greedy by default, as in LLaDA; the samplers of the MDLM
        // objective draw at temperature 1 on its "subs" models (MLMs stay greedy), and so do
        // the uniform-state and SEDD samplers, whose posteriors are the model's distribution
        let subs = model.spec.logits == crate::model::LogitReading::Subs;
        o.choice.temperature = match s {
            Strategy::Ancestral | Strategy::FirstHitting | Strategy::Remdm(_) if subs => 1.0,
            Strategy::Uniform | Strategy::Psi(_) | Strategy::SeddEuler | Strategy::SeddAnalytic => {
                1.0
            }
            _ => 0.0,
        };
        if let Some(t) = self.temperature {
            o.choice.temperature = t;
        }
        o.choice.top_k = self.top_k;
        o.choice.top_p = self.top_p;
        o.steps = self.steps;
        o.schedule = self.schedule.schedule();
        o.block_len = self.block_length;
        o.position_blocks = model.spec.attention_blocks;
        if let (Some(n), Some(_)) = (o.position_blocks, o.block_len) {
            return Err(Error::input(format!(
                "blockLength: this block-diffusion model (BD3LM) fills its own blocks of {n} positions, left to right; leave the block length out"
            )));
        }
        o.cfg_scale = self.cfg;
        o.cache = self.cache;
        // block diffusion reuses its finished blocks' keys and values always: exactly
        o.dual_cache = self.dual_cache || model.spec.attention_blocks.is_some();
        o.seed = self.seed;
        o.candidates = self.candidates.unwrap_or(0);
        o.pending = self.pending;
        o.hole_start = match self.hole_start {
            Some(0) => {
                return Err(Error::input(
                    "holeStart: a hole starts at 1 token or more, not 0",
                ))
            }
            n => n,
        };
        if o.pending && o.candidates == 0 {
            return Err(Error::input(
                "pending: lists candidates, so it needs candidates of at least 1",
            ));
        }
        o.check(None)?;
        o.forced = self
            .force
            .iter()
            .map(|f| force_id(model, f))
            .collect::<Result<_>>()?;
        Ok(o)
    }
}

/// A forced token's id; its text must be exactly one token.
fn force_id(model: &Model, f: &Force) -> Result<(usize, u32)> {
    let tok = model
        .tokenizer
        .as_ref()
        .ok_or_else(|| Error::input("forcing a token needs the model's tokenizer.json"))?;
    let ids = tok.encode(&f.text, false)?;
    match ids.as_slice() {
        [id] => Ok((f.hole, *id)),
        _ => Err(Error::input(format!(
            "force {f}: `{}` is {} tokens, not one",
            f.text,
            ids.len()
        ))),
    }
}

/// What a fill reports: the result and the options that decide it (`unmask infill --json`).
#[derive(Clone, Debug, Serialize)]
pub struct InfillReport<'a> {
    #[serde(flatten)]
    pub result: &'a InfillResult,
    pub strategy: Strategy,
    pub seed: u64,
    /// The fill's forward FLOPs, in billions (`Plan::flops`, `Plan::flops_span`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gflops: Option<f64>,
}

impl Serialize for Strategy {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Strategy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Strategy, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_shape_round_trips_and_rejects_unknown_fields() {
        let o: InfillOptions = serde_json::from_str(
            r#"{"strategy":"threshold:0.8","topK":5,"force":[{"hole":1,"text":"cat"}]}"#,
        )
        .unwrap();
        assert_eq!(o.strategy, Some(Strategy::Threshold(0.8)));
        assert_eq!((o.top_k, o.top_p, o.cache), (5, 1.0, true));
        assert_eq!(o.force[0].to_string(), "1=cat");
        let back: InfillOptions =
            serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        assert_eq!(back, o);
        let e = serde_json::from_str::<InfillOptions>(r#"{"top_k":5}"#).unwrap_err();
        assert!(e.to_string().contains("top_k"), "{e}");
        let e = serde_json::from_str::<InfillOptions>(r#"{"strategy":"fast"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown strategy"), "{e}");
    }

    #[test]
    fn force_specs() {
        assert_eq!(
            "2=the".parse::<Force>().unwrap(),
            Force {
                hole: 2,
                text: "the".into()
            }
        );
        let e = "x=the".parse::<Force>().unwrap_err().to_string();
        assert!(e.contains("not a hole number"), "{e}");
        let e = "the".parse::<Force>().unwrap_err().to_string();
        assert!(e.contains("HOLE=TEXT"), "{e}");
    }
}
