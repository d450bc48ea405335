//! The GPU [`Denoiser`]: a plan's weights on the device and one [`GpuSession`] per canvas
//! length, created on first use and owned here. Each step records the backbone, the head on
//! the requested rows and the per-row reduction into one encoder and reads back the summaries.

use std::collections::HashMap;
use std::sync::Arc;

use super::forward::{GpuModel, GpuSession};
use super::Gpu;
use crate::backend::summarize_rows;
use crate::backend::{check_rows, Ask, Backend, Denoiser, ForwardOutput, Summaries};
use crate::backend::{VectorOut, VectorStep};
use crate::batch::{Batch, Row};
use crate::error::{Error, Result};
use crate::model::plan::Plan;
use crate::tensor::Tensor;

pub struct GpuDenoiser {
    model: GpuModel,
    sessions: HashMap<usize, GpuSession>,
    /// The canvas length of the last `summaries` call whose logits stayed on the device.
    last: Option<usize>,
}

impl GpuDenoiser {
    /// Uploads `plan`'s weights (f16 pairs when `f16`, else f32; arithmetic is f32 either way).
    pub async fn upload(gpu: Arc<Gpu>, plan: &Plan, f16: bool) -> Result<GpuDenoiser> {
        Ok(GpuDenoiser {
            model: GpuModel::upload(gpu, plan, f16).await?,
            sessions: HashMap::new(),
            last: None,
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

    /// Logits of `rows` in as many head calls as the binding limit needs.
    async fn logits_chunked(&mut self, row: &Row<'_>, rows: &[usize]) -> Result<Vec<f32>> {
        let len = row.ids.len();
        check_rows(rows, len)?;
        let cap = self.model.max_rows(len);
        let mut out = Vec::with_capacity(rows.len() * self.model.vocab);
        self.session(len).await?;
        let session = self.sessions.get_mut(&len).expect("created above");
        for part in rows.chunks(cap) {
            out.extend(session.logits(&self.model, row, part).await?);
        }
        Ok(out)
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
        if rows.len() > self.model.max_rows(len) {
            // more rows than one head call holds: their logits come to the host in parts and
            // are reduced there
            let logits = self.logits_chunked(row, rows).await?;
            self.last = None;
            let v = self.model.vocab;
            return Ok(Summaries {
                rows: summarize_rows(&logits, v, allowed, temperature, ask.probes),
                logits: Some(Arc::new(logits)),
            });
        }
        self.session(len).await?;
        let session = self.sessions.get_mut(&len).expect("created above");
        let summaries = session
            .summaries(&self.model, row, rows, ask, allowed, temperature)
            .await?;
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
        self.logits_chunked(row, rows).await
    }

    async fn forward(&mut self, batch: &Batch, _capture: bool) -> Result<ForwardOutput> {
        let all: Vec<usize> = (0..batch.len).collect();
        let v = self.model.vocab;
        let mut logits = Vec::with_capacity(batch.size * batch.len * v);
        for b in 0..batch.size {
            logits.extend(self.logits_chunked(&batch.row(b), &all).await?);
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
        warm.logits(&self.model, &Row::plain(&[0], 0.0), &[0])
            .await
            .map(|_| ())
    }

    async fn vector_step(&mut self, _step: &VectorStep<'_>) -> Result<VectorOut> {
        Err(Error::input(
            "continuous models do not run on the GPU yet: use --backend cpu",
        ))
    }
}
