//! Dispatcher for `shaders/norm.wgsl`: LayerNorm (with or without bias) and RMSNorm per row.

use super::{Binding, Call, Gpu, Shader};
use crate::model::plan::{Norm, NormKind};

/// `struct Params` of `norm.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct NormParams {
    pub rows: u32,
    pub d: u32,
    pub eps: f32,
    pub _p: u32,
}

/// Norm parameters on the device.
pub struct GpuNorm {
    pub rms: bool,
    pub weight: wgpu::Buffer,
    pub bias: Option<wgpu::Buffer>,
    pub eps: f32,
    pub d: usize,
}

impl GpuNorm {
    pub fn upload(gpu: &Gpu, n: &Norm) -> GpuNorm {
        GpuNorm {
            rms: n.kind == NormKind::RmsNorm,
            weight: gpu.upload("norm.weight", &n.weight),
            bias: n.bias.as_ref().map(|b| gpu.upload("norm.bias", b)),
            eps: n.eps,
            d: n.weight.len(),
        }
    }
}

/// `y[r] = norm(x[r])` for `rows` rows.
pub fn norm(gpu: &Gpu, n: &GpuNorm, x: &wgpu::Buffer, y: &wgpu::Buffer, rows: usize) -> Call {
    use super::context::expect_values as at_least;
    at_least(x, "norm x [rows, d]", rows * n.d);
    at_least(y, "norm y [rows, d]", rows * n.d);
    at_least(&n.weight, "norm weight [d]", n.d);
    if let Some(b) = &n.bias {
        at_least(b, "norm bias [d]", n.d);
    }
    let kernel = gpu.kernel(
        Shader::Norm,
        &[
            Binding::Read,
            Binding::Read,
            Binding::Read,
            Binding::Write,
            Binding::Uniform,
        ],
        &[
            ("RMS", if n.rms { 1.0 } else { 0.0 }),
            ("HAS_BIAS", if n.bias.is_some() { 1.0 } else { 0.0 }),
        ],
    );
    let params = NormParams {
        rows: rows as u32,
        d: n.d as u32,
        eps: n.eps,
        _p: 0,
    };
    let r = rows as u32;
    let groups = if r <= 65535 {
        [r.max(1), 1, 1]
    } else {
        [65535, r.div_ceil(65535), 1]
    };
    gpu.call(
        &kernel,
        &[x, &n.weight, n.bias.as_ref().unwrap_or(&gpu.dummy), y],
        &params,
        groups,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu;
    use crate::backend::gpu::test_gpu;

    #[test]
    fn matches_cpu() {
        let Some(gpu) = test_gpu() else { return };
        for (kind, bias, d, rows) in [
            (NormKind::LayerNorm, true, 67, 5),
            (NormKind::LayerNorm, false, 130, 3),
            (NormKind::RmsNorm, false, 33, 7),
        ] {
            let n = Norm {
                kind,
                weight: (0..d).map(|i| 0.5 + i as f32 / d as f32).collect(),
                bias: bias.then(|| (0..d).map(|i| i as f32 * 0.01).collect()),
                eps: 1e-5,
            };
            let x: Vec<f32> = (0..rows * d)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 9.0)
                .collect();
            let want = cpu::norm::normed(&n, &x);
            let g = GpuNorm::upload(&gpu, &n);
            let (xb, yb) = (gpu.upload("x", &x), gpu.storage("y", (rows * d * 4) as u64));
            gpu.run(&[&norm(&gpu, &g, &xb, &yb, rows)]);
            let got: Vec<f32> = gpu.read_blocking(&[(&yb, 0, (rows * d) as u64)]).unwrap();
            let e = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(e < 1e-4, "{kind:?} bias={bias}: {e}");
        }
    }
}
