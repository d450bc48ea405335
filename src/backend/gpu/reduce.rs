//! Dispatcher for `shaders/reduce.wgsl`: per-row max, log-sum-exp (at T = 1 and at the sampling
//! temperature), Σ p log p, a non-finite flag and the top-K logits, computed on the device so that a step reads back
//! a few KB instead of the logits.

use super::{Binding, Call, Gpu, Shader};
use crate::backend::{RowSummary, TOP_K};

/// `struct Params` of `reduce.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ReduceParams {
    pub rows: u32,
    pub v: u32,
    /// 1 / temperature (1 when sampling greedily).
    pub inv_t: f32,
    pub _p: u32,
}

/// Figures per row in `stats`: max, lse, lse_t, Σ p log p, the non-finite flag.
const STATS: usize = 5;

pub struct ReduceBuffers {
    pub stats: wgpu::Buffer,
    pub ids: wgpu::Buffer,
    pub vals: wgpu::Buffer,
    pub rows: usize,
}

impl ReduceBuffers {
    pub fn new(gpu: &Gpu, rows: usize) -> ReduceBuffers {
        ReduceBuffers {
            stats: gpu.storage("reduce.stats", (rows * STATS * 4) as u64),
            ids: gpu.storage("reduce.ids", (rows * TOP_K * 4) as u64),
            vals: gpu.storage("reduce.vals", (rows * TOP_K * 4) as u64),
            rows,
        }
    }

    /// Reads back the first `rows` summaries.
    pub async fn read(
        &self,
        gpu: &Gpu,
        rows: usize,
        vocab: usize,
    ) -> crate::error::Result<Vec<RowSummary>> {
        let words: Vec<u32> = gpu
            .read(&[
                (&self.stats, 0, (rows * STATS) as u64),
                (&self.ids, 0, (rows * TOP_K) as u64),
                (&self.vals, 0, (rows * TOP_K) as u64),
            ])
            .await?;
        let (stats, rest) = words.split_at(rows * STATS);
        let (ids, vals) = rest.split_at(rows * TOP_K);
        Ok((0..rows)
            .map(|r| {
                let s = |k: usize| f32::from_bits(stats[r * STATS + k]);
                RowSummary {
                    max: s(0) as f64,
                    lse: s(1) as f64,
                    lse_t: s(2) as f64,
                    neg_entropy: s(3) as f64,
                    top: (0..TOP_K)
                        .map(|k| (ids[r * TOP_K + k], f32::from_bits(vals[r * TOP_K + k])))
                        .filter(|(id, _)| (*id as usize) < vocab)
                        .collect(),
                    // 1.0 from the shader; anything else but 0.0 is as suspect
                    non_finite: s(4) != 0.0,
                }
            })
            .collect())
    }
}

pub fn reduce(
    gpu: &Gpu,
    logits: &wgpu::Buffer,
    allowed: &wgpu::Buffer,
    out: &ReduceBuffers,
    rows: usize,
    vocab: usize,
    temperature: f64,
) -> Call {
    use super::context::expect_values as at_least;
    at_least(logits, "reduce logits [R, V]", rows * vocab);
    at_least(allowed, "reduce allowed [V]", vocab);
    assert!(
        rows <= out.rows,
        "reduce: {rows} rows into buffers for {}",
        out.rows
    );
    let kernel = gpu.kernel(
        Shader::Reduce,
        &[
            Binding::Read,
            Binding::Read,
            Binding::Write,
            Binding::Write,
            Binding::Write,
            Binding::Uniform,
        ],
        &[("K", TOP_K as f64)],
    );
    let inv_t = if temperature > 0.0 {
        (1.0 / temperature) as f32
    } else {
        1.0
    };
    gpu.call(
        &kernel,
        &[logits, allowed, &out.stats, &out.ids, &out.vals],
        &ReduceParams {
            rows: rows as u32,
            v: vocab as u32,
            inv_t,
            _p: 0,
        },
        [(rows as u32).max(1), 1, 1],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::test_gpu;
    use crate::backend::summarize;

    #[test]
    fn matches_cpu() {
        let Some(gpu) = test_gpu() else { return };
        let (rows, v) = (5, 1003);
        let logits: Vec<f32> = (0..rows * v)
            .map(|i| ((i * 7919 % 1009) as f32 / 100.0) - 5.0)
            .collect();
        let allowed: Vec<bool> = (0..v).map(|i| i % 7 != 3 && i != 1002).collect();
        let allowed_u: Vec<u32> = allowed.iter().map(|&a| u32::from(a)).collect();
        let (lb, ab) = (
            gpu.upload("logits", &logits),
            gpu.upload("allowed", &allowed_u),
        );
        let out = ReduceBuffers::new(&gpu, rows);
        gpu.run(&[&reduce(&gpu, &lb, &ab, &out, rows, v, 0.7)]);
        let got = crate::blocking::block_on(out.read(&gpu, rows, v)).unwrap();
        for r in 0..rows {
            let want = summarize(&logits[r * v..(r + 1) * v], &allowed, 0.7);
            let g = &got[r];
            for (a, b, what) in [
                (g.max, want.max, "max"),
                (g.lse, want.lse, "lse"),
                (g.lse_t, want.lse_t, "lse_t"),
                (g.neg_entropy, want.neg_entropy, "entropy"),
            ] {
                assert!(
                    (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                    "row {r} {what}: {a} vs {b}"
                );
            }
            assert_eq!(g.top, want.top, "row {r} top-k");
            assert!(!g.non_finite, "row {r}");
        }
    }

    /// The device flags a row with a NaN or ±inf allowed logit, from the logit's bits, and
    /// ignores one in a suppressed token; the summaries come back without a panic or a hang.
    #[test]
    fn flags_non_finite_rows() {
        let Some(gpu) = test_gpu() else { return };
        let (rows, v) = (6, 333);
        let mut logits: Vec<f32> = (0..rows * v).map(|i| (i % 17) as f32 * 0.1).collect();
        let allowed: Vec<bool> = (0..v).map(|i| i != 5).collect();
        logits[v + 100] = f32::NAN;
        logits[2 * v + 332] = f32::INFINITY;
        logits[3 * v] = f32::NEG_INFINITY;
        logits[4 * v + 5] = f32::NAN; // suppressed: not the sampler's business
        logits[5 * v..6 * v].fill(f32::NAN);
        let allowed_u: Vec<u32> = allowed.iter().map(|&a| u32::from(a)).collect();
        let (lb, ab) = (
            gpu.upload("logits", &logits),
            gpu.upload("allowed", &allowed_u),
        );
        let out = ReduceBuffers::new(&gpu, rows);
        gpu.run(&[&reduce(&gpu, &lb, &ab, &out, rows, v, 1.0)]);
        let got = crate::blocking::block_on(out.read(&gpu, rows, v)).unwrap();
        let flags: Vec<bool> = got.iter().map(|s| s.non_finite).collect();
        assert_eq!(flags, [false, true, true, true, false, true]);
        let finite: Vec<bool> = got.iter().map(|s| s.is_finite()).collect();
        assert_eq!(finite, [true, false, false, false, true, false]);
        for s in &got {
            assert!(s.top.iter().all(|t| allowed[t.0 as usize]), "{s:?}");
        }
    }
}
