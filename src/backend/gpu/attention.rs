//! Dispatcher for `shaders/attention.wgsl`: bidirectional attention with padding,
//! sliding-window and block-causal masks and grouped kv heads, one workgroup per (query, head);
//! over the rows' own keys, or a span's queries over a key/value cache of the whole canvas.

use super::{Binding, Call, Gpu, Shader};
use crate::backend::AttentionShape;
use crate::model::plan::Keys;

/// `struct Params` of `attention.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AttentionParams {
    /// Keys (the canvas length).
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
    /// The canvas position of the first query row.
    pub first: u32,
    /// Values per row of the key/value binding, and where its keys start in a row.
    pub kv_row: u32,
    pub k_base: u32,
    pub _p0: u32,
    pub _p1: u32,
}

/// Longest head the shader's per-thread accumulators hold (4 × 64).
pub const MAX_HEAD_DIM: usize = 256;

/// Every position of `qkv` (`[L, H + 2·KV]`) over the keys and values of the same rows.
pub fn attention(
    gpu: &Gpu,
    qkv: &wgpu::Buffer,
    keep: &wgpu::Buffer,
    out: &wgpu::Buffer,
    shape: &AttentionShape,
    keys: Keys,
) -> Call {
    let hh = shape.heads * shape.head_dim;
    let source = KeySource {
        buffer: qkv,
        len: shape.len,
        first: 0,
        row: shape.qkv_dim(),
        k_base: hh,
    };
    dispatch(gpu, qkv, &source, keep, out, shape, keys)
}

/// The `shape.len` queries of `qkv` (canvas positions `first..`) over a key/value cache of the
/// whole canvas (`cache`: `[len, 2·KV]` rows `[k | v]`, as `kv_cache.wgsl` writes it).
#[allow(clippy::too_many_arguments)]
pub fn attention_cached(
    gpu: &Gpu,
    qkv: &wgpu::Buffer,
    cache: &wgpu::Buffer,
    keep: &wgpu::Buffer,
    out: &wgpu::Buffer,
    shape: &AttentionShape,
    (first, len): (usize, usize),
    keys: Keys,
) -> Call {
    assert!(
        first + shape.len <= len,
        "queries {first}..{} of a canvas of {len}",
        first + shape.len
    );
    let source = KeySource {
        buffer: cache,
        len,
        first,
        row: 2 * shape.kv_heads * shape.head_dim,
        k_base: 0,
    };
    dispatch(gpu, qkv, &source, keep, out, shape, keys)
}

/// Where a dispatch's keys and values come from.
struct KeySource<'a> {
    buffer: &'a wgpu::Buffer,
    /// Keys (the canvas length).
    len: usize,
    /// The canvas position of the first query.
    first: usize,
    /// Values per row, and the offset of the keys in one.
    row: usize,
    k_base: usize,
}

fn dispatch(
    gpu: &Gpu,
    qkv: &wgpu::Buffer,
    kv: &KeySource,
    keep: &wgpu::Buffer,
    out: &wgpu::Buffer,
    shape: &AttentionShape,
    keys: Keys,
) -> Call {
    let (n, heads, hd) = (shape.len, shape.heads, shape.head_dim);
    assert!(
        shape.kv_heads > 0 && heads % shape.kv_heads == 0,
        "{} kv heads for {heads} heads",
        shape.kv_heads
    );
    assert!(
        kv.k_base + 2 * shape.kv_heads * hd <= kv.row,
        "keys and values at {} of rows of {}",
        kv.k_base,
        kv.row
    );
    use super::context::expect_values as at_least;
    at_least(qkv, "attention qkv [N, H + 2·KV]", n * shape.qkv_dim());
    at_least(kv.buffer, "attention kv [L, kv_row]", kv.len * kv.row);
    at_least(keep, "attention keep [L]", kv.len);
    at_least(out, "attention out [N, H]", n * heads * hd);
    let kernel = gpu.kernel(
        Shader::Attention,
        &[
            Binding::Read,
            Binding::Read,
            Binding::Read,
            Binding::Write,
            Binding::Uniform,
        ],
        &[],
    );
    let scale = 1.0 / (hd as f32).sqrt();
    let params = AttentionParams {
        len: kv.len as u32,
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
        first: kv.first as u32,
        kv_row: kv.row as u32,
        k_base: kv.k_base as u32,
        _p0: 0,
        _p1: 0,
    };
    gpu.call(
        &kernel,
        &[qkv, kv.buffer, keep, out],
        &params,
        [n as u32, heads as u32, 1],
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
    /// A span's queries over a cache of the whole canvas (the span's own keys stored in it, as
    /// a span pass does) match `kv_cache::attend`, with every key mode, on spans that are not
    /// a multiple of the 64-key slice.
    #[test]
    fn a_span_over_a_cache_matches_cpu() {
        use crate::backend::cpu::kv_cache::{attend, KvLayer};
        use crate::backend::gpu::kv_cache::kv_store;
        let Some(gpu) = test_gpu() else { return };
        for &(len, heads, kv_heads, hd, start, end) in &[
            (1, 1, 1, 2, 0, 1),
            (13, 3, 3, 10, 3, 10),
            (130, 4, 2, 24, 61, 128),
            (21, 6, 2, 12, 20, 21),
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
                .map(|i| ((i * 31 % 23) as f32 - 11.0) / 7.0)
                .collect();
            let span_qkv: Vec<f32> = (0..span.len * full.qkv_dim())
                .map(|i| ((i * 17 % 19) as f32 - 9.0) / 6.0)
                .collect();
            let mut layer = KvLayer::default();
            layer.store(&qkv, &full, 0);
            layer.store(&span_qkv, &span, start);
            let mask: Vec<bool> = (0..len).map(|j| j < len - len / 4).collect();
            let w = 2 * kv_heads * hd;
            let cache = gpu.storage("cache", (len * w * 4) as u64);
            let (qb, sb) = (gpu.upload("qkv", &qkv), gpu.upload("span", &span_qkv));
            gpu.run(&[
                &kv_store(&gpu, &qb, &cache, &full, 0, len),
                &kv_store(&gpu, &sb, &cache, &span, start, len),
            ]);
            for (m, keys) in [
                (None, Keys::All),
                (Some(&mask[..]), Keys::All),
                (None, Keys::Window(2)),
                (None, Keys::BlockCausal(4)),
                (Some(&mask[..]), Keys::BlockCausal(7)),
            ] {
                let want = attend(&span_qkv, &layer, &span, len, start, m, keys);
                let keep: Vec<u32> = (0..len)
                    .map(|j| u32::from(m.is_none_or(|m| m[j])))
                    .collect();
                let hw = heads * hd;
                let (kb, ob) = (
                    gpu.upload("keep", &keep),
                    gpu.storage("out", (span.len * hw * 4) as u64),
                );
                let call = attention_cached(&gpu, &sb, &cache, &kb, &ob, &span, (start, len), keys);
                gpu.run(&[&call]);
                let got: Vec<f32> = gpu
                    .read_blocking(&[(&ob, 0, (span.len * hw) as u64)])
                    .unwrap();
                let mut e = 0.0f32;
                for r in 0..span.len {
                    if m.is_some_and(|m| !m[start + r]) {
                        continue;
                    }
                    for c in 0..hw {
                        e = e.max((got[r * hw + c] - want[r * hw + c]).abs());
                    }
                }
                assert!(
                    e < 1e-4,
                    "len {len} span {start}..{end} heads {heads}/{kv_heads} hd {hd} mask {} keys {keys:?}: {e}",
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
