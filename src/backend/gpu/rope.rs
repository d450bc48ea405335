//! Dispatcher for `shaders/rope.wgsl`; the cos/sin table comes from the CPU op, so both
//! backends rotate by exactly the same angles.

use super::context::groups_1d;
use super::{Binding, Call, Gpu, Shader};
use crate::backend::cpu::rope::tables_at;
use crate::backend::AttentionShape;
use crate::model::plan::Rope;

/// `struct Params` of `rope.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RopeParams {
    pub len: u32,
    pub heads: u32,
    pub hd: u32,
    pub kv_heads: u32,
}

/// `[len, hd/2, 2]` interleaved (cos, sin) of positions `first..first + len`: a span pass
/// rotates its rows by their canvas positions, as the cached keys were.
pub fn table(gpu: &Gpu, rope: &Rope, first: usize, len: usize) -> wgpu::Buffer {
    let (c, s) = tables_at(rope, first, len);
    let cs: Vec<f32> = c.iter().zip(&s).flat_map(|(c, s)| [*c, *s]).collect();
    gpu.upload("rope.cs", &cs)
}

pub fn rope(gpu: &Gpu, qkv: &wgpu::Buffer, cs: &wgpu::Buffer, shape: &AttentionShape) -> Call {
    let (len, heads, hd) = (shape.len, shape.heads, shape.head_dim);
    use super::context::expect_values as at_least;
    at_least(
        qkv,
        "rope qkv [L, (heads + 2·kv_heads)·hd]",
        len * shape.qkv_dim(),
    );
    at_least(cs, "rope cs [L, hd/2, 2]", len * (hd / 2) * 2);
    let kernel = gpu.kernel(
        Shader::Rope,
        &[Binding::Write, Binding::Read, Binding::Uniform],
        &[super::WG_CONSTANT],
    );
    let threads = (len * (heads + shape.kv_heads) * (hd / 2)) as u32;
    gpu.call(
        &kernel,
        &[qkv, cs],
        &RopeParams {
            len: len as u32,
            heads: heads as u32,
            hd: hd as u32,
            kv_heads: shape.kv_heads as u32,
        },
        groups_1d(threads, super::WG),
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
        for &(len, heads, kv_heads, hd, theta) in &[
            (1, 1, 1, 2, 10000.0),
            (13, 3, 3, 10, 500000.0),
            (66, 2, 2, 64, 160000.0),
            (21, 6, 2, 12, 1000000.0),
            (5, 4, 1, 6, 10000.0),
        ] {
            let shape = AttentionShape {
                len,
                heads,
                kv_heads,
                head_dim: hd,
            };
            let r = Rope::new(theta, hd);
            let qkv: Vec<f32> = (0..len * shape.qkv_dim())
                .map(|i| ((i * 13 % 29) as f32 - 14.0) / 5.0)
                .collect();
            let mut want = qkv.clone();
            cpu::rope::apply_qkv(&r, &mut want, &shape);
            let (qb, cs) = (gpu.upload("qkv", &qkv), table(&gpu, &r, 0, len));
            gpu.run(&[&rope(&gpu, &qb, &cs, &shape)]);
            let got: Vec<f32> = gpu.read_blocking(&[(&qb, 0, qkv.len() as u64)]).unwrap();
            let e = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(e < 1e-5, "({len},{heads}/{kv_heads},{hd}): {e}");
        }
    }
}
