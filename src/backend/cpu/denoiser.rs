//! The CPU [`Denoiser`]: the plan run by plain Rust, the head only on the requested rows, and
//! the summaries reduced on the host by [`summarize`](crate::backend::summarize), the reference of the device
//! reduction. The logits stay with the summaries, so a draw never has to ask for them again.

use std::sync::Arc;

use super::kv_cache::{self, KvCache};
use super::{add_prior, continuous, encode, forward, head, in_pool};
use crate::backend::{check_input, check_rows, Ask, Backend, Denoiser, ForwardOutput, Summaries};
use crate::backend::{summarize_rows, CachePass};
use crate::backend::{VectorOut, VectorStep};
use crate::batch::{Batch, Row};
use crate::error::{Error, Result};
use crate::model::plan::Plan;

pub struct CpuDenoiser {
    plan: Arc<Plan>,
    /// The last `summaries` call's logits, for `last_row_logits`.
    last: Arc<Vec<f32>>,
    /// The keys and values of the last refresh ([`CachePass`]), updated by span passes.
    kv: Option<KvCache>,
    /// FLOPs of every pass run so far ([`Plan::flops`], [`Plan::flops_span`]).
    pub flops: f64,
}

impl CpuDenoiser {
    pub fn new(plan: Arc<Plan>) -> CpuDenoiser {
        CpuDenoiser {
            plan,
            last: Arc::default(),
            kv: None,
            flops: 0.0,
        }
    }

    /// [`logits_now`](CpuDenoiser::logits_now), its FLOPs counted.
    fn logits_counted(&mut self, row: &Row, rows: &[usize]) -> Result<Vec<f32>> {
        let logits = self.logits_now(row, rows)?;
        self.flops += self.plan.flops(row.ids.len(), rows.len());
        Ok(logits)
    }

    /// Logits of `rows` through the key/value cache: a refresh keeps it, a span pass reuses it.
    /// A plan the cache does not serve, or a span with no cache of this canvas's length, runs
    /// the whole canvas (a refresh where the plan allows).
    fn logits_cached(&mut self, row: &Row, rows: &[usize], pass: CachePass) -> Result<Vec<f32>> {
        check_rows(rows, row.ids.len())?;
        let plan = self.plan.clone();
        check_input(&plan, row)?;
        if kv_cache::unsupported(&plan).is_some() || row.vectors.is_some() {
            return self.logits_counted(row, rows);
        }
        let len = row.ids.len();
        match (pass, self.kv.as_mut()) {
            (CachePass::Span { start, end }, Some(cache)) if cache.len == len => {
                if let Some(&r) = rows.iter().find(|&&r| r < start || r >= end) {
                    return Err(Error::input(format!(
                        "row {r} is outside the span {start}..{end} of a cached pass"
                    )));
                }
                let hidden = in_pool(|| kv_cache::span(&plan, row, cache, start, end))?;
                self.flops += plan.flops_span(end - start, len, rows.len());
                Ok(in_pool(|| kv_cache::span_head(&plan, &hidden, start, rows)))
            }
            _ => {
                let (hidden, cache) = in_pool(|| kv_cache::refresh(&plan, row));
                self.kv = Some(cache);
                self.flops += plan.flops(len, rows.len());
                Ok(in_pool(|| kv_cache::span_head(&plan, &hidden, 0, rows)))
            }
        }
    }

    /// Logits of `rows`: the backbone over the whole canvas, the head on the gathered rows.
    pub fn logits_now(&self, row: &Row, rows: &[usize]) -> Result<Vec<f32>> {
        check_rows(rows, row.ids.len())?;
        let plan = &*self.plan;
        check_input(plan, row)?;
        Ok(in_pool(|| {
            let enc = encode(plan, row, false);
            let h = plan.hidden;
            let mut picked = Vec::with_capacity(rows.len() * h);
            for &r in rows {
                picked.extend_from_slice(&enc.hidden[r * h..(r + 1) * h]);
            }
            let mut logits = head(plan, &picked, rows.len(), enc.cond.as_deref());
            if let Some(v) = row.vectors.filter(|v| !v.prior.is_empty()) {
                let w = plan.embeddings.tokens.cols;
                let mut prior = Vec::with_capacity(rows.len() * w);
                for &r in rows {
                    prior.extend_from_slice(&v.prior[r * w..(r + 1) * w]);
                }
                add_prior(plan, &mut logits, &prior, rows.len());
            }
            logits
        }))
    }
}

impl Denoiser for CpuDenoiser {
    fn backend(&self) -> Backend {
        Backend::Cpu
    }

    async fn summaries(
        &mut self,
        row: &Row<'_>,
        rows: &[usize],
        ask: &Ask<'_>,
        allowed: &[bool],
        temperature: f64,
    ) -> Result<Summaries> {
        let logits = Arc::new(match ask.cache {
            Some(pass) => self.logits_cached(row, rows, pass)?,
            None => self.logits_counted(row, rows)?,
        });
        let summaries = summarize_rows(&logits, self.plan.vocab, allowed, temperature, ask.probes);
        self.last = logits.clone();
        Ok(Summaries {
            rows: summaries,
            logits: Some(logits),
        })
    }

    async fn last_row_logits(&mut self, k: usize) -> Result<Vec<f32>> {
        let v = self.plan.vocab;
        self.last
            .get(k * v..(k + 1) * v)
            .map(<[f32]>::to_vec)
            .ok_or_else(|| Error::input(format!("no row {k} in the last pass")))
    }

    async fn logits(&mut self, row: &Row<'_>, rows: &[usize]) -> Result<Vec<f32>> {
        self.logits_counted(row, rows)
    }

    async fn forward(&mut self, batch: &Batch, capture: bool) -> Result<ForwardOutput> {
        let plan = &*self.plan;
        check_input(plan, &batch.row(0))?;
        Ok(in_pool(|| forward(plan, batch, capture)))
    }

    async fn warm_up(&mut self) -> Result<()> {
        Ok(())
    }

    async fn vector_step(&mut self, step: &VectorStep<'_>) -> Result<VectorOut> {
        let plan = self.plan.clone();
        let io = plan
            .vectors
            .as_ref()
            .ok_or_else(|| Error::input("a continuous step on a model that reads token ids"))?;
        step.check(io.width)?;
        let len = step.row.ids.len();
        let all: Vec<usize> = (0..len).collect();
        let logits = self.logits_counted(&step.row, &all)?;
        Ok(continuous::finish(
            step,
            io.readout,
            &logits,
            plan.vocab,
            &plan.embeddings.tokens,
        ))
    }
}
