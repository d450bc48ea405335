//! The GPU [`Denoiser`]: a plan's weights on the device and one [`GpuSession`] per canvas
//! length, created on first use and owned here. Each step records the backbone, the head on
//! the requested rows and the per-row reduction into one encoder and reads back the summaries;
//! a continuous step records the backbone, the head on every position, the estimate and the
//! update, and reads back x̂0, the readout and the new canvas. A step's `Ask.cache` runs
//! through the key/value cache of the session of the last refresh's length, chosen as the CPU
//! denoiser chooses (a span with no cache of this length refreshes instead).

use std::collections::HashMap;
use std::sync::Arc;

use super::forward::{GpuModel, GpuSession};
use super::weights::Held;
use super::Gpu;
use crate::backend::summarize_rows;
use crate::backend::{check_rows, Ask, Backend, CachePass, Denoiser, ForwardOutput, Summaries};
use crate::backend::{VectorOut, VectorStep};
use crate::batch::{Batch, Row, VectorInput};
use crate::error::{Error, Result};
use crate::model::plan::Plan;
use crate::tensor::Tensor;

pub struct GpuDenoiser {
    model: GpuModel,
    sessions: HashMap<usize, GpuSession>,
    /// The canvas length of the last `summaries` call whose logits stayed on the device.
    last: Option<usize>,
    /// The canvas length of the last refresh of the key/value cache: only that session's
    /// cache is kept, as the CPU keeps one.
    kv_len: Option<usize>,
    /// The plan's shapes, to count FLOPs as the CPU counts them.
    shapes: Plan,
    /// FLOPs of every pass run so far ([`Plan::flops`], [`Plan::flops_span`]).
    pub flops: f64,
}

impl GpuDenoiser {
    /// Uploads `plan`'s weights (f16 pairs when `f16`, else f32; arithmetic is f32 either way).
    pub async fn upload(gpu: Arc<Gpu>, plan: &Plan, f16: bool) -> Result<GpuDenoiser> {
        GpuDenoiser::upload_held(gpu, plan, f16, &Held::default()).await
    }

    /// [`GpuDenoiser::upload`] of a plan whose matrices may be on the device already, in `held`.
    pub async fn upload_held(
        gpu: Arc<Gpu>,
        plan: &Plan,
        f16: bool,
        held: &Held,
    ) -> Result<GpuDenoiser> {
        Ok(GpuDenoiser {
            model: GpuModel::upload_held(gpu, plan, f16, held).await?,
            sessions: HashMap::new(),
            last: None,
            kv_len: None,
            shapes: plan.shapes(),
            flops: 0.0,
        })
    }

    pub fn gpu(&self) -> &Gpu {
        &self.model.gpu
    }

    pub fn model(&self) -> &GpuModel {
        &self.model
    }

    /// The session for canvases of `len` tokens, created on first use.
    async fn session(&mut self, len: usize) -> Result<&mut GpuSession> {
        if !self.sessions.contains_key(&len) {
            let s = self.model.session(len, self.model.max_rows(len)).await?;
            self.sessions.insert(len, s);
        }
        Ok(self.sessions.get_mut(&len).expect("inserted above"))
    }

    /// Logits of `rows` in as many head calls as the binding limit needs (each part reruns
    /// `pass`, which over an unchanged canvas stores the same keys and values again).
    async fn logits_chunked(
        &mut self,
        row: &Row<'_>,
        rows: &[usize],
        pass: Option<CachePass>,
    ) -> Result<Vec<f32>> {
        let len = row.ids.len();
        check_rows(rows, len)?;
        let cap = self.model.max_rows(len);
        let mut out = Vec::with_capacity(rows.len() * self.model.vocab);
        self.session(len).await?;
        let session = self.sessions.get_mut(&len).expect("created above");
        for part in rows.chunks(cap) {
            out.extend(session.logits_pass(&self.model, row, part, pass).await?);
        }
        Ok(out)
    }

    /// The pass `cache` asks for, as the CPU denoiser runs it: none for a model the cache does
    /// not serve (the whole canvas instead), a refresh where no refresh of this canvas length
    /// is the last one, else the span, whose rows must lie in it.
    fn cache_pass(
        &self,
        row: &Row<'_>,
        rows: &[usize],
        cache: Option<CachePass>,
    ) -> Result<Option<CachePass>> {
        let Some(pass) = cache else { return Ok(None) };
        if self.model.cache_unsupported().is_some() || row.vectors.is_some() {
            return Ok(None);
        }
        let len = row.ids.len();
        match pass {
            CachePass::Span { start, end } if self.kv_len == Some(len) => {
                if let Some(&r) = rows.iter().find(|&&r| r < start || r >= end) {
                    return Err(Error::input(format!(
                        "row {r} is outside the span {start}..{end} of a cached pass"
                    )));
                }
                Ok(Some(pass))
            }
            _ => Ok(Some(CachePass::Refresh)),
        }
    }

    /// After a refresh at `len`: that session holds the cache, the others' is freed.
    fn refreshed(&mut self, len: usize) {
        self.kv_len = Some(len);
        for (&l, s) in &mut self.sessions {
            if l != len {
                s.drop_cache();
            }
        }
    }
}

impl Denoiser for GpuDenoiser {
    fn backend(&self) -> Backend {
        Backend::Gpu
    }

    async fn summaries(
        &mut self,
        row: &Row<'_>,
        rows: &[usize],
        ask: &Ask<'_>,
        allowed: &[bool],
        temperature: f64,
    ) -> Result<Summaries> {
        let len = row.ids.len();
        let pass = self.cache_pass(row, rows, ask.cache)?;
        let flops = match pass {
            Some(CachePass::Span { start, end }) => {
                self.shapes.flops_span(end - start, len, rows.len())
            }
            _ => self.shapes.flops(len, rows.len()),
        };
        if rows.len() > self.model.max_rows(len) {
            // more rows than one head call holds: their logits come to the host in parts and
            // are reduced there
            let logits = self.logits_chunked(row, rows, pass).await?;
            if pass == Some(CachePass::Refresh) {
                self.refreshed(len);
            }
            self.flops += flops;
            self.last = None;
            let v = self.model.vocab;
            return Ok(Summaries {
                rows: summarize_rows(&logits, v, allowed, temperature, ask.probes),
                logits: Some(Arc::new(logits)),
            });
        }
        self.session(len).await?;
        let session = self.sessions.get_mut(&len).expect("created above");
        let ask = Ask {
            cache: pass,
            ..*ask
        };
        let summaries = session
            .summaries(&self.model, row, rows, &ask, allowed, temperature)
            .await?;
        if pass == Some(CachePass::Refresh) {
            self.refreshed(len);
        }
        self.flops += flops;
        self.last = Some(len);
        Ok(Summaries {
            rows: summaries,
            logits: None,
        })
    }

    async fn last_row_logits(&mut self, k: usize) -> Result<Vec<f32>> {
        let session = self
            .last
            .and_then(|len| self.sessions.get(&len))
            .ok_or_else(|| Error::input("no device logits to read: no step has run"))?;
        session.logits_row(&self.model, k).await
    }

    async fn logits(&mut self, row: &Row<'_>, rows: &[usize]) -> Result<Vec<f32>> {
        let logits = self.logits_chunked(row, rows, None).await?;
        self.flops += self.shapes.flops(row.ids.len(), rows.len());
        Ok(logits)
    }

    async fn forward(&mut self, batch: &Batch, _capture: bool) -> Result<ForwardOutput> {
        // a continuous model's canvas holds vectors, which a batch of ids does not have
        self.model.check_input(&batch.row(0))?;
        let all: Vec<usize> = (0..batch.len).collect();
        let v = self.model.vocab;
        let mut logits = Vec::with_capacity(batch.size * batch.len * v);
        for b in 0..batch.size {
            logits.extend(self.logits_chunked(&batch.row(b), &all, None).await?);
        }
        Ok(ForwardOutput {
            logits: Tensor::new(vec![batch.size, batch.len, v], logits),
            hidden_states: Vec::new(),
            final_norm: None,
        })
    }

    /// A one-token pass compiles every pipeline the plan uses, so the first real step does
    /// not pay for it.
    async fn warm_up(&mut self) -> Result<()> {
        let mut warm = self.model.session(1, 1).await?;
        let Some(w) = self.model.vector_width() else {
            return warm
                .logits(&self.model, &Row::plain(&[0], 0.0), &[0])
                .await
                .map(|_| ());
        };
        // a continuous model: one step of one position, with the output prior where the head
        // takes one, compiles the input product, the prior, the estimate and the update
        let zeros = vec![0.0f32; 2 * w];
        let prior: &[f32] = if self.model.takes_prior() {
            &zeros[..w]
        } else {
            &[]
        };
        let step = VectorStep {
            row: Row {
                vectors: Some(VectorInput {
                    input: &zeros,
                    prior,
                }),
                ..Row::plain(&[0], 0.0)
            },
            z: &zeros[..w],
            noise: &zeros[..w],
            known: &[false],
            clean: &zeros[..w],
            z_coef: 1.0,
            x0_coef: 0.0,
            noise_coef: 1.0,
            round: false,
            allowed: &[true],
        };
        warm.vector_step(&self.model, &step).await.map(|_| ())
    }

    async fn vector_step(&mut self, step: &VectorStep<'_>) -> Result<VectorOut> {
        let w = self
            .model
            .vector_width()
            .ok_or_else(|| Error::input("a continuous step on a model that reads token ids"))?;
        step.check(w)?;
        let len = step.row.ids.len();
        if len == 0 {
            return Err(Error::input(
                "a continuous step needs at least one position",
            ));
        }
        let cap = self.model.max_rows(len);
        if cap < len {
            return Err(Error::input(format!(
                "a continuous step runs the head on every position at once, and the logits of {len} positions ({} values each) exceed one storage binding of this adapter ({cap} positions fit)",
                self.model.vocab
            )));
        }
        if self.last == Some(len) {
            // the step overwrites that session's logits
            self.last = None;
        }
        self.session(len).await?;
        let session = self.sessions.get_mut(&len).expect("created above");
        let out = session.vector_step(&self.model, step).await?;
        self.flops += self.shapes.flops(len, len);
        Ok(out)
    }
}
