//! [`AnyDenoiser`]: the backend chosen at run time behind the one [`Denoiser`] contract.

#[cfg(feature = "gpu")]
use super::select::WeightFormat;
#[cfg(feature = "gpu")]
use crate::backend::{
    gpu::{Gpu, Held},
    GpuDenoiser,
};
use crate::backend::{
    Ask, Backend, CpuDenoiser, Denoiser, ForwardOutput, Summaries, VectorOut, VectorStep,
};
use crate::batch::{Batch, Row};
use crate::error::Result;
use crate::model::Model;

pub enum AnyDenoiser {
    Cpu(CpuDenoiser),
    #[cfg(feature = "gpu")]
    Gpu(Box<GpuDenoiser>),
}

impl AnyDenoiser {
    /// The CPU backend on `model`'s plan as it is (see [`super::for_cpu`] for the packed form
    /// the engine gives it).
    pub fn cpu(model: &Model) -> Result<AnyDenoiser> {
        Ok(AnyDenoiser::Cpu(CpuDenoiser::new(model.plan()?.clone())))
    }

    /// Uploads `model` to `gpu` and warms the shaders up.
    #[cfg(feature = "gpu")]
    pub async fn gpu(
        gpu: std::sync::Arc<Gpu>,
        model: &Model,
        weights: WeightFormat,
    ) -> Result<AnyDenoiser> {
        let mut d = AnyDenoiser::upload(gpu, model, weights).await?;
        d.warm_up().await?;
        Ok(d)
    }

    /// Uploads `model` to `gpu`; the shaders compile on first use (or [`Denoiser::warm_up`]).
    #[cfg(feature = "gpu")]
    pub async fn upload(
        gpu: std::sync::Arc<Gpu>,
        model: &Model,
        weights: WeightFormat,
    ) -> Result<AnyDenoiser> {
        AnyDenoiser::upload_held(gpu, model, weights, &Held::default()).await
    }

    /// [`AnyDenoiser::upload`] of a model whose matrices may be on the device already (a
    /// streamed load's [`Held`]).
    #[cfg(feature = "gpu")]
    pub async fn upload_held(
        gpu: std::sync::Arc<Gpu>,
        model: &Model,
        weights: WeightFormat,
        held: &Held,
    ) -> Result<AnyDenoiser> {
        let f16 = weights == WeightFormat::F16;
        let d = GpuDenoiser::upload_held(gpu, model.plan()?, f16, held).await?;
        Ok(AnyDenoiser::Gpu(Box::new(d)))
    }
}

impl AnyDenoiser {
    /// FLOPs of every pass this denoiser has run ([`crate::model::plan::Plan::flops`]).
    pub fn flops(&self) -> f64 {
        match self {
            AnyDenoiser::Cpu(d) => d.flops,
            #[cfg(feature = "gpu")]
            AnyDenoiser::Gpu(d) => d.flops,
        }
    }

    /// Bytes of weights in device buffers (0 on the CPU).
    pub fn device_weight_bytes(&self) -> u64 {
        match self {
            AnyDenoiser::Cpu(_) => 0,
            #[cfg(feature = "gpu")]
            AnyDenoiser::Gpu(d) => d.model().weight_bytes,
        }
    }

    /// The GPU this denoiser runs on, if any (its counters, such as the bytes read back).
    #[cfg(feature = "gpu")]
    pub fn device(&self) -> Option<&std::sync::Arc<Gpu>> {
        match self {
            AnyDenoiser::Cpu(_) => None,
            AnyDenoiser::Gpu(d) => Some(&d.model().gpu),
        }
    }
}

macro_rules! each {
    ($self:ident, $d:ident => $e:expr) => {
        match $self {
            AnyDenoiser::Cpu($d) => $e,
            #[cfg(feature = "gpu")]
            AnyDenoiser::Gpu($d) => $e,
        }
    };
}

impl Denoiser for AnyDenoiser {
    fn backend(&self) -> Backend {
        each!(self, d => d.backend())
    }

    async fn summaries(
        &mut self,
        row: &Row<'_>,
        rows: &[usize],
        ask: &Ask<'_>,
        allowed: &[bool],
        temperature: f64,
    ) -> Result<Summaries> {
        each!(self, d => d.summaries(row, rows, ask, allowed, temperature).await)
    }

    async fn last_row_logits(&mut self, k: usize) -> Result<Vec<f32>> {
        each!(self, d => d.last_row_logits(k).await)
    }

    async fn logits(&mut self, row: &Row<'_>, rows: &[usize]) -> Result<Vec<f32>> {
        each!(self, d => d.logits(row, rows).await)
    }

    async fn forward(&mut self, batch: &Batch, capture: bool) -> Result<ForwardOutput> {
        each!(self, d => d.forward(batch, capture).await)
    }

    async fn warm_up(&mut self) -> Result<()> {
        each!(self, d => d.warm_up().await)
    }

    async fn vector_step(&mut self, step: &VectorStep<'_>) -> Result<VectorOut> {
        each!(self, d => d.vector_step(step).await)
    }
}
