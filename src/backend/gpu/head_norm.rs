//! Dispatcher for `shaders/head_norm.wgsl`: Qwen3's per-head RMSNorm of queries and keys, in
//! place on fused qkv rows (the CPU op is `cpu::norm::apply_heads`).

use super::{Binding, Call, Gpu, Shader};
use crate::backend::AttentionShape;
use crate::model::plan::HeadNorms;

/// `struct Params` of `head_norm.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct HeadNormParams {
    pub len: u32,
    pub heads: u32,
    pub kv_heads: u32,
    pub hd: u32,
    pub eps: f32,
    pub _p: [u32; 3],
}

/// The two weights on the device, `[2, hd]`, and their eps (Qwen3 uses one for both).
pub struct GpuHeadNorms {
    pub weight: wgpu::Buffer,
    pub eps: f32,
}

impl GpuHeadNorms {
    pub fn upload(gpu: &Gpu, n: &HeadNorms) -> GpuHeadNorms {
        let w: Vec<f32> = n.q.weight.iter().chain(&n.k.weight).copied().collect();
        GpuHeadNorms {
            weight: gpu.upload("head_norm.weight", &w),
            eps: n.q.eps,
        }
    }
}

pub fn head_norm(gpu: &Gpu, n: &GpuHeadNorms, qkv: &wgpu::Buffer, shape: &AttentionShape) -> Call {
    let (len, hd) = (shape.len, shape.head_dim);
    use super::context::expect_values as at_least;
    at_least(
        qkv,
        "head_norm qkv [L, (heads + 2·kv_heads)·hd]",
        len * shape.qkv_dim(),
    );
    at_least(&n.weight, "head_norm weight [2, hd]", 2 * hd);
    let kernel = gpu.kernel(
        Shader::HeadNorm,
        &[Binding::Write, Binding::Read, Binding::Uniform],
        &[],
    );
    let l = len as u32;
    let (x, y) = if l <= 65535 {
        (l.max(1), 1)
    } else {
        (65535, l.div_ceil(65535))
    };
    gpu.call(
        &kernel,
        &[qkv, &n.weight],
        &HeadNormParams {
            len: l,
            heads: shape.heads as u32,
            kv_heads: shape.kv_heads as u32,
            hd: hd as u32,
            eps: n.eps,
            _p: [0; 3],
        },
        [x, y, (shape.heads + shape.kv_heads) as u32],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu;
    use crate::backend::gpu::test_gpu;
    use crate::model::plan::{Norm, NormKind};

    #[test]
    fn matches_cpu() {
        let Some(gpu) = test_gpu() else { return };
        // (len, heads, kv heads, hd): Qwen3-0.6B's head (128) and odd ones, past one workgroup
        for &(len, heads, kv_heads, hd) in &[
            (1, 1, 1, 2),
            (19, 4, 2, 20),
            (5, 16, 8, 128),
            (3, 3, 1, 130),
        ] {
            let shape = AttentionShape {
                len,
                heads,
                kv_heads,
                head_dim: hd,
            };
            let norm = |s: f32| Norm {
                kind: NormKind::RmsNorm,
                weight: (0..hd).map(|i| s + i as f32 / hd as f32).collect(),
                bias: None,
                eps: 1e-6,
            };
            let n = HeadNorms {
                q: norm(0.5),
                k: norm(-1.0),
            };
            let qkv: Vec<f32> = (0..len * shape.qkv_dim())
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 9.0)
                .collect();
            let mut want = qkv.clone();
            cpu::norm::apply_heads(&n, &mut want, &shape);
            let b = gpu.upload("qkv", &qkv);
            gpu.run(&[&head_norm(
                &gpu,
                &GpuHeadNorms::upload(&gpu, &n),
                &b,
                &shape,
            )]);
            let got: Vec<f32> = gpu.read_blocking(&[(&b, 0, want.len() as u64)]).unwrap();
            let e = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(e < 1e-4, "len {len} heads {heads}/{kv_heads} hd {hd}: {e}");
            // v is untouched
            let v_at = (heads + kv_heads) * hd;
            for (r, row) in got.chunks_exact(shape.qkv_dim()).enumerate() {
                assert_eq!(
                    &row[v_at..],
                    &qkv[r * shape.qkv_dim() + v_at..(r + 1) * shape.qkv_dim()]
                );
            }
        }
    }
}
