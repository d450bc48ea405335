//! Dispatcher for `shaders/kv_cache.wgsl`: the k and v columns of fused qkv rows written into a
//! layer's key/value cache at their canvas positions; the reference is
//! [`KvLayer::store`](crate::backend::cpu::kv_cache::KvLayer).

use super::{Binding, Call, Gpu, Shader};
use crate::backend::AttentionShape;

/// `struct Params` of `kv_cache.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct KvCacheParams {
    pub n: u32,
    pub hh: u32,
    /// kv_heads·hd: the width of the keys, and of the values.
    pub kv: u32,
    pub first: u32,
}

/// The `shape.len` rows of `qkv` stored at positions `first..` of `cache` (`[len, 2·KV]`).
pub fn kv_store(
    gpu: &Gpu,
    qkv: &wgpu::Buffer,
    cache: &wgpu::Buffer,
    shape: &AttentionShape,
    first: usize,
    len: usize,
) -> Call {
    let n = shape.len;
    let kv = shape.kv_heads * shape.head_dim;
    assert!(
        first + n <= len,
        "rows {first}..{} of a cache of {len}",
        first + n
    );
    use super::context::expect_values as at_least;
    at_least(qkv, "kv_cache qkv [N, H + 2·KV]", n * shape.qkv_dim());
    at_least(cache, "kv_cache cache [L, 2·KV]", len * 2 * kv);
    let kernel = gpu.kernel(
        Shader::KvCache,
        &[Binding::Read, Binding::Write, Binding::Uniform],
        &[super::WG_CONSTANT],
    );
    gpu.call(
        &kernel,
        &[qkv, cache],
        &KvCacheParams {
            n: n as u32,
            hh: (shape.heads * shape.head_dim) as u32,
            kv: kv as u32,
            first: first as u32,
        },
        [(2 * kv as u32).div_ceil(super::WG), (n as u32).max(1), 1],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::kv_cache::KvLayer;
    use crate::backend::gpu::test_gpu;

    /// A refresh's rows, then a span's over them, land where the CPU's cache puts them; the
    /// rows outside the span keep the refresh's values.
    #[test]
    fn matches_cpu_store() {
        let Some(gpu) = test_gpu() else { return };
        for &(len, heads, kv_heads, hd, start, end) in &[
            (1, 1, 1, 2, 0, 1),
            (13, 3, 3, 10, 3, 10),
            (70, 4, 2, 36, 65, 70),
            (21, 6, 2, 12, 0, 21),
        ] {
            let full = AttentionShape {
                len,
                heads,
                kv_heads,
                head_dim: hd,
            };
            let span = AttentionShape {
                len: end - start,
                ..full
            };
            let qkv: Vec<f32> = (0..len * full.qkv_dim())
                .map(|i| ((i * 13 % 29) as f32 - 14.0) / 5.0)
                .collect();
            let span_qkv: Vec<f32> = (0..span.len * full.qkv_dim())
                .map(|i| ((i * 7 % 17) as f32 - 8.0) / 3.0)
                .collect();
            let mut want = KvLayer::default();
            want.store(&qkv, &full, 0);
            want.store(&span_qkv, &span, start);
            let w = 2 * kv_heads * hd;
            let cache = gpu.storage("cache", (len * w * 4) as u64);
            let (qb, sb) = (gpu.upload("qkv", &qkv), gpu.upload("span", &span_qkv));
            gpu.run(&[
                &kv_store(&gpu, &qb, &cache, &full, 0, len),
                &kv_store(&gpu, &sb, &cache, &span, start, len),
            ]);
            let got: Vec<f32> = gpu.read_blocking(&[(&cache, 0, (len * w) as u64)]).unwrap();
            let kw = w / 2;
            for j in 0..len {
                assert_eq!(
                    &got[j * w..j * w + kw],
                    &want.k()[j * kw..(j + 1) * kw],
                    "k {j}"
                );
                assert_eq!(
                    &got[j * w + kw..(j + 1) * w],
                    &want.v()[j * kw..(j + 1) * kw],
                    "v {j}"
                );
            }
        }
    }
}
