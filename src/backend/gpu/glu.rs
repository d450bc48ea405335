//! Dispatcher for `shaders/glu.wgsl`: `act(a) ⊙ b` of a gated FFN.

use super::{activation, Call, Gpu, Shader, Slot};
use crate::model::plan::Activation;

/// `struct Params` of `glu.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GluParams {
    pub rows: u32,
    pub inner: u32,
    pub _p0: u32,
    pub _p1: u32,
}

pub fn glu(
    gpu: &Gpu,
    act: Activation,
    u: &wgpu::Buffer,
    y: &wgpu::Buffer,
    rows: usize,
    inner: usize,
) -> Call {
    let kernel = gpu.kernel(
        Shader::Glu,
        &[Slot::Read, Slot::Write, Slot::Uniform],
        &[("ACT", f64::from(activation::code(Some(act))))],
    );
    gpu.call(
        &kernel,
        &[u, y],
        &GluParams {
            rows: rows as u32,
            inner: inner as u32,
            _p0: 0,
            _p1: 0,
        },
        [(inner as u32).div_ceil(64), rows as u32, 1],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::glu::glu as cpu_glu;
    use crate::backend::gpu::test_gpu;

    #[test]
    fn matches_cpu() {
        let Some(gpu) = test_gpu() else { return };
        let (rows, inner) = (5, 67);
        let u: Vec<f32> = (0..rows * 2 * inner)
            .map(|i| ((i * 17 % 41) as f32 - 20.0) / 6.0)
            .collect();
        for act in [Activation::GeluErf, Activation::GeluTanh, Activation::Silu] {
            let want = cpu_glu(act, &u, rows, inner);
            let (ub, yb) = (
                gpu.upload("u", &u),
                gpu.storage("y", (rows * inner * 4) as u64),
            );
            gpu.run(&[&glu(&gpu, act, &ub, &yb, rows, inner)]);
            let got: Vec<f32> = gpu
                .read_blocking(&[(&yb, 0, (rows * inner) as u64)])
                .unwrap();
            let e = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                .fold(0.0, f32::max);
            assert!(e < 1e-5, "{act:?}: {e}");
        }
    }
}
