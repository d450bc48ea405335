//! Dispatcher for `shaders/modulate.wgsl`: adaLN `x·(1 + scale) + shift` of time-conditioned MDLM.

use super::{Binding, Call, Gpu, Shader};

/// `struct Params` of `modulate.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ModulateParams {
    pub rows: u32,
    pub d: u32,
    pub _p0: u32,
    pub _p1: u32,
}

/// `shift_scale`: `[2, d]`, shift then scale.
pub fn modulate(
    gpu: &Gpu,
    x: &wgpu::Buffer,
    shift_scale: &wgpu::Buffer,
    rows: usize,
    d: usize,
) -> Call {
    use super::context::expect_values as at_least;
    at_least(x, "modulate x [rows, d]", rows * d);
    at_least(shift_scale, "modulate mod [2, d]", 2 * d);
    let kernel = gpu.kernel(
        Shader::Modulate,
        &[Binding::Write, Binding::Read, Binding::Uniform],
        &[super::WG_CONSTANT],
    );
    gpu.call(
        &kernel,
        &[x, shift_scale],
        &ModulateParams {
            rows: rows as u32,
            d: d as u32,
            _p0: 0,
            _p1: 0,
        },
        [(d as u32).div_ceil(super::WG), rows as u32, 1],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::modulate as adaln;
    use crate::backend::gpu::test_gpu;

    #[test]
    fn matches_cpu() {
        let Some(gpu) = test_gpu() else { return };
        let (rows, d) = (3, 70);
        let x: Vec<f32> = (0..rows * d).map(|i| i as f32 * 0.1 - 3.0).collect();
        let ss: Vec<f32> = (0..2 * d).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut want = x.clone();
        adaln::modulate(&mut want, &ss[..d], &ss[d..]);
        let (xb, sb) = (gpu.upload("x", &x), gpu.upload("ss", &ss));
        gpu.run(&[&modulate(&gpu, &xb, &sb, rows, d)]);
        let got: Vec<f32> = gpu.read_blocking(&[(&xb, 0, x.len() as u64)]).unwrap();
        let e = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(e < 1e-5, "{e}");
    }
}
