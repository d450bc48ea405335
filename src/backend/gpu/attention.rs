//! Dispatcher for `shaders/attention.wgsl`: bidirectional attention with padding,
//! sliding-window and block-causal masks and grouped kv heads, one workgroup per (query, head).

use super::{Binding, Call, Gpu, Shader};
use crate::backend::AttentionShape;
use crate::model::plan::Keys;

/// `struct Params` of `attention.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AttentionParams {
    pub len: u32,
    pub heads: u32,
    pub hd: u32,
    /// The window's reach (mode 1) or the block length (mode 2).
    pub window: u32,
    pub scale: f32,
    /// 0: every key; 1: a sliding window; 2: block-causal.
    pub mode: u32,
    /// Divides `heads`; query head h reads kv head `h / (heads / kv_heads)`.
    pub kv_heads: u32,
    pub _p1: u32,
}

/// Longest head the shader's per-thread accumulators hold (4 × 64).
pub const MAX_HEAD_DIM: usize = 256;

pub fn attention(
    gpu: &Gpu,
    qkv: &wgpu::Buffer,
    keep: &wgpu::Buffer,
    out: &wgpu::Buffer,
    shape: &AttentionShape,
    keys: Keys,
) -> Call {
    let (len, heads, hd) = (shape.len, shape.heads, shape.head_dim);
    assert!(
        shape.kv_heads > 0 && heads % shape.kv_heads == 0,
        "{} kv heads for {heads} heads",
        shape.kv_heads
    );
    use super::context::expect_values as at_least;
    at_least(qkv, "attention qkv [L, H + 2·KV]", len * shape.qkv_dim());
    at_least(keep, "attention keep [L]", len);
    at_least(out, "attention out [L, H]", len * heads * hd);
    let kernel = gpu.kernel(
        Shader::Attention,
        &[
            Binding::Read,
            Binding::Read,
            Binding::Write,
            Binding::Uniform,
        ],
        &[],
    );
    let scale = 1.0 / (hd as f32).sqrt();
    let params = AttentionParams {
        len: len as u32,
        heads: heads as u32,
        hd: hd as u32,
        window: match keys {
            Keys::All => 0,
            Keys::Window(w) => w as u32,
            Keys::BlockCausal(n) => n.max(1) as u32,
        },
        scale,
        mode: match keys {
            Keys::All => 0,
            Keys::Window(_) => 1,
            Keys::BlockCausal(_) => 2,
        },
        kv_heads: shape.kv_heads as u32,
        _p1: 0,
    };
    gpu.call(
        &kernel,
        &[qkv, keep, out],
        &params,
        [len as u32, heads as u32, 1],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::attention::attention as cpu_attention;
    use crate::backend::gpu::test_gpu;

    #[test]
    fn matches_cpu_with_masks_windows_and_blocks() {
        let Some(gpu) = test_gpu() else { return };
        // (len, heads, kv heads, hd): plain, then grouped (3 query heads per kv head, 2, all
        // sharing one) on lengths that are not multiples of the 64-key slice
        for &(len, heads, kv_heads, hd) in &[
            (1, 1, 1, 2),
            (11, 3, 3, 5),
            (70, 2, 2, 80),
            (130, 2, 2, 16),
            (21, 6, 2, 12),
            (67, 4, 2, 18),
            (5, 4, 1, 6),
        ] {
            let shape = AttentionShape {
                len,
                heads,
                kv_heads,
                head_dim: hd,
            };
            let qkv: Vec<f32> = (0..len * shape.qkv_dim())
                .map(|i| ((i * 31 % 23) as f32 - 11.0) / 7.0)
                .collect();
            let mask: Vec<bool> = (0..len).map(|j| j < len - len / 4).collect();
            for (m, w) in [
                (None, Keys::All),
                (Some(&mask[..]), Keys::All),
                (None, Keys::Window(2)),
                (Some(&mask[..]), Keys::Window(3)),
                (None, Keys::BlockCausal(4)),
                (Some(&mask[..]), Keys::BlockCausal(7)),
            ] {
                let want = cpu_attention(&qkv, &shape, m, w);
                let keep: Vec<u32> = (0..len)
                    .map(|j| u32::from(m.is_none_or(|m| m[j])))
                    .collect();
                let (qb, kb, ob) = (
                    gpu.upload("qkv", &qkv),
                    gpu.upload("keep", &keep),
                    gpu.storage("out", (len * heads * hd * 4) as u64),
                );
                gpu.run(&[&attention(&gpu, &qb, &kb, &ob, &shape, w)]);
                let got: Vec<f32> = gpu
                    .read_blocking(&[(&ob, 0, (len * heads * hd) as u64)])
                    .unwrap();
                // padded queries are implementation-defined: compare real rows only
                let mut e = 0.0f32;
                for i in 0..len {
                    if m.is_some_and(|m| !m[i]) {
                        continue;
                    }
                    for c in 0..heads * hd {
                        e = e.max((got[i * heads * hd + c] - want[i * heads * hd + c]).abs());
                    }
                }
                assert!(
                    e < 1e-4,
                    "len {len} heads {heads}/{kv_heads} hd {hd} mask {} keys {w:?}: {e}",
                    m.is_some()
                );
            }
        }
    }
    /// A NaN or infinite score is not skipped like a masked key: the query's output is
    /// non-finite, as on the CPU, so the sampler can see that the weights are broken. Every
    /// other query (its own head or keys) is unchanged, and a query with every key masked is 0.
    #[test]
    fn non_finite_scores_stay_non_finite() {
        let Some(gpu) = test_gpu() else { return };
        let (len, heads, hd) = (5, 2, 4);
        let shape = AttentionShape {
            len,
            heads,
            kv_heads: heads,
            head_dim: hd,
        };
        let w = 3 * heads * hd;
        let clean: Vec<f32> = (0..len * w)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 9.0)
            .collect();
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            // key 2 of head 0 is poisoned: every query of head 0 sees a non-finite score
            let mut qkv = clean.clone();
            qkv[2 * w + heads * hd] = bad;
            let keep = vec![1u32; len];
            let (qb, kb, ob) = (
                gpu.upload("qkv", &qkv),
                gpu.upload("keep", &keep),
                gpu.storage("out", (len * heads * hd * 4) as u64),
            );
            gpu.run(&[&attention(&gpu, &qb, &kb, &ob, &shape, Keys::All)]);
            let got: Vec<f32> = gpu
                .read_blocking(&[(&ob, 0, (len * heads * hd) as u64)])
                .unwrap();
            for i in 0..len {
                let row = &got[i * heads * hd..(i + 1) * heads * hd];
                assert!(
                    row[..hd].iter().all(|x| !x.is_finite()),
                    "{bad}: query {i}, head 0: {row:?}"
                );
                assert!(row[hd..].iter().all(|x| x.is_finite()), "{bad}: head 1");
            }
        }
        // every key masked: zeros, not NaN
        let keep = vec![0u32; len];
        let (qb, kb, ob) = (
            gpu.upload("qkv", &clean),
            gpu.upload("keep", &keep),
            gpu.storage("out", (len * heads * hd * 4) as u64),
        );
        gpu.run(&[&attention(&gpu, &qb, &kb, &ob, &shape, Keys::All)]);
        let got: Vec<f32> = gpu
            .read_blocking(&[(&ob, 0, (len * heads * hd) as u64)])
            .unwrap();
        assert!(got.iter().all(|&x| x == 0.0), "{got:?}");
    }
}
