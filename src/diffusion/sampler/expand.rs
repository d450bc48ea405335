//! The loop of holes that grow and shrink (`diffusion::expand`): one pass over the whole canvas
//! per step, the most confident masked position committed, then its length move applied. The
//! canvas changes length, so nothing is cached between passes (DreamOn recomputes every step too).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use web_time::Instant;

use super::{listed, Host, InfillResult, Infiller, SamplerOptions};
use crate::backend::Denoiser;
use crate::batch::{Batch, Row};
use crate::diffusion::expand::{plan, Change, Growing};
use crate::diffusion::proposal::{log_softmax, propose_row};
use crate::diffusion::strategy::Strategy;
use crate::diffusion::trace::{Commit, DeleteEvent, DoneEvent, ExpandEvent, Pending};
use crate::diffusion::trace::{StepEvent, TraceEvent};
use crate::error::{Error, Result};
use crate::text::Template;

impl<D: Denoiser> Infiller<D> {
    /// The starting canvas of a template with holes of unknown length on a model that grows
    /// them: each such hole at its start length (the page draws it before the first step).
    pub fn growing(&self, template: &Template, opts: &SamplerOptions) -> Result<Growing> {
        let growth = self.model.growth().ok_or_else(|| {
            Error::input("this model has no `<|expand|>` token, so its holes cannot grow")
        })?;
        let plan = plan(&template.range_specs(), opts.hole_start);
        let starts: Vec<usize> = plan.iter().map(|p| p.0).collect();
        let (apart, slots) = template.with_lengths_apart(&starts);
        let canvas = self.canvas_of(&apart)?;
        Growing::new(canvas, &slots, &plan, growth, self.model.spec.max_len)
    }

    /// Fills a template whose holes of unknown length grow and shrink (module documentation).
    pub(super) async fn fill_growing<H: Host + ?Sized>(
        &mut self,
        template: &Template,
        opts: &SamplerOptions,
        host: &mut H,
    ) -> Result<InfillResult> {
        let why = if !matches!(
            opts.strategy,
            Strategy::TopProb | Strategy::Margin | Strategy::Entropy
        ) {
            Some(format!(
                "strategy `{}` does not apply: use top-prob, margin or entropy",
                opts.strategy
            ))
        } else if opts.steps.is_some() {
            Some("a step count does not apply: it takes a step per token".into())
        } else if opts.block_len.is_some() {
            Some("blocks do not apply".into())
        } else if opts.cfg_scale > 0.0 {
            Some("guidance is not supported there".into())
        } else if !opts.forced.is_empty() {
            Some("forced tokens name holes by number, which a growing hole moves".into())
        } else {
            None
        };
        if let Some(why) = why {
            return Err(Error::input(format!(
                "holes of unknown length on this model grow and shrink (DreamOn), one token per \
                 step; {why}"
            )));
        }
        let t0 = Instant::now();
        let mut g = self.growing(template, opts)?;
        let mut batch = Batch::single(g.ids.clone());
        batch.sigma = Some(vec![1.0]);
        self.model.check(&batch)?;
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let (mut nfe, mut step) = (0usize, 0usize);
        let v = self.model.spec.vocab_size;
        let mut allowed = self.allowed.clone();
        loop {
            let masked = g.masked();
            if masked.is_empty() {
                break;
            }
            host.before_pass().await?;
            step += 1;
            let t = masked.len() as f64 / g.canvas.holes.len() as f64;
            let sigma = if self.model.spec.time_conditioning {
                opts.schedule.sigma(t) as f32
            } else {
                0.0
            };
            let out_rows = self.model.spec.logit_rows(&masked);
            let logits = self
                .denoiser
                .logits(&Row::plain(&g.ids, sigma), &out_rows)
                .await?;
            nfe += 1;
            // each position's proposal over its own allowed set (the moves differ by position)
            let mut best: Option<(usize, f64)> = None;
            let mut props = Vec::with_capacity(masked.len());
            let mut tops = Vec::new();
            let moves = [g.growth.expand as usize, g.growth.end as usize];
            for (k, &pos) in masked.iter().enumerate() {
                // only the two move tokens differ by position: put them back, not the whole row
                for m in moves {
                    if let (Some(a), Some(&b)) = (allowed.get_mut(m), self.allowed.get(m)) {
                        *a = b;
                    }
                }
                g.allow(pos, &mut allowed);
                let row = &logits[k * v..(k + 1) * v];
                let p = propose_row(row, &allowed, &opts.choice, &mut rng)
                    .map_err(|_| Error::NonFinite { step, row: pos })?;
                let score = opts.strategy.score(&p);
                if best.is_none_or(|(_, b)| score > b) {
                    best = Some((k, score));
                }
                props.push(p);
                if opts.candidates > 0 {
                    tops.push(top_n(row, &allowed, opts.candidates));
                }
            }
            let (k, _) = best.expect("masked is not empty");
            let (pos, p) = (masked[k], props[k]);
            let change = g.commit(pos, p.token);
            let tok = self.tokenizer();
            // candidates read in the canvas as the step wrote it, before its move re-indexed it
            let mut scratch = if tops.is_empty() {
                Vec::new()
            } else {
                committed_view(&g, &change, pos, p.token)
            };
            let top = if tops.is_empty() {
                Vec::new()
            } else {
                listed(&g.canvas, tok, &mut scratch, pos, tops[k].clone())
            };
            let text = if change.is_some() {
                tok.id_to_token(p.token).unwrap_or_default()
            } else {
                g.canvas.token_text(&g.ids, pos, tok)
            };
            let mut pending = Vec::new();
            if opts.pending {
                for (j, &q) in masked.iter().enumerate() {
                    if j != k {
                        let top = listed(&g.canvas, tok, &mut scratch, q, tops[j].clone());
                        pending.push(Pending { pos: q, top });
                    }
                }
            }
            let still = g.masked().len();
            host.event(&TraceEvent::Step(StepEvent {
                step,
                t,
                nfe,
                committed: vec![Commit {
                    pos,
                    id: p.token,
                    text,
                    p: p.p,
                    top,
                }],
                masked: match &change {
                    Some(Change::Expand { .. }) => still - 2,
                    Some(Change::Delete { positions, .. }) => still + positions.len() - 1,
                    None => still,
                },
                remasked: Vec::new(),
                pending,
                block: None,
            }));
            match change {
                Some(Change::Expand { pos, hole, length }) => {
                    host.event(&TraceEvent::Expand(ExpandEvent {
                        expand: pos,
                        step,
                        hole,
                        length,
                        masked: still,
                    }))
                }
                Some(Change::Delete {
                    positions,
                    hole,
                    length,
                }) => host.event(&TraceEvent::Delete(DeleteEvent {
                    delete: positions,
                    step,
                    hole,
                    length,
                    masked: still,
                })),
                None => {}
            }
        }
        let text = g.canvas.text(&g.ids, self.tokenizer())?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        host.event(&TraceEvent::Done(DoneEvent {
            done: true,
            text: text.clone(),
            steps: step,
            nfe,
            ms,
        }));
        Ok(InfillResult {
            text,
            holes: g.canvas.holes.len(),
            ids: g.ids.clone(),
            steps: step,
            nfe,
            ms,
            lengths: Vec::new(),
            hole_lengths: g.lengths(),
        })
    }
}

/// The `n` most likely allowed tokens of a row, with their probabilities.
fn top_n(row: &[f32], allowed: &[bool], n: usize) -> Vec<(u32, f64)> {
    let lp = log_softmax(row, allowed, 1.0);
    let mut ix: Vec<(u32, f64)> = lp
        .iter()
        .enumerate()
        .filter(|(_, x)| x.is_finite())
        .map(|(i, &x)| (i as u32, x.exp()))
        .collect();
    ix.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ix.truncate(n);
    ix
}

/// The canvas as the step wrote it, before a length move re-indexed it: the moved positions put
/// back, so the step's candidates read in the context they were proposed in.
fn committed_view(g: &Growing, change: &Option<Change>, pos: usize, id: u32) -> Vec<u32> {
    let mut ids = g.ids.clone();
    match change {
        Some(Change::Expand { .. }) => {
            ids.remove(pos + 1);
            ids[pos] = id;
        }
        Some(Change::Delete { positions, .. }) => {
            for &q in positions {
                ids.insert(q, g.canvas.mask_id);
            }
            ids[pos] = id;
        }
        None => {}
    }
    ids
}
