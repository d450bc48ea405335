//! The infill loop: template → canvas → repeated denoising steps → filled text, with a trace
//! event per step. One forward pass per step over the whole canvas, the head only on the rows
//! that are still masked, and no forward at all when the canvas has not changed since the last
//! one and the model ignores time (MDLM's `_ddpm_caching_update`, kuleshov-group/mdlm@c112c526d1).

use std::collections::HashMap;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use web_time::Instant;

use super::lengths::{
    bound_passes, bound_term, combinations, rank_key, LengthCandidate, LengthsEvent,
};
use super::proposal::{finish_with_row, finish_with_tail, propose_from_summary};
use super::proposal::{propose_with_row, FromSummary};
use super::proposal::{Proposal, TokenChoice};
use super::schedule::Schedule;
use super::strategy::{remask_count, top_k, transfer_counts, Strategy};
use super::trace::{BlockSpan, Candidate, Commit, DoneEvent, Pending, StepEvent, TraceEvent};
use crate::backend::summarize_rows;
use crate::backend::{Ask, CachePass, Denoiser, Summaries};
use crate::batch::{Batch, Row};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::text::{Canvas, Template, Tokenizer};

mod continuous;
mod expand;
mod resample;

#[derive(Clone, Debug)]
pub struct SamplerOptions {
    pub strategy: Strategy,
    /// Denoising steps (per the whole fill; split evenly over blocks). `None`: one per hole for
    /// the step-based strategies, 10 iterations for Mask-Predict, and as many as its
    /// confidences need for threshold. For threshold, a number is a budget: each step commits
    /// at least what finishes in it. First-hitting sets its own step count.
    pub steps: Option<usize>,
    pub schedule: Schedule,
    /// Semi-autoregressive blocks: fill the holes `block_len` at a time, left to right.
    pub block_len: Option<usize>,
    /// Block diffusion (BD3LM, the model's `attention_blocks`): the blocks are the model's own,
    /// `n` positions each from position 0, and each is finished before the next, since the
    /// block-causal attention lets no block see a later one.
    pub position_blocks: Option<usize>,
    pub choice: TokenChoice,
    pub seed: u64,
    /// Classifier-free guidance weight w: `un + (w + 1)·(cond − un)`, where `un` sees the known
    /// text masked. 0 disables it.
    pub cfg_scale: f64,
    /// `(hole index, token id)`: tokens fixed before sampling starts.
    pub forced: Vec<(usize, u32)>,
    /// Skip the forward pass when nothing changed (time-agnostic models only).
    pub cache: bool,
    /// Fast-dLLM's DualCache: within a block, keep the keys and values of the rest of the
    /// canvas from the block's first pass and compute only the block's span (an approximation;
    /// `InfillOptions::resolve` sets it for block diffusion, where it is exact).
    pub dual_cache: bool,
    /// Report this many of each committed position's most likely tokens in its trace event
    /// (at most [`TOP_K`](crate::backend::TOP_K); 0: none).
    pub candidates: usize,
    /// With `candidates`: also list the candidates of the positions a step predicted but left
    /// masked.
    pub pending: bool,
    /// On a model that grows holes (`diffusion::expand`): the length each hole of unknown
    /// length starts at, clamped into its range (`None`: DreamOn's 4).
    pub hole_start: Option<usize>,
}

impl Default for SamplerOptions {
    /// The defaults, chosen by measurement (`unmask eval --spans`, docs/quality.md), the same for
    /// every family: the most confident proposal first, greedily, one token per step. On the
    /// first default MDLM's held-out books (2000 two-word spans) that fills 15.8% of words right,
    /// where ancestral sampling at temperature 1, the faithful sampler of the MDLM objective
    /// (`_ddpm_update` in mdlm's diffusion.py), fills 7.6%. MLMs and LLaDA used it already.
    /// (What depends on the model, the temperature of ancestral sampling on MDLM, is applied
    /// by `InfillOptions::resolve`.)
    fn default() -> SamplerOptions {
        SamplerOptions {
            strategy: Strategy::TopProb,
            steps: None,
            schedule: Schedule::default(),
            block_len: None,
            position_blocks: None,
            choice: TokenChoice {
                temperature: 0.0,
                ..TokenChoice::default()
            },
            seed: 0,
            cfg_scale: 0.0,
            forced: Vec::new(),
            cache: true,
            dual_cache: false,
            candidates: 0,
            pending: false,
            hole_start: None,
        }
    }
}

impl SamplerOptions {
    /// The steps each semi-autoregressive block of a canvas with `holes` holes takes, left to
    /// right (0: as many as the block needs, for first-hitting, threshold without a step count
    /// and Mask-Predict, which ignores blocks). Without a step count a block takes one step per
    /// hole, so blocks of unequal size (`[MASK*5]` in blocks of 3) need no care; a step count
    /// is split evenly over the blocks, and one that cannot be is refused naming the values
    /// the caller gave.
    pub fn block_steps(&self, holes: &[usize]) -> Result<Vec<usize>> {
        let sizes: Vec<usize> = self.hole_blocks(holes).iter().map(Vec::len).collect();
        let n = sizes.len();
        let (b, holes) = (self.block_len.unwrap_or(holes.len()).max(1), holes.len());
        match (self.strategy, self.steps) {
            (Strategy::FirstHitting | Strategy::MaskPredict, _)
            | (Strategy::Threshold(_) | Strategy::EntropyBound(_), None) => Ok(vec![0; n]),
            (_, None) => Ok(sizes),
            (_, Some(steps)) if n > 0 && !steps.is_multiple_of(n) => {
                let blocks = match self.position_blocks {
                    Some(p) => format!("the model's blocks of {p} positions"),
                    None => format!("block length {b}"),
                };
                Err(Error::input(format!(
                    "{steps} steps cannot be split evenly over {n} blocks ({blocks} over \
                     {holes} holes); use a multiple of {n}, or leave the steps out for one per hole"
                )))
            }
            (_, Some(steps)) => Ok(vec![steps / n.max(1); n]),
        }
    }

    /// The hole positions (ascending) of each block, left to right: the model's own blocks of
    /// positions for block diffusion, else runs of `block_len` holes (all in one without it).
    pub fn hole_blocks(&self, holes: &[usize]) -> Vec<Vec<usize>> {
        match self.position_blocks {
            Some(n) => {
                let mut out: Vec<Vec<usize>> = Vec::new();
                for &p in holes {
                    match out.last_mut() {
                        Some(last) if last[0] / n == p / n => last.push(p),
                        _ => out.push(vec![p]),
                    }
                }
                out
            }
            None => {
                let b = self.block_len.unwrap_or(holes.len()).max(1);
                holes.chunks(b).map(|c| c.to_vec()).collect()
            }
        }
    }
}

/// A finished fill. Serialised as `{"text", "holes", "steps", "nfe", "ms"}`, plus `lengths`
/// for a template with holes of unknown length.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InfillResult {
    pub text: String,
    /// The whole canvas, frame included.
    #[serde(skip)]
    pub ids: Vec<u32>,
    pub holes: usize,
    pub steps: usize,
    pub nfe: usize,
    pub ms: f64,
    /// With holes of unknown length: every fill tried, with its score (`diffusion::lengths`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lengths: Vec<LengthCandidate>,
    /// On a model that grows holes: each hole of unknown length's final length, in template
    /// order (`diffusion::expand`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hole_lengths: Vec<usize>,
}

/// The surface a fill runs for: it sees every trace event and, before each step's denoising
/// (a forward pass, or the cached one), may pause (a browser yields to its event loop there, so a page stays responsive and an
/// `AbortSignal` can be observed) or stop the run with an error such as [`Error::Aborted`].
///
/// Any `FnMut(&TraceEvent)` closure is a host that never pauses.
#[allow(async_fn_in_trait)] // driven on the caller's own thread, like the Denoiser
pub trait Host {
    fn event(&mut self, event: &TraceEvent);

    async fn before_pass(&mut self) -> Result<()> {
        Ok(())
    }

    /// For a template with holes of unknown length: `done` of its `total` candidate fills are
    /// filled and scored (a progress bar can move between them).
    fn tried(&mut self, _done: usize, _total: usize) {}
}

impl<F: FnMut(&TraceEvent) + ?Sized> Host for F {
    fn event(&mut self, event: &TraceEvent) {
        self(event)
    }
}

/// A model and a denoiser ready to fill templates. `D` is the backend: the sampler only ever
/// talks to it through [`Denoiser`].
pub struct Infiller<D> {
    pub model: Model,
    /// The mask token id, resolved once (through the tokenizer for models that name it by text).
    pub mask: u32,
    /// Tokens a proposal may use: never the mask, special tokens or rows past the tokenizer.
    pub allowed: Vec<bool>,
    pub denoiser: D,
}

impl<D: Denoiser> Infiller<D> {
    pub fn new(model: Model, denoiser: D) -> Result<Infiller<D>> {
        let tok = model.tokenizer.as_ref().ok_or_else(|| {
            Error::input(
                "infilling needs the model folder's tokenizer.json, which is missing".to_string(),
            )
        })?;
        let v = model.spec.vocab_size;
        let mut allowed: Vec<bool> = (0..v).map(|i| i < tok.vocab_size()).collect();
        for id in tok.special_ids() {
            if (id as usize) < v {
                allowed[id as usize] = false;
            }
        }
        // with the tokenizer present, a mask named by text resolves or is an error already
        let mask = match model.mask_id()? {
            Some(mask) => {
                if let Some(a) = allowed.get_mut(mask as usize) {
                    *a = false;
                }
                mask
            }
            // a uniform-state model has no mask state: its holes are written with noise at
            // step 0, before any pass, so the canvas only needs some id in range to lay out
            None if model.spec.family != crate::model::Family::Absorbing => 0,
            None => {
                return Err(Error::input(
                    "the model names no mask token, so it cannot fill holes",
                ))
            }
        };
        if !allowed.iter().any(|&a| a) {
            return Err(Error::input(
                "the model's vocabulary has no ordinary tokens to propose",
            ));
        }
        Ok(Infiller {
            model,
            mask,
            allowed,
            denoiser,
        })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        self.model
            .tokenizer
            .as_ref()
            .expect("checked in Infiller::new")
    }

    /// Parses a template as this model reads it (its own mask string is a hole too).
    pub fn template(&self, template: &str) -> Result<Template> {
        Template::parse(template, self.model.mask_text().as_deref())
    }

    /// Parses a template and lays out its canvas.
    pub fn canvas(&self, template: &str) -> Result<Canvas> {
        self.canvas_of(&self.template(template)?)
    }

    /// Lays out the canvas of a parsed template (one without holes of unknown length).
    pub fn canvas_of(&self, t: &Template) -> Result<Canvas> {
        let m = &self.model;
        Canvas::build(
            t,
            self.tokenizer(),
            m.spec.canvas,
            self.mask,
            m.spec.max_len,
            m.spec.max_len_field,
        )
    }

    /// Fills a template; `on_event` sees every step and the final `done` event.
    pub async fn infill(
        &mut self,
        template: &str,
        opts: &SamplerOptions,
        on_event: &mut dyn FnMut(&TraceEvent),
    ) -> Result<InfillResult> {
        self.infill_with(template, opts, on_event).await
    }

    /// [`infill`](Infiller::infill) for a [`Host`] that may also pause or stop the run.
    pub async fn infill_with<H: Host + ?Sized>(
        &mut self,
        template: &str,
        opts: &SamplerOptions,
        host: &mut H,
    ) -> Result<InfillResult> {
        let t = self.template(template)?;
        if !t.ranges().is_empty() {
            if self.model.growth().is_some() {
                return self.fill_growing(&t, opts, host).await;
            }
            return self.fill_lengths(&t, opts, host).await;
        }
        let canvas = self.canvas_of(&t)?;
        self.run_with(&canvas, opts, host).await
    }

    /// Runs the sampler on a prepared canvas.
    pub async fn run(
        &mut self,
        canvas: &Canvas,
        opts: &SamplerOptions,
        on_event: &mut dyn FnMut(&TraceEvent),
    ) -> Result<InfillResult> {
        self.run_with(canvas, opts, on_event).await
    }

    /// [`run`](Infiller::run) for a [`Host`].
    pub async fn run_with<H: Host + ?Sized>(
        &mut self,
        canvas: &Canvas,
        opts: &SamplerOptions,
        host: &mut H,
    ) -> Result<InfillResult> {
        let t0 = Instant::now();
        // the canvas's ids against the model; σ is the sampler's own (positive) at every pass
        let mut batch = Batch::single(canvas.ids.clone());
        batch.sigma = Some(vec![1.0]);
        self.model.check(&batch)?;
        let mut run = Run::new(self, canvas, opts, host)?;
        run.forced()?;
        let family = run.inf.model.spec.family;
        if !opts.strategy.family_fits(family) {
            return Err(Error::input(format!(
                "strategy `{}` does not sample a {} model; use {}",
                opts.strategy,
                family.describe(),
                Strategy::ALL
                    .iter()
                    .filter(|s| s
                        .name
                        .parse::<Strategy>()
                        .is_ok_and(|x| x.family_fits(family)))
                    .map(|s| s.usage)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        match opts.strategy {
            Strategy::MaskPredict => run.mask_predict().await?,
            Strategy::Uniform => run.uniform(1.0).await?,
            Strategy::Psi(kappa) => run.uniform(kappa).await?,
            Strategy::Remdm(eta) => run.remdm(eta).await?,
            Strategy::SeddEuler => run.sedd(false).await?,
            Strategy::SeddAnalytic => run.sedd(true).await?,
            Strategy::Ddim(round) => run.continuous(false, round).await?,
            Strategy::Ddpm(round) => run.continuous(true, round).await?,
            _ => run.absorbing().await?,
        }
        let text = canvas.text(&run.ids, run.inf.tokenizer())?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let result = InfillResult {
            text: text.clone(),
            ids: run.ids.clone(),
            holes: canvas.holes.len(),
            steps: run.step,
            nfe: run.nfe,
            ms,
            lengths: Vec::new(),
            hole_lengths: Vec::new(),
        };
        run.host.event(&TraceEvent::Done(DoneEvent {
            done: true,
            text,
            steps: run.step,
            nfe: run.nfe,
            ms,
        }));
        Ok(result)
    }
}

/// Passes a candidate fill's events into a buffer (the winner's are replayed), its pauses to
/// the host.
struct Buffered<'h, H: ?Sized> {
    host: &'h mut H,
    events: Vec<TraceEvent>,
}

impl<H: Host + ?Sized> Host for Buffered<'_, H> {
    fn event(&mut self, event: &TraceEvent) {
        if !matches!(event, TraceEvent::Done(_)) {
            self.events.push(event.clone());
        }
    }

    async fn before_pass(&mut self) -> Result<()> {
        self.host.before_pass().await
    }
}

impl<D: Denoiser> Infiller<D> {
    /// Fills `template` once per combination of its unknown lengths and returns the best by
    /// the bound of `diffusion::lengths`, with every candidate in `lengths`.
    async fn fill_lengths<H: Host + ?Sized>(
        &mut self,
        template: &Template,
        opts: &SamplerOptions,
        host: &mut H,
    ) -> Result<InfillResult> {
        if !opts.forced.is_empty() {
            return Err(Error::input(
                "forced tokens name holes by number, which a hole of unknown length leaves \
                 undecided: give the holes fixed lengths ([MASK*N]) to force tokens",
            ));
        }
        template.check_fills()?;
        let t0 = Instant::now();
        let fills = self.length_canvases(template, opts)?;
        let mut candidates: Vec<LengthCandidate> = Vec::new();
        // the best so far: its index, result and step events
        let mut best: Option<(usize, InfillResult, Vec<TraceEvent>)> = None;
        let mut nfe = 0;
        let total = fills.len();
        for (k, (lengths, canvas)) in fills.into_iter().enumerate() {
            let mut buf = Buffered {
                host: &mut *host,
                events: Vec::new(),
            };
            let r = self.run_with(&canvas, opts, &mut buf).await?;
            let events = buf.events;
            let nats = self.bound(&r.ids, &canvas.holes, opts.seed, host).await?;
            let n = canvas.holes.len();
            nfe += r.nfe + n;
            let candidate = LengthCandidate {
                lengths,
                text: r.text.clone(),
                tokens: n,
                nats,
                nats_per_token: nats / n as f64,
                nfe: r.nfe + n,
                chosen: false,
            };
            let better = best
                .as_ref()
                .is_none_or(|(b, _, _)| rank_key(&candidate) < rank_key(&candidates[*b]));
            candidates.push(candidate);
            if better {
                best = Some((candidates.len() - 1, r, events));
            }
            host.tried(k + 1, total);
        }
        let (k, mut result, events) = best.expect("a template has at least one combination");
        candidates[k].chosen = true;
        for e in &events {
            host.event(e);
        }
        host.event(&TraceEvent::Lengths(LengthsEvent {
            lengths: candidates.clone(),
        }));
        result.nfe = nfe;
        result.ms = t0.elapsed().as_secs_f64() * 1e3;
        host.event(&TraceEvent::Done(DoneEvent {
            done: true,
            text: result.text.clone(),
            steps: result.steps,
            nfe,
            ms: result.ms,
        }));
        result.lengths = candidates;
        Ok(result)
    }

    /// The canvas of every combination of lengths the options suit, laid out before any is
    /// filled. A combination that overflows the context is an error naming the holes of
    /// unknown length, the lengths at fault and (for one range) the lengths that fit; one
    /// whose holes the options do not suit (a step count over its per-hole cap, or not split
    /// evenly over its blocks) is left out, and when none is left the error names the step
    /// count, the block length and the ranges as the caller wrote them.
    fn length_canvases(
        &self,
        template: &Template,
        opts: &SamplerOptions,
    ) -> Result<Vec<(Vec<usize>, Canvas)>> {
        let ranges = template.ranges();
        let names = template.range_names();
        let at = |lengths: &[usize]| -> String {
            names
                .iter()
                .zip(lengths)
                .map(|(name, n)| format!("{name} at {n} token{}", if *n == 1 { "" } else { "s" }))
                .collect::<Vec<_>>()
                .join(" and ")
        };
        let mut out = Vec::new();
        // why the first unsuited combination was left out
        let mut unsuited: Option<(Vec<usize>, Error)> = None;
        for lengths in combinations(&ranges) {
            let canvas = match self.canvas_of(&template.with_lengths(&lengths)) {
                Ok(c) => c,
                Err(Error::Template(m)) => {
                    let fits = match (ranges.as_slice(), lengths.as_slice()) {
                        ([(min, _)], [n]) if n > min => {
                            format!("; it fits at {min} to {} here: narrow the range", n - 1)
                        }
                        _ => String::new(),
                    };
                    return Err(Error::template(format!("with {}: {m}{fits}", at(&lengths))));
                }
                Err(e) => return Err(e),
            };
            let holes = canvas.holes.len();
            match opts.check(Some(holes)).and(opts.block_steps(&canvas.holes)) {
                Ok(_) => out.push((lengths, canvas)),
                Err(e) => {
                    unsuited.get_or_insert((lengths, e));
                }
            }
        }
        if out.is_empty() {
            let (lengths, e) = unsuited.expect("a template has at least one combination");
            let why = match e {
                Error::Input(m) => m,
                e => e.to_string(),
            };
            let given = match (opts.steps, opts.block_len) {
                (Some(s), Some(b)) => format!("steps {s} with block length {b}"),
                (Some(s), None) => format!("steps {s}"),
                (None, Some(b)) => format!("block length {b}"),
                (None, None) => "these options".to_string(),
            };
            let lengths: Vec<String> = lengths.iter().map(usize::to_string).collect();
            let first = match lengths.as_slice() {
                [n] => format!("at {n} token{}", if n == "1" { "" } else { "s" }),
                more => format!("at lengths {}", more.join(", ")),
            };
            return Err(Error::input(format!(
                "{given} suit no length of {}: {first}, {why}",
                names.join(" and "),
            )));
        }
        Ok(out)
    }

    /// The bound of `diffusion::lengths` for the hole tokens of a filled canvas: one pass per
    /// hole token.
    pub async fn bound<H: Host + ?Sized>(
        &mut self,
        ids: &[u32],
        holes: &[usize],
        seed: u64,
        host: &mut H,
    ) -> Result<f64> {
        let mask = self.mask;
        let v = self.model.spec.vocab_size;
        let family = self.model.spec.family;
        if matches!(family, crate::model::Family::Score { .. }) {
            return Err(Error::input(
                "holes of unknown length are ranked by a denoising bound that SEDD (score) \
                 models do not give yet; give each hole a length",
            ));
        }
        let mut total = 0.0;
        for (mut canvas, masked, t) in bound_passes(ids, holes, seed, mask) {
            if family == crate::model::Family::Uniform {
                // the family's own corruption: the passes' positions hold hashed uniform noise
                // (the model cannot tell them from the fill), the same denoising score otherwise
                for &p in &masked {
                    canvas[p] = (super::seeded::hash3(seed, p as u64, 5) % v as u64) as u32;
                }
            }
            let sigma = if self.model.spec.time_conditioning {
                Schedule::default().sigma(t) as f32
            } else {
                0.0
            };
            host.before_pass().await?;
            let rows = self.model.spec.logit_rows(&masked);
            let logits = self
                .denoiser
                .logits(&Row::plain(&canvas, sigma), &rows)
                .await?;
            total += bound_term(&logits, v, &self.allowed, &masked, ids)?;
        }
        Ok(total)
    }
}

/// One pass's summaries of `rows`, for the canvas as it was then.
struct Cached {
    rows: Vec<usize>,
    probes: Vec<u32>,
    /// which rows' device tail draw a proposal has taken: one draw serves one proposal
    tails_used: Vec<bool>,
    summaries: Summaries,
}

/// The state of one fill.
struct Run<'a, D, H: ?Sized> {
    inf: &'a mut Infiller<D>,
    canvas: &'a Canvas,
    opts: &'a SamplerOptions,
    /// `opts.choice`, with a top-k that keeps the whole vocabulary written as 0
    choice: TokenChoice,
    host: &'a mut H,
    ids: Vec<u32>,
    /// still masked, in canvas order
    masked: Vec<usize>,
    rng: ChaCha8Rng,
    nfe: usize,
    step: usize,
    /// the last pass, reused while the canvas has not changed (time-agnostic models only)
    cache: Option<Cached>,
    dirty: bool,
    /// the output rows of the current block, when its passes go through the key/value cache
    kv_span: Option<(usize, usize)>,
    /// the next pass is the block's first: it refreshes the key/value cache
    kv_fresh: bool,
    /// block diffusion: the model's block of positions being decoded, for the trace
    block: Option<BlockSpan>,
    /// with `candidates` > 0: the last proposal's most likely (token, p) per position
    candidates: HashMap<usize, Vec<(u32, f64)>>,
    /// [`PROBES`](crate::backend::PROBES) ids per row whose logits the next pass returns
    /// exactly (the uniform-state step's current and prior tokens); empty elsewhere
    probes: Vec<u32>,
}

impl<'a, D: Denoiser, H: Host + ?Sized> Run<'a, D, H> {
    fn new(
        inf: &'a mut Infiller<D>,
        canvas: &'a Canvas,
        opts: &'a SamplerOptions,
        host: &'a mut H,
    ) -> Result<Run<'a, D, H>> {
        // the ranges of options.rs, before anything is allocated for the run
        opts.check(Some(canvas.holes.len()))?;
        let mut choice = opts.choice;
        if choice.top_k >= inf.model.spec.vocab_size {
            choice.top_k = 0; // keeps every token, and the candidates can decide the draw
        }
        Ok(Run {
            choice,
            inf,
            canvas,
            opts,
            host,
            ids: canvas.ids.clone(),
            masked: canvas.holes.clone(),
            rng: ChaCha8Rng::seed_from_u64(opts.seed),
            nfe: 0,
            step: 0,
            cache: None,
            kv_span: None,
            kv_fresh: false,
            block: None,
            dirty: true,
            candidates: HashMap::new(),
            probes: Vec::new(),
        })
    }

    /// Commits the forced tokens as step 0.
    fn forced(&mut self) -> Result<()> {
        if self.opts.forced.is_empty() {
            return Ok(());
        }
        let holes = &self.canvas.holes;
        let mut committed = Vec::new();
        for &(k, id) in &self.opts.forced {
            let pos = *holes.get(k).ok_or_else(|| {
                Error::input(format!(
                    "forced token for hole {k}, but the template has {} holes (numbered from 0)",
                    holes.len()
                ))
            })?;
            if id as usize >= self.inf.model.spec.vocab_size || id == self.inf.mask {
                return Err(Error::input(format!(
                    "forced token id {id} for hole {k} is not a token the model can hold"
                )));
            }
            committed.push((pos, id, 1.0));
        }
        self.commit(committed, 1.0, Vec::new());
        Ok(())
    }

    fn time_conditioned(&self) -> bool {
        self.inf.model.spec.time_conditioning
    }

    /// Summaries of `rows` for the current canvas at time t, left in `self.cache`: the last
    /// pass's when still valid, else a new pass's. With guidance the two passes' logits are
    /// combined on the host and reduced there.
    async fn summaries(&mut self, rows: &[usize], t: f64) -> Result<()> {
        self.host.before_pass().await?;
        let reuse = self.opts.cache && !self.dirty && !self.time_conditioned();
        if reuse
            && self
                .cache
                .as_ref()
                .is_some_and(|c| c.rows == rows && c.probes == self.probes)
        {
            return Ok(());
        }
        let sigma = if self.time_conditioned() {
            self.opts.schedule.sigma(t) as f32
        } else {
            0.0
        };
        let temperature = self.opts.choice.temperature;
        // An unfiltered draw that falls past the candidates takes the device's draw from the
        // tail, seeded per pass from the run's seed (no draw from the run's generator, so the
        // CPU path, which inverts whole rows, draws the same numbers as before).
        let c = self.choice;
        let tail_seed = (c.temperature > 0.0 && c.top_k == 0 && c.top_p >= 1.0)
            .then(|| pass_seed(self.opts.seed, self.nfe));
        // the output rows that predict these positions (Dream's: one before each)
        let out_rows = self.inf.model.spec.logit_rows(rows);
        // the block's first pass refreshes the key/value cache, its others run the block's span
        let cache = self.kv_span.map(|(start, end)| {
            if self.kv_fresh {
                CachePass::Refresh
            } else {
                CachePass::Span { start, end }
            }
        });
        // Guidance reads the rows' logits and reduces them on the host; so does a guidance
        // weight without known text to mask, which needs only the one pass.
        let summaries = if self.opts.cfg_scale > 0.0 {
            let d = &mut self.inf.denoiser;
            let mut logits = d.logits(&Row::plain(&self.ids, sigma), &out_rows).await?;
            self.nfe += 1;
            if !self.canvas.known.is_empty() {
                let mask = self.canvas.mask_id;
                let mut un_ids = self.ids.clone();
                for &k in &self.canvas.known {
                    un_ids[k] = mask;
                }
                let un = d.logits(&Row::plain(&un_ids, sigma), &out_rows).await?;
                self.nfe += 1;
                let w = self.opts.cfg_scale as f32;
                for (c, u) in logits.iter_mut().zip(&un) {
                    *c = u + (w + 1.0) * (*c - u);
                }
            }
            let v = self.inf.model.spec.vocab_size;
            Summaries {
                rows: summarize_rows(&logits, v, &self.inf.allowed, temperature, &self.probes),
                logits: Some(Arc::new(logits)),
            }
        } else {
            let inf = &mut *self.inf;
            let s = inf
                .denoiser
                .summaries(
                    &Row::plain(&self.ids, sigma),
                    &out_rows,
                    &Ask {
                        probes: &self.probes,
                        tail_seed,
                        cache,
                    },
                    &inf.allowed,
                    temperature,
                )
                .await?;
            self.nfe += 1;
            s
        };
        // once per pass: no token is chosen from a row the model gave non-finite scores
        if let Some(k) = summaries.rows.iter().position(|s| !s.is_finite()) {
            return Err(Error::NonFinite {
                step: self.step,
                row: rows[k],
            });
        }
        self.dirty = false;
        self.kv_fresh = false;
        self.cache = Some(Cached {
            rows: rows.to_vec(),
            probes: self.probes.clone(),
            tails_used: vec![false; rows.len()],
            summaries,
        });
        Ok(())
    }

    /// Proposals for `rows` at time t: each drawn from its row's summary, with the row's logits
    /// when they are on the host, or fetched from the denoiser when the draw needs its tail.
    async fn propose_rows(&mut self, rows: &[usize], t: f64) -> Result<Vec<Proposal>> {
        self.summaries(rows, t).await?;
        // taken out while this step's draws use it (the tail may call the denoiser), then put back
        let mut cached = self
            .cache
            .take()
            .expect("summaries() leaves the pass in the cache");
        let out = self
            .propose_from(&cached.summaries, &mut cached.tails_used, rows)
            .await;
        self.cache = Some(cached);
        out
    }

    async fn propose_from(
        &mut self,
        sums: &Summaries,
        tails_used: &mut [bool],
        rows: &[usize],
    ) -> Result<Vec<Proposal>> {
        let choice = self.choice;
        self.candidates.clear();
        if self.opts.candidates > 0 {
            for (s, &pos) in sums.rows.iter().zip(rows) {
                let top = s.top.iter().take(self.opts.candidates);
                let top = top.map(|&(id, x)| (id, (x as f64 - s.lse).exp())).collect();
                self.candidates.insert(pos, top);
            }
        }
        let v = self.inf.model.spec.vocab_size;
        let mut out = Vec::with_capacity(rows.len());
        for (k, s) in sums.rows.iter().enumerate() {
            let allowed = &self.inf.allowed;
            let p = match &sums.logits {
                Some(l) => {
                    propose_with_row(s, &l[k * v..(k + 1) * v], allowed, &choice, &mut self.rng)?
                }
                None => match propose_from_summary(s, &choice, &mut self.rng)? {
                    FromSummary::Done(p) => p,
                    // the device's tail draw, once per pass: a pass reused for a second
                    // proposal of the row reads the row instead
                    FromSummary::Tail if s.tail.is_some() && !tails_used[k] => {
                        tails_used[k] = true;
                        finish_with_tail(s, s.tail.expect("checked"))?
                    }
                    need => {
                        let row = self.inf.denoiser.last_row_logits(k).await?;
                        finish_with_row(s, need, &row, &self.inf.allowed, &choice, &mut self.rng)?
                    }
                },
            };
            out.push(p);
        }
        Ok(out)
    }

    /// Writes tokens into the canvas and reports the step.
    fn commit(&mut self, tokens: Vec<(usize, u32, f64)>, t: f64, remasked: Vec<usize>) {
        for &(pos, id, _) in &tokens {
            self.ids[pos] = id;
            self.masked.retain(|&m| m != pos);
        }
        if !tokens.is_empty() || !remasked.is_empty() {
            self.dirty = true;
        }
        let tok = self.inf.tokenizer();
        // a copy of the canvas to read each candidate's text in context, only when listing them
        let mut scratch = if self.candidates.is_empty() {
            Vec::new()
        } else {
            self.ids.clone()
        };
        let committed = tokens
            .iter()
            .map(|&(pos, id, p)| {
                let top = self.candidates.remove(&pos).unwrap_or_default();
                let top = listed(self.canvas, tok, &mut scratch, pos, top);
                Commit {
                    pos,
                    id,
                    text: self.canvas.token_text(&self.ids, pos, tok),
                    p,
                    top,
                }
            })
            .collect();
        let mut pending = Vec::new();
        if self.opts.pending {
            let mut left: Vec<_> = self.candidates.drain().collect();
            left.sort_by_key(|&(pos, _)| pos);
            for (pos, top) in left {
                let top = listed(self.canvas, tok, &mut scratch, pos, top);
                pending.push(Pending { pos, top });
            }
        }
        // a later step that proposes nothing must not report these predictions as its own
        self.candidates.clear();
        let event = StepEvent {
            step: self.step,
            t,
            nfe: self.nfe,
            committed,
            masked: self.masked.len(),
            remasked,
            pending,
            block: self.block,
        };
        self.host.event(&TraceEvent::Step(event));
    }

    /// The output rows a block's passes need, as a span for the key/value cache, when one is
    /// used: always for block diffusion (exact: no block sees a later one), with `dual_cache`
    /// otherwise (Fast-dLLM's DualCache: the rest of the canvas is as of the block's start).
    fn cache_span(&self, block: &[usize]) -> Option<(usize, usize)> {
        if !self.opts.dual_cache {
            return None;
        }
        let rows = self.inf.model.spec.logit_rows(block);
        Some((*rows.iter().min()?, *rows.iter().max()? + 1))
    }

    /// Every strategy that commits each token once.
    async fn absorbing(&mut self) -> Result<()> {
        let blocks = self.opts.hole_blocks(&self.canvas.holes);
        let strategy = self.opts.strategy;
        let steps = self.opts.block_steps(&self.canvas.holes)?;
        for (block, &per_block) in blocks.iter().zip(&steps) {
            self.kv_span = self.cache_span(block);
            self.kv_fresh = true;
            // the trace names the model's block of positions (not only its holes)
            self.block = self.opts.position_blocks.map(|n| {
                let start = block[0] / n * n;
                BlockSpan {
                    start,
                    end: (start + n).min(self.ids.len()),
                }
            });
            let active = |masked: &[usize]| -> Vec<usize> {
                masked
                    .iter()
                    .copied()
                    .filter(|p| block.contains(p))
                    .collect()
            };
            match strategy {
                Strategy::FirstHitting => {
                    let mut t = 1.0f64;
                    loop {
                        let rows = active(&self.masked);
                        if rows.is_empty() {
                            break;
                        }
                        self.step += 1;
                        let u: f64 = self.rng.random();
                        t *= u.powf(1.0 / rows.len() as f64);
                        let pick = rows[self.rng.random_range(0..rows.len())];
                        let p = self.propose_rows(&[pick], t).await?[0];
                        self.commit(vec![(pick, p.token, p.p)], t, Vec::new());
                    }
                }
                Strategy::Threshold(_) | Strategy::EntropyBound(_) => {
                    for i in 0.. {
                        let rows = active(&self.masked);
                        if rows.is_empty() {
                            break;
                        }
                        self.step += 1;
                        let t = rows.len() as f64 / self.canvas.holes.len() as f64;
                        let props = self.propose_rows(&rows, t).await?;
                        // with a step budget: at least what finishes the block in time
                        let floor = match per_block {
                            0 => 1,
                            s => rows.len().div_ceil(s.saturating_sub(i).max(1)),
                        };
                        let chosen = strategy.accepted(&props, floor);
                        let tokens = chosen
                            .iter()
                            .map(|&i| (rows[i], props[i].token, props[i].p))
                            .collect();
                        self.commit(tokens, t, Vec::new());
                    }
                }
                _ => {
                    let n_block = active(&self.masked).len();
                    let counts = transfer_counts(n_block, per_block);
                    for (i, &k) in counts.iter().enumerate() {
                        let rows = active(&self.masked);
                        let (t, s) = (
                            1.0 - i as f64 / per_block as f64,
                            1.0 - (i + 1) as f64 / per_block as f64,
                        );
                        self.step += 1;
                        if rows.is_empty() || (strategy != Strategy::Ancestral && k == 0) {
                            self.commit(Vec::new(), t, Vec::new());
                            continue;
                        }
                        let props = self.propose_rows(&rows, t).await?;
                        let chosen: Vec<usize> = if strategy == Strategy::Ancestral {
                            // the last step of a block commits all that is left (noise removal)
                            let last = i + 1 == per_block;
                            let q = self.opts.schedule.unmask_probability(t, s);
                            (0..rows.len())
                                .filter(|_| self.rng.random::<f64>() < q || last)
                                .collect()
                        } else {
                            let scores: Vec<f64> =
                                props.iter().map(|p| strategy.score(p)).collect();
                            top_k(&scores, k)
                        };
                        let tokens = chosen
                            .iter()
                            .map(|&j| (rows[j], props[j].token, props[j].p))
                            .collect();
                        self.commit(tokens, t, Vec::new());
                    }
                }
            }
        }
        Ok(())
    }

    /// Mask-Predict: iteration 0 predicts every hole; iteration c re-masks the
    /// `⌊N·(1 − c/T)⌋` least probable hole tokens and predicts them again.
    async fn mask_predict(&mut self) -> Result<()> {
        let iterations = self.opts.steps.unwrap_or(10);
        let free: Vec<usize> = self.masked.clone(); // forced tokens are never revised
        let mut prob: Vec<f64> = vec![0.0; free.len()];
        let mask = self.canvas.mask_id;
        for c in 0..iterations {
            let remask: Vec<usize> = if c == 0 {
                Vec::new()
            } else {
                let k = remask_count(free.len(), c, iterations);
                let neg: Vec<f64> = prob.iter().map(|p| -p).collect();
                top_k(&neg, k)
            };
            for &i in &remask {
                self.ids[free[i]] = mask;
                self.masked.push(free[i]);
            }
            self.masked.sort_unstable();
            if !remask.is_empty() {
                self.dirty = true;
            }
            let idx: Vec<usize> = if c == 0 {
                (0..free.len()).collect()
            } else {
                remask.clone()
            };
            if idx.is_empty() {
                break;
            }
            self.step += 1;
            let rows: Vec<usize> = idx.iter().map(|&i| free[i]).collect();
            let t = rows.len() as f64 / free.len() as f64;
            let props = self.propose_rows(&rows, t).await?;
            let mut tokens = Vec::with_capacity(rows.len());
            for (j, &i) in idx.iter().enumerate() {
                prob[i] = props[j].p;
                tokens.push((free[i], props[j].token, props[j].p));
            }
            let remasked = remask.iter().map(|&i| free[i]).collect();
            self.commit(tokens, t, remasked);
        }
        Ok(())
    }
}

/// A position's candidates with their text read in context: each is written into `scratch` (a
/// copy of the canvas) in turn, and the position is put back as it was afterwards.
fn listed(
    canvas: &Canvas,
    tok: &Tokenizer,
    scratch: &mut [u32],
    pos: usize,
    top: Vec<(u32, f64)>,
) -> Vec<Candidate> {
    if top.is_empty() {
        return Vec::new();
    }
    let was = scratch[pos];
    let out = top
        .into_iter()
        .map(|(id, p)| {
            scratch[pos] = id;
            Candidate {
                id,
                text: canvas.token_text(scratch, pos, tok),
                p,
            }
        })
        .collect();
    scratch[pos] = was;
    out
}

/// The seed of the device's tail draws for the pass made after `nfe` passes of a run seeded
/// `seed` (SplitMix64's finaliser, folded to 32 bits): fixed by the run's seed, and fresh for
/// every pass.
fn pass_seed(seed: u64, nfe: usize) -> u32 {
    let mut z = seed
        ^ (nfe as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z ^ (z >> 32)) as u32
}
