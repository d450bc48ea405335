//! Dispatcher for `shaders/glu.wgsl`: `act(a) ⊙ b` of a gated FFN.

use super::{activation, Binding, Call, Gpu, Shader};
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
    use super::context::expect_values as at_least;
    at_least(u, "glu u [rows, 2·inner]", rows * 2 * inner);
    at_least(y, "glu y [rows, inner]", rows * inner);
    let kernel = gpu.kernel(
        Shader::Glu,
        &[Binding::Read, Binding::Write, Binding::Uniform],
        &[
            ("ACT", f64::from(activation::code(Some(act)))),
            super::WG_CONSTANT,
        ],
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
        [(inner as u32).div_ceil(super::WG), rows as u32, 1],
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

    /// A binding smaller than the call's shape is a named failure when the call is recorded,
    /// not a clamped read on the device.
    #[test]
    fn an_undersized_binding_is_named() {
        let Some(gpu) = test_gpu() else { return };
        let (ub, yb) = (gpu.upload("u", &[0.0f32; 20]), gpu.storage("y", 4 * 9));
        let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            glu(&gpu, Activation::Silu, &ub, &yb, 2, 5)
        }));
        let msg = call
            .err()
            .and_then(|e| e.downcast::<String>().ok())
            .expect("a 9-value y for 2 × 5 outputs is refused");
        assert_eq!(
            *msg,
            "glu y [rows, inner]: the binding holds 36 bytes, the call's shape reads 40"
        );
    }
}
