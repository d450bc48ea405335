//! Dispatcher for `shaders/gather.wgsl`: the masked rows' hidden states, packed for the head.

use super::{Binding, Call, Gpu, Shader};

/// `struct Params` of `gather.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GatherParams {
    pub count: u32,
    pub d: u32,
    pub _p0: u32,
    pub _p1: u32,
}

pub fn gather(
    gpu: &Gpu,
    x: &wgpu::Buffer,
    rows: &wgpu::Buffer,
    y: &wgpu::Buffer,
    count: usize,
    d: usize,
) -> Call {
    use super::context::expect_values as at_least;
    at_least(x, "gather x [L, d]", d);
    at_least(rows, "gather rows [R]", count);
    at_least(y, "gather y [R, d]", count * d);
    let kernel = gpu.kernel(
        Shader::Gather,
        &[
            Binding::Read,
            Binding::Read,
            Binding::Write,
            Binding::Uniform,
        ],
        &[super::WG_CONSTANT],
    );
    gpu.call(
        &kernel,
        &[x, rows, y],
        &GatherParams {
            count: count as u32,
            d: d as u32,
            _p0: 0,
            _p1: 0,
        },
        [(d as u32).div_ceil(super::WG), (count as u32).max(1), 1],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::test_gpu;

    #[test]
    fn picks_rows() {
        let Some(gpu) = test_gpu() else { return };
        let (len, d) = (9, 67);
        let x: Vec<f32> = (0..len * d).map(|i| i as f32).collect();
        let rows: Vec<u32> = vec![7, 0, 3];
        let (xb, rb, yb) = (
            gpu.upload("x", &x),
            gpu.upload("rows", &rows),
            gpu.storage("y", (3 * d * 4) as u64),
        );
        gpu.run(&[&gather(&gpu, &xb, &rb, &yb, 3, d)]);
        let got: Vec<f32> = gpu.read_blocking(&[(&yb, 0, (3 * d) as u64)]).unwrap();
        for (k, &r) in rows.iter().enumerate() {
            assert_eq!(
                &got[k * d..(k + 1) * d],
                &x[r as usize * d..(r as usize + 1) * d]
            );
        }
    }
}
