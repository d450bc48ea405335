//! Dispatcher for `shaders/matmul.wgsl`: `y (+)= act(x·Wᵀ + b)·gate`, one dispatch per row chunk
//! of W.

use super::weights::{GpuMatrix, Packing};
use super::{activation, Binding, Call, Gpu, Shader};
use crate::model::plan::Activation;

/// `struct Params` of `matmul.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub ldw: u32,
    pub ldy: u32,
    pub y_off: u32,
    /// Where this row chunk of W starts in the bias and the gate.
    pub b_off: u32,
    pub _p0: u32,
}

pub struct Epilogue<'a> {
    pub bias: Option<&'a wgpu::Buffer>,
    pub gate: Option<&'a wgpu::Buffer>,
    pub act: Option<Activation>,
    /// Add into `y` instead of overwriting (fused residual).
    pub accum: bool,
}

impl Epilogue<'_> {
    pub fn plain() -> Epilogue<'static> {
        Epilogue {
            bias: None,
            gate: None,
            act: None,
            accum: false,
        }
    }
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// `y[:, y_off..y_off+N]` of a `[m, ldy]` output from `x [m, K]` and `w [N, K]`.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    gpu: &Gpu,
    x: &wgpu::Buffer,
    m: usize,
    w: &GpuMatrix,
    e: &Epilogue,
    y: &wgpu::Buffer,
    ldy: usize,
    y_off: usize,
) -> Vec<Call> {
    use super::context::expect_values as at_least;
    at_least(x, "matmul x [M, K]", m * w.cols);
    if m > 0 {
        at_least(y, "matmul y [M, ldy]", (m - 1) * ldy + y_off + w.rows);
    }
    for (b, what) in [(e.bias, "matmul b [N]"), (e.gate, "matmul gate [N]")] {
        if let Some(b) = b {
            at_least(b, what, w.rows);
        }
    }
    for c in &w.chunks {
        at_least(&c.buffer, "matmul w [N, ldw]", c.rows * w.ldw);
    }
    let consts = [
        ("F16", flag(w.packing == Packing::F16)),
        ("Q8", flag(w.packing == Packing::Q8)),
        ("Q4", flag(w.packing == Packing::Q4)),
        ("HAS_BIAS", if e.bias.is_some() { 1.0 } else { 0.0 }),
        ("GATED", if e.gate.is_some() { 1.0 } else { 0.0 }),
        ("ACCUM", if e.accum { 1.0 } else { 0.0 }),
        ("ACT", f64::from(activation::code(e.act))),
    ];
    let kernel = gpu.kernel(
        Shader::Matmul,
        &[
            Binding::Read,
            Binding::Read,
            Binding::Read,
            Binding::Read,
            Binding::Write,
            Binding::Uniform,
        ],
        &consts,
    );
    w.chunks
        .iter()
        .map(|c| {
            let params = MatmulParams {
                m: m as u32,
                n: c.rows as u32,
                k: w.cols as u32,
                ldw: w.ldw as u32,
                ldy: ldy as u32,
                y_off: (y_off + c.start) as u32,
                b_off: c.start as u32,
                _p0: 0,
            };
            let groups = [(c.rows as u32).div_ceil(32), (m as u32).div_ceil(32), 1];
            gpu.call(
                &kernel,
                &[
                    x,
                    &c.buffer,
                    e.bias.unwrap_or(&gpu.dummy),
                    e.gate.unwrap_or(&gpu.dummy),
                    y,
                ],
                &params,
                groups,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::{activation, matmul::linear};
    use crate::backend::gpu::test_gpu;
    use crate::model::matrix::{half_bytes, Bytes, Half, Matrix};
    use crate::model::plan::Linear;

    fn data(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104729) % 2003) as f32 / 1001.5) - 1.0)
            .collect()
    }

    #[test]
    fn matches_cpu_on_odd_shapes() {
        let Some(gpu) = test_gpu() else { return };
        for &(m, k, n) in &[(1, 1, 1), (7, 13, 5), (33, 65, 47), (70, 31, 129)] {
            // f32, f16 from f32, bf16 held in place (packed to f16), q8_0 and q4_0 blocks
            let formats = [
                ("f32", false),
                ("f16", true),
                ("bf16", true),
                ("q8", true),
                ("q4", true),
            ];
            for (fmt, f16) in formats {
                for act in [
                    None,
                    Some(Activation::GeluErf),
                    Some(Activation::GeluTanh),
                    Some(Activation::Silu),
                ] {
                    let x = data(m * k, 1);
                    let mut w = data(n * k, 2);
                    if f16 {
                        // the CPU reference sees the same rounded weights
                        w.iter_mut()
                            .for_each(|v| *v = half::f16::from_f32(*v).to_f32());
                    }
                    let wt = match fmt {
                        "bf16" => {
                            Matrix::half(n, k, Half::Bf16, Bytes::owned(half_bytes(Half::Bf16, &w)))
                        }
                        "q8" => Matrix::f32(n, k, w).quantized().unwrap(),
                        "q4" => Matrix::f32(n, k, w).quantized_q4().unwrap(),
                        _ => Matrix::f32(n, k, w),
                    };
                    let b = data(n, 3);
                    let gate = data(n, 4);
                    let prior = data(m * n, 5);
                    let lin = Linear::from_matrix(wt.clone(), Some(b.clone()));
                    let mut want = linear(&x, m, &lin);
                    if let Some(a) = act {
                        activation::apply(a, &mut want, n);
                    }
                    for (i, v) in want.iter_mut().enumerate() {
                        *v = *v * gate[i % n] + prior[i];
                    }
                    let wm =
                        GpuMatrix::upload(&gpu, "w", &wt, f16, true, &Default::default()).unwrap();
                    assert_eq!(wm.packing == Packing::Q8, fmt == "q8");
                    assert_eq!(wm.packing == Packing::Q4, fmt == "q4");
                    let (xb, bb, gb, yb) = (
                        gpu.upload("x", &x),
                        gpu.upload("b", &b),
                        gpu.upload("g", &gate),
                        gpu.upload("y", &prior),
                    );
                    let e = Epilogue {
                        bias: Some(&bb),
                        gate: Some(&gb),
                        act,
                        accum: true,
                    };
                    let calls = matmul(&gpu, &xb, m, &wm, &e, &yb, n, 0);
                    gpu.run(&calls.iter().collect::<Vec<_>>());
                    let got: Vec<f32> = gpu.read_blocking(&[(&yb, 0, (m * n) as u64)]).unwrap();
                    let d = got
                        .iter()
                        .zip(&want)
                        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                        .fold(0.0, f32::max);
                    assert!(d < 1e-4, "({m},{k},{n}) {fmt} act={act:?}: {d}");
                }
            }
        }
    }

    #[test]
    fn split_weights_cover_every_row() {
        let Some(gpu) = test_gpu() else { return };
        // force a chunk size of 8 rows to exercise the split path on a small matrix
        let (m, k, n) = (3, 6, 21);
        let wt = Matrix::f32(n, k, data(n * k, 9));
        let mut wm = GpuMatrix::upload(&gpu, "w", &wt, false, false, &Default::default()).unwrap();
        wm.chunks = (0..n)
            .step_by(8)
            .map(|s| {
                let e = (s + 8).min(n);
                super::super::weights::Chunk {
                    buffer: gpu.upload(
                        "w",
                        &super::super::weights::pack_rows(&wt, s, e, Packing::F32),
                    ),
                    start: s,
                    rows: e - s,
                }
            })
            .collect();
        let x = data(m * k, 8);
        let (xb, yb) = (gpu.upload("x", &x), gpu.storage("y", (m * n * 4) as u64));
        let calls = matmul(&gpu, &xb, m, &wm, &Epilogue::plain(), &yb, n, 0);
        assert_eq!(calls.len(), 3);
        gpu.run(&calls.iter().collect::<Vec<_>>());
        let got: Vec<f32> = gpu.read_blocking(&[(&yb, 0, (m * n) as u64)]).unwrap();
        let want = linear(&x, m, &Linear::from_matrix(wt, None));
        let d = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(d < 1e-5, "{d}");
    }
}
