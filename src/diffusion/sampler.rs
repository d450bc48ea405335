//! The infill loop: template → canvas → repeated denoising steps → filled text, with a trace
//! event per step. One forward pass per step over the whole canvas, the head only on the rows
//! that are still masked, and no forward at all when the canvas has not changed since the last
//! one and the model ignores time (dlm-reference §3.4).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use web_time::Instant;

/// Waits for the GPU natively; the browser drives the async session API itself.
#[cfg(not(target_arch = "wasm32"))]
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

#[cfg(target_arch = "wasm32")]
fn block_on<T, F: std::future::Future<Output = Result<T>>>(_f: F) -> Result<T> {
    Err(Error::input("the blocking GPU sampler is native-only"))
}

use super::proposal::{propose, propose_from_summary, Proposal, TokenChoice};
use super::schedule::Schedule;
use super::strategy::{remask_count, threshold_select, top_k, transfer_counts, Strategy};
use super::trace::{Commit, DoneEvent, StepEvent, TraceEvent};
use crate::backend::cpu::Row;
use crate::backend::gpu::reduce::RowSummary;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::text::{Canvas, Template, Tokenizer};

#[derive(Clone, Debug)]
pub struct SamplerOptions {
    pub strategy: Strategy,
    /// Denoising steps (per the whole fill; split evenly over blocks). `None`: one per hole for
    /// the step-based strategies, 10 iterations for Mask-Predict. First-hitting and threshold
    /// set their own step count.
    pub steps: Option<usize>,
    pub schedule: Schedule,
    /// Semi-autoregressive blocks: fill the holes `block_len` at a time, left to right.
    pub block_len: Option<usize>,
    pub choice: TokenChoice,
    pub seed: u64,
    /// Classifier-free guidance weight w: `un + (w + 1)·(cond − un)`, where `un` sees the known
    /// text masked. 0 disables it.
    pub cfg_scale: f64,
    /// `(hole index, token id)`: tokens fixed before sampling starts.
    pub forced: Vec<(usize, u32)>,
    /// Skip the forward pass when nothing changed (time-agnostic models only).
    pub cache: bool,
}

impl SamplerOptions {
    /// Sensible defaults for a model: MDLM's "subs" models sample ancestrally at temperature 1
    /// (the faithful sampler for small unconditional models, dlm-reference §3.9); MLMs and
    /// LLaDA unmask the most confident proposal first, greedily.
    pub fn for_model(model: &Model) -> SamplerOptions {
        let subs = model.spec.logits == crate::model::LogitReading::Subs;
        SamplerOptions {
            strategy: if subs {
                Strategy::Ancestral
            } else {
                Strategy::TopProb
            },
            steps: None,
            schedule: Schedule::default(),
            block_len: None,
            choice: TokenChoice {
                temperature: if subs { 1.0 } else { 0.0 },
                ..TokenChoice::default()
            },
            seed: 0,
            cfg_scale: 0.0,
            forced: Vec::new(),
            cache: true,
        }
    }
}

#[derive(Clone, Debug)]
pub struct InfillResult {
    pub text: String,
    pub ids: Vec<u32>,
    pub holes: usize,
    pub steps: usize,
    pub nfe: usize,
    pub ms: f64,
}

/// A model ready to fill templates.
pub struct Infiller {
    pub model: Model,
    /// Tokens a proposal may use: never the mask, special tokens or rows past the tokenizer.
    pub allowed: Vec<bool>,
    pub backend: Backend,
}

impl Infiller {
    pub fn new(model: Model) -> Result<Infiller> {
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
        if let Some(m) = model.mask_id()? {
            allowed[m as usize] = false;
        }
        if !allowed.iter().any(|&a| a) {
            return Err(Error::input(
                "the model's vocabulary has no ordinary tokens to propose",
            ));
        }
        Ok(Infiller {
            model,
            allowed,
            backend: Backend::Cpu,
        })
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &std::path::Path) -> Result<Infiller> {
        Infiller::new(Model::load(dir)?)
    }

    /// The embedded default model.
    #[cfg(feature = "default-model")]
    pub fn default_model() -> Result<Infiller> {
        Infiller::new(crate::model::embedded::load()?)
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        self.model
            .tokenizer
            .as_ref()
            .expect("checked in Infiller::new")
    }

    /// Parses a template and lays out its canvas.
    pub fn canvas(&self, template: &str) -> Result<Canvas> {
        let m = &self.model;
        let mask = m.mask_id()?.expect("infillers have a tokenizer");
        let t = Template::parse(template, m.mask_text().as_deref())?;
        Canvas::build(
            &t,
            self.tokenizer(),
            m.spec.canvas,
            mask,
            m.spec.max_len,
            m.spec.max_len_field,
        )
    }

    /// Fills a template; `on_event` sees every step and the final `done` event.
    pub fn infill(
        &self,
        template: &str,
        opts: &SamplerOptions,
        on_event: &mut dyn FnMut(&TraceEvent),
    ) -> Result<InfillResult> {
        let canvas = self.canvas(template)?;
        self.run(&canvas, opts, on_event)
    }

    /// Runs the sampler on a prepared canvas.
    pub fn run(
        &self,
        canvas: &Canvas,
        opts: &SamplerOptions,
        on_event: &mut dyn FnMut(&TraceEvent),
    ) -> Result<InfillResult> {
        let t0 = Instant::now();
        let mut run = Run::new(self, canvas, opts, on_event)?;
        run.forced()?;
        match opts.strategy {
            Strategy::MaskPredict => run.mask_predict()?,
            _ => run.absorbing()?,
        }
        let text = canvas.text(&run.ids, self.tokenizer())?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let result = InfillResult {
            text: text.clone(),
            ids: run.ids.clone(),
            holes: canvas.holes.len(),
            steps: run.step,
            nfe: run.nfe,
            ms,
        };
        (run.on_event)(&TraceEvent::Done(DoneEvent {
            done: true,
            text,
            steps: run.step,
            nfe: run.nfe,
            ms,
        }));
        Ok(result)
    }
}

/// The state of one fill.
struct Run<'a> {
    inf: &'a Infiller,
    canvas: &'a Canvas,
    opts: &'a SamplerOptions,
    on_event: &'a mut dyn FnMut(&TraceEvent),
    ids: Vec<u32>,
    /// still masked, in canvas order
    masked: Vec<usize>,
    rng: ChaCha8Rng,
    nfe: usize,
    step: usize,
    /// logits of `cache_rows` for the canvas as it was at the last forward pass
    cache: Option<(Vec<usize>, Vec<f32>)>,
    /// the same for the GPU's per-row summaries
    gpu_cache: Option<(Vec<usize>, Vec<RowSummary>)>,
    dirty: bool,
}

impl<'a> Run<'a> {
    fn new(
        inf: &'a Infiller,
        canvas: &'a Canvas,
        opts: &'a SamplerOptions,
        on_event: &'a mut dyn FnMut(&TraceEvent),
    ) -> Result<Run<'a>> {
        let c = &opts.choice;
        let bad = |what: &str, v: String| Err(Error::input(format!("{what} {v}")));
        if !(c.temperature >= 0.0 && c.temperature.is_finite()) {
            return bad(
                "temperature must be a finite number ≥ 0, not",
                c.temperature.to_string(),
            );
        }
        if !(c.top_p > 0.0 && c.top_p <= 1.0) {
            return bad("top-p must be in (0, 1], not", c.top_p.to_string());
        }
        if !(opts.cfg_scale >= 0.0 && opts.cfg_scale.is_finite()) {
            return bad(
                "the guidance scale must be a finite number ≥ 0, not",
                opts.cfg_scale.to_string(),
            );
        }
        if opts.steps == Some(0) {
            return bad("steps must be at least 1, not", "0".into());
        }
        if opts.block_len == Some(0) {
            return bad("the block length must be at least 1, not", "0".into());
        }
        Ok(Run {
            inf,
            canvas,
            opts,
            on_event,
            ids: canvas.ids.clone(),
            masked: canvas.holes.clone(),
            rng: ChaCha8Rng::seed_from_u64(opts.seed),
            nfe: 0,
            step: 0,
            cache: None,
            gpu_cache: None,
            dirty: true,
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
            if id as usize >= self.inf.model.spec.vocab_size
                || Some(id) == self.inf.model.mask_id()?
            {
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

    /// Logits of `rows` for the current canvas at time t, from the cache when still valid.
    fn logits(&mut self, rows: &[usize], t: f64) -> Result<Vec<f32>> {
        let reuse = self.opts.cache && !self.dirty && !self.time_conditioned();
        if reuse {
            if let Some((cached_rows, logits)) = &self.cache {
                if cached_rows == rows {
                    return Ok(logits.clone());
                }
            }
        }
        let m = &self.inf.model;
        let sigma = if self.time_conditioned() {
            self.opts.schedule.sigma(t) as f32
        } else {
            0.0
        };
        let mut logits = m.denoise(&self.ids, rows, sigma, self.inf.backend)?;
        self.nfe += 1;
        if self.opts.cfg_scale > 0.0 && !self.canvas.known.is_empty() {
            let mask = self.canvas.mask_id;
            let mut un_ids = self.ids.clone();
            for &k in &self.canvas.known {
                un_ids[k] = mask;
            }
            let un = m.denoise(&un_ids, rows, sigma, self.inf.backend)?;
            self.nfe += 1;
            let w = self.opts.cfg_scale as f32;
            for (c, u) in logits.iter_mut().zip(&un) {
                *c = u + (w + 1.0) * (*c - u);
            }
        }
        self.dirty = false;
        self.cache = Some((rows.to_vec(), logits.clone()));
        Ok(logits)
    }

    /// Proposals for `rows` at time t. On the GPU (without guidance) the device reduces each row
    /// and only the summaries come back; otherwise the rows' logits are read and proposed from.
    fn propose_rows(&mut self, rows: &[usize], t: f64) -> Result<Vec<Proposal>> {
        if let Some(summaries) = self.gpu_summaries(rows, t)? {
            let inf = self.inf;
            let (len, choice) = (self.ids.len(), self.opts.choice);
            let mut out = Vec::with_capacity(rows.len());
            for (k, s) in summaries.iter().enumerate() {
                let mut fetch = || -> Result<Vec<f32>> {
                    let st = inf.model.gpu_state()?;
                    st.with_session(len, |m, sess| block_on(sess.logits_row(m, k)))
                };
                out.push(propose_from_summary(
                    s,
                    &inf.allowed,
                    &choice,
                    &mut self.rng,
                    &mut fetch,
                )?);
            }
            return Ok(out);
        }
        let logits = self.logits(rows, t)?;
        let v = self.inf.model.spec.vocab_size;
        Ok((0..rows.len())
            .map(|i| {
                propose(
                    &logits[i * v..(i + 1) * v],
                    &self.inf.allowed,
                    &self.opts.choice,
                    &mut self.rng,
                )
            })
            .collect())
    }

    /// Device summaries of `rows`, from the cache when the canvas has not changed; `None` when
    /// this run reads full logits instead (CPU, guidance, or more rows than one head call holds).
    fn gpu_summaries(&mut self, rows: &[usize], t: f64) -> Result<Option<Vec<RowSummary>>> {
        if self.inf.backend != Backend::Gpu || self.opts.cfg_scale > 0.0 {
            return Ok(None);
        }
        let st = self.inf.model.gpu_state()?;
        if rows.len() > st.max_rows(self.ids.len()) {
            return Ok(None);
        }
        let reuse = self.opts.cache && !self.dirty && !self.time_conditioned();
        if reuse {
            if let Some((cached_rows, s)) = &self.gpu_cache {
                if cached_rows == rows {
                    return Ok(Some(s.clone()));
                }
            }
        }
        let sigma = if self.time_conditioned() {
            self.opts.schedule.sigma(t) as f32
        } else {
            0.0
        };
        let row = Row {
            ids: &self.ids,
            key_mask: None,
            token_types: None,
            sigma,
        };
        let (allowed, temp) = (&self.inf.allowed, self.opts.choice.temperature);
        let s = st.with_session(self.ids.len(), |m, sess| {
            block_on(sess.summaries(m, &row, rows, allowed, temp))
        })?;
        self.nfe += 1;
        self.dirty = false;
        self.gpu_cache = Some((rows.to_vec(), s.clone()));
        Ok(Some(s))
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
        let committed = tokens
            .iter()
            .map(|&(pos, id, p)| Commit {
                pos,
                id,
                text: self.canvas.token_text(&self.ids, pos, tok),
                p,
            })
            .collect();
        let event = StepEvent {
            step: self.step,
            t,
            nfe: self.nfe,
            committed,
            masked: self.masked.len(),
            remasked,
        };
        (self.on_event)(&TraceEvent::Step(event));
    }

    /// The hole positions of each semi-autoregressive block.
    fn blocks(&self) -> Vec<Vec<usize>> {
        let holes = &self.canvas.holes;
        let b = self.opts.block_len.unwrap_or(holes.len()).max(1);
        holes.chunks(b).map(|c| c.to_vec()).collect()
    }

    /// Every strategy that commits each token once.
    fn absorbing(&mut self) -> Result<()> {
        let blocks = self.blocks();
        let strategy = self.opts.strategy;
        let total_steps = self.opts.steps.unwrap_or(self.canvas.holes.len());
        let per_block = match strategy {
            Strategy::FirstHitting | Strategy::Threshold(_) => 0,
            _ => {
                if total_steps % blocks.len() != 0 {
                    return Err(Error::input(format!(
                        "{total_steps} steps cannot be split evenly over {} blocks of {} holes; use a multiple of {}",
                        blocks.len(),
                        self.opts.block_len.unwrap_or(0),
                        blocks.len()
                    )));
                }
                total_steps / blocks.len()
            }
        };
        for block in &blocks {
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
                        let p = self.propose_rows(&[pick], t)?[0];
                        self.commit(vec![(pick, p.token, p.p)], t, Vec::new());
                    }
                }
                Strategy::Threshold(tau) => loop {
                    let rows = active(&self.masked);
                    if rows.is_empty() {
                        break;
                    }
                    self.step += 1;
                    let t = rows.len() as f64 / self.canvas.holes.len() as f64;
                    let props = self.propose_rows(&rows, t)?;
                    let conf: Vec<f64> = props.iter().map(|p| p.p).collect();
                    let chosen = threshold_select(&conf, tau);
                    let tokens = chosen
                        .iter()
                        .map(|&i| (rows[i], props[i].token, props[i].p))
                        .collect();
                    self.commit(tokens, t, Vec::new());
                },
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
                        let props = self.propose_rows(&rows, t)?;
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
    fn mask_predict(&mut self) -> Result<()> {
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
            let props = self.propose_rows(&rows, t)?;
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
