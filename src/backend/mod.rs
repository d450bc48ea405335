//! Backends execute a model's [`Plan`](crate::model::plan::Plan). `cpu` is plain Rust: the
//! reference for every test and the fallback where no GPU adapter exists. `gpu` runs the same
//! plan as WGSL compute shaders through wgpu, tested op by op and end to end against `cpu`.

pub mod cpu;
pub mod gpu;

use crate::tensor::Tensor;

/// What one forward pass over a batch returns.
pub struct ForwardOutput {
    /// `[B, L, V]`, the model's raw output.
    pub logits: Tensor,
    /// When captured: index 0 is the embedding output, index i the output of block i; `[B, L, H]`.
    pub hidden_states: Vec<Tensor>,
    /// When captured: the final norm's output, the decoder's input; `[B, L, H]`.
    pub final_norm: Option<Tensor>,
}

/// Which engine runs the forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backend {
    #[default]
    Cpu,
    /// The WGSL backend; the model must have a GPU attached (`Model::attach_gpu`).
    Gpu,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Gpu => "gpu",
        }
    }
}
