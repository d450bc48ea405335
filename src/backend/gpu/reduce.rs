//! Dispatcher for `shaders/reduce.wgsl`: per-row max, log-sum-exp (at T = 1 and at the sampling
//! temperature), Σ p log p, a non-finite flag, the top-K logits and the logits of a few probed
//! ids per row, computed on the device so that a step reads back a few KB instead of the logits.

use super::{Binding, Call, Gpu, Shader};
use crate::backend::{Ask, RowSummary, PROBES, TOP_K};

/// `struct Params` of `reduce.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ReduceParams {
    pub rows: u32,
    pub v: u32,
    /// 1 / temperature (1 when sampling greedily).
    pub inv_t: f32,
    /// Probed ids per row: 0, or [`PROBES`].
    pub probes: u32,
}

/// Figures per row in `stats`: max, lse, lse_t, Σ p log p, the non-finite flag.
const STATS: usize = 5;

/// Bytes one step's summaries read back for `rows` rows with `probes` probed ids in all, and
/// the tail draws when the step samples: all a sampler step reads from the device.
pub fn summary_bytes(rows: usize, probes: usize, tail: bool) -> usize {
    4 * (rows * (STATS + 2 * TOP_K + if tail { 2 } else { 0 }) + probes)
}

pub struct ReduceBuffers {
    pub stats: wgpu::Buffer,
    pub ids: wgpu::Buffer,
    pub vals: wgpu::Buffer,
    /// `[1 + rows·PROBES]`: the tail draws' seed, then the probed ids; written each step.
    pub ask: wgpu::Buffer,
    /// `[rows, 2]` tail draws (id, logit bits), then `[rows, PROBES]` probed logits' bits.
    pub extra: wgpu::Buffer,
    pub rows: usize,
}

impl ReduceBuffers {
    pub fn new(gpu: &Gpu, rows: usize) -> ReduceBuffers {
        ReduceBuffers {
            stats: gpu.storage("reduce.stats", (rows * STATS * 4) as u64),
            ids: gpu.storage("reduce.ids", (rows * TOP_K * 4) as u64),
            vals: gpu.storage("reduce.vals", (rows * TOP_K * 4) as u64),
            ask: gpu.storage("reduce.ask", ((1 + rows * PROBES) * 4) as u64),
            extra: gpu.storage("reduce.extra", (rows.max(1) * (2 + PROBES) * 4) as u64),
            rows,
        }
    }

    /// Writes what the next reduction of `rows` rows is asked: the tail seed and the probed ids.
    pub fn write_ask(&self, gpu: &Gpu, ask: &Ask<'_>) {
        let mut words = Vec::with_capacity(1 + ask.probes.len());
        words.push(ask.tail_seed.unwrap_or(0));
        words.extend_from_slice(ask.probes);
        gpu.queue
            .write_buffer(&self.ask, 0, bytemuck::cast_slice(&words));
    }

    /// Reads back the first `rows` summaries, with what `ask` asked of the reduction: the
    /// logits of its probed ids, and the tail draws when it seeded them.
    pub async fn read(
        &self,
        gpu: &Gpu,
        rows: usize,
        vocab: usize,
        ask: &Ask<'_>,
    ) -> crate::error::Result<Vec<RowSummary>> {
        let tail = ask.tail_seed.is_some();
        let mut parts = vec![
            (&self.stats, 0, (rows * STATS) as u64),
            (&self.ids, 0, (rows * TOP_K) as u64),
            (&self.vals, 0, (rows * TOP_K) as u64),
        ];
        if tail {
            parts.push((&self.extra, 0, (rows * 2) as u64));
        }
        if !ask.probes.is_empty() {
            parts.push((&self.extra, (rows * 2) as u64, ask.probes.len() as u64));
        }
        let words: Vec<u32> = gpu.read(&parts).await?;
        let (stats, rest) = words.split_at(rows * STATS);
        let (ids, rest) = rest.split_at(rows * TOP_K);
        let (vals, rest) = rest.split_at(rows * TOP_K);
        let (tails, probed) = rest.split_at(if tail { rows * 2 } else { 0 });
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
                    tail: tails
                        .get(r * 2..r * 2 + 2)
                        .filter(|t| (t[0] as usize) < vocab)
                        .map(|t| (t[0], f32::from_bits(t[1]))),
                    probed: ask
                        .probes
                        .get(r * PROBES..(r + 1) * PROBES)
                        .map(|ids| {
                            let at = |j: usize| f32::from_bits(probed[r * PROBES + j]);
                            ids.iter().enumerate().map(|(j, &id)| (id, at(j))).collect()
                        })
                        .unwrap_or_default(),
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
    (rows, vocab): (usize, usize),
    temperature: f64,
    probes: bool,
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
            Binding::Read,
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
        &[
            logits, allowed, &out.stats, &out.ids, &out.vals, &out.ask, &out.extra,
        ],
        &ReduceParams {
            rows: rows as u32,
            v: vocab as u32,
            inv_t,
            probes: if probes { PROBES as u32 } else { 0 },
        },
        [(rows as u32).max(1), 1, 1],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::test_gpu;
    use crate::backend::{summarize_rows, tail_draw};

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
        // per row: a token far down the row, and one past the vocabulary (reads −∞)
        let probes: Vec<u32> = (0..rows as u32)
            .flat_map(|r| [r * 37 % 1003, 1003 + r])
            .collect();
        let ask = Ask {
            probes: &probes,
            tail_seed: Some(12345),
            cache: None,
        };
        out.write_ask(&gpu, &ask);
        gpu.run(&[&reduce(&gpu, &lb, &ab, &out, (rows, v), 0.7, true)]);
        let got = crate::blocking::block_on(out.read(&gpu, rows, v, &ask)).unwrap();
        let want_all = summarize_rows(&logits, v, &allowed, 0.7, &probes);
        for r in 0..rows {
            let want = &want_all[r];
            assert_eq!(got[r].probed, want.probed, "row {r} probes");
            assert_eq!(want.probed[1].1, f32::NEG_INFINITY);
            let row = &logits[r * v..(r + 1) * v];
            let tail = tail_draw(row, &allowed, want, 0.7, 12345, r as u32);
            assert!(
                tail.is_some() && got[r].tail == tail,
                "row {r} tail draw: {:?} vs {tail:?}",
                got[r].tail
            );
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
        gpu.run(&[&reduce(&gpu, &lb, &ab, &out, (rows, v), 1.0, false)]);
        let got = crate::blocking::block_on(out.read(&gpu, rows, v, &Ask::default())).unwrap();
        let flags: Vec<bool> = got.iter().map(|s| s.non_finite).collect();
        assert_eq!(flags, [false, true, true, true, false, true]);
        let finite: Vec<bool> = got.iter().map(|s| s.is_finite()).collect();
        assert_eq!(finite, [true, false, false, false, true, false]);
        for s in &got {
            assert!(s.top.iter().all(|t| allowed[t.0 as usize]), "{s:?}");
        }
    }
}
