//! Dispatcher for `shaders/estimate.wgsl`: a continuous family's clean estimate x̂0, readout
//! token and its probability per row of the head's output, on the device (the reference is
//! `backend::cpu::continuous::estimate`).

use super::{Binding, Call, Gpu, Shader};
use crate::model::plan::Readout;

/// The widest clean vector the kernel takes (its per-thread partial sums are this long).
pub const MAX_WIDTH: usize = 32;

/// `struct Params` of `estimate.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct EstimateParams {
    pub rows: u32,
    /// Columns of one logit row: V (Softmax) or the width (Bits).
    pub cols: u32,
    /// Rows of the table: the ids a readout may name.
    pub v: u32,
    pub w: u32,
    /// 0 Softmax, 1 Bits.
    pub mode: u32,
    /// 1: x̂0 is the readout token's own vector.
    pub rounded: u32,
    /// The bits' ±scale (Bits only).
    pub scale: f32,
    pub _p0: u32,
}

/// Where an estimate writes: x̂0 `[rows, w]` f32, tokens `[rows]` u32, p `[rows]` f32.
pub struct EstimateOut<'a> {
    pub x0: &'a wgpu::Buffer,
    pub tokens: &'a wgpu::Buffer,
    pub prob: &'a wgpu::Buffer,
}

/// x̂0, the readout and its probability of `rows` rows of `logits` (`cols` columns each), with
/// `table` `[v, w]` f32 and `allowed` `[v]` u32.
#[allow(clippy::too_many_arguments)]
pub fn estimate(
    gpu: &Gpu,
    readout: Readout,
    logits: &wgpu::Buffer,
    table: &wgpu::Buffer,
    allowed: &wgpu::Buffer,
    out: &EstimateOut,
    (rows, cols, v, w): (usize, usize, usize, usize),
    round: bool,
) -> Call {
    use super::context::expect_values as at_least;
    assert!(
        (1..=MAX_WIDTH).contains(&w),
        "estimate: width {w} outside 1..={MAX_WIDTH}"
    );
    let (mode, scale) = match readout {
        Readout::Softmax => {
            assert_eq!(
                cols, v,
                "estimate: softmax logits cover the table's {v} ids"
            );
            (0, 0.0)
        }
        Readout::Bits { scale } => {
            assert_eq!(cols, w, "estimate: one logit per bit");
            (1, scale)
        }
    };
    at_least(logits, "estimate logits [rows, cols]", rows * cols);
    at_least(table, "estimate table [V, w]", v * w);
    at_least(allowed, "estimate allowed [V]", v);
    at_least(out.x0, "estimate x0 [rows, w]", rows * w);
    at_least(out.tokens, "estimate tokens [rows]", rows);
    at_least(out.prob, "estimate p [rows]", rows);
    let kernel = gpu.kernel(
        Shader::Estimate,
        &[
            Binding::Read,
            Binding::Read,
            Binding::Read,
            Binding::Write,
            Binding::Write,
            Binding::Write,
            Binding::Uniform,
        ],
        &[],
    );
    gpu.call(
        &kernel,
        &[logits, table, allowed, out.x0, out.tokens, out.prob],
        &EstimateParams {
            rows: rows as u32,
            cols: cols as u32,
            v: v as u32,
            w: w as u32,
            mode,
            rounded: u32::from(round),
            scale,
            _p0: 0,
        },
        [(rows as u32).max(1), 1, 1],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::continuous;
    use crate::backend::gpu::test_gpu;
    use crate::model::matrix::Matrix;

    /// Runs the kernel and the CPU reference on the same rows; returns the largest x̂0 error
    /// and the largest relative p error, after checking the tokens are equal.
    fn compare(
        gpu: &Gpu,
        readout: Readout,
        logits: &[f32],
        table: &Matrix,
        allowed: &[bool],
        round: bool,
    ) -> (f32, f32) {
        let (v, w) = (table.rows, table.cols);
        let cols = match readout {
            Readout::Softmax => v,
            Readout::Bits { .. } => w,
        };
        let rows = logits.len() / cols;
        let (want_x0, want_tok, want_p) =
            continuous::estimate(readout, logits, rows, cols, table, allowed, round);
        let mut t = vec![0.0f32; v * w];
        table.rows_f32(0, v, &mut t);
        let allowed_u: Vec<u32> = allowed.iter().map(|&a| u32::from(a)).collect();
        let (lb, tb, ab) = (
            gpu.upload("logits", logits),
            gpu.upload("table", &t),
            gpu.upload("allowed", &allowed_u),
        );
        let (xb, kb, pb) = (
            gpu.storage("x0", (rows * w * 4) as u64),
            gpu.storage("tokens", (rows * 4) as u64),
            gpu.storage("p", (rows * 4) as u64),
        );
        let out = EstimateOut {
            x0: &xb,
            tokens: &kb,
            prob: &pb,
        };
        gpu.run(&[&estimate(
            gpu,
            readout,
            &lb,
            &tb,
            &ab,
            &out,
            (rows, cols, v, w),
            round,
        )]);
        let x0: Vec<f32> = gpu.read_blocking(&[(&xb, 0, (rows * w) as u64)]).unwrap();
        let tokens: Vec<u32> = gpu.read_blocking(&[(&kb, 0, rows as u64)]).unwrap();
        let p: Vec<f32> = gpu.read_blocking(&[(&pb, 0, rows as u64)]).unwrap();
        assert_eq!(tokens, want_tok, "{readout:?} round={round}: tokens");
        let ex = x0
            .iter()
            .zip(&want_x0)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        let ep = p
            .iter()
            .zip(&want_p)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1e-30))
            .fold(0.0, f32::max);
        eprintln!("{readout:?} V={v} round={round}: max |Δx0| {ex:.2e}, max rel Δp {ep:.2e}");
        (ex, ep)
    }

    /// Softmax over 1000 ids of width 16 (neither a multiple of the workgroup), some ids not
    /// allowed, one of them the true argmax of row 2, and a tie the lower id must win.
    #[test]
    fn softmax_estimate_matches_cpu() {
        let Some(gpu) = test_gpu() else { return };
        let (rows, v, w) = (5, 1000, 16);
        let mut logits: Vec<f32> = (0..rows * v)
            .map(|i| ((i * 7919 % 1009) as f32 / 150.0) - 3.0)
            .collect();
        let table_data: Vec<f32> = (0..v * w)
            .map(|i| ((i * 104729 % 2003) as f32 / 1001.5 - 1.0) * 0.25)
            .collect();
        let table = Matrix::f32(v, w, table_data);
        let mut allowed: Vec<bool> = (0..v).map(|i| i % 11 != 4 && i != 999).collect();
        // row 2's argmax is disallowed; row 3 has two equal best logits, at 700 and 130
        let top = |l: &[f32]| (0..v).fold(0, |b, i| if l[i] > l[b] { i } else { b });
        let row2 = top(&logits[2 * v..3 * v]);
        allowed[row2] = false;
        logits[3 * v + 700] = 9.0;
        logits[3 * v + 130] = 9.0;
        // row 4: a strong peak, so p is near 1
        logits[4 * v + 517] = 30.0;
        let (_, cpu_tokens, _) =
            continuous::estimate(Readout::Softmax, &logits, rows, v, &table, &allowed, false);
        assert_ne!(cpu_tokens[2] as usize, row2);
        assert_eq!(cpu_tokens[3], 130);
        for round in [false, true] {
            let (ex, ep) = compare(&gpu, Readout::Softmax, &logits, &table, &allowed, round);
            assert!(ex < 1e-5, "round={round}: x0 {ex}");
            assert!(ep < 1e-5, "round={round}: p {ep}");
        }
    }

    /// Analog Bits: 12 bits over 4096 ids, and over 3000 (so 12 bits can spell ids past the
    /// table); row 1 spells a disallowed id (the maximum-likelihood fallback runs, its first
    /// choice disallowed too), row 3 an id past 3000, row 2 has a tiny bit logit. (Flips of
    /// equal logits would tie in exact arithmetic and differ in the last bit of each sum:
    /// no such row here.)
    #[test]
    fn bits_estimate_matches_cpu() {
        let Some(gpu) = test_gpu() else { return };
        let (w, scale) = (12, 0.5);
        let spell = |id: usize, mag: &dyn Fn(usize) -> f32| -> Vec<f32> {
            (0..w)
                .map(|b| {
                    let m = mag(b);
                    if (id >> (w - 1 - b)) & 1 == 1 {
                        m
                    } else {
                        -m
                    }
                })
                .collect()
        };
        let mut logits = Vec::new();
        logits.extend(spell(42, &|b| 0.3 + b as f32 * 0.4));
        // the cheapest flip is bit 0 (3282: disallowed, or past the table), then bit 1 (210)
        logits.extend(spell(1234, &|b| 0.5 + b as f32 * 0.3));
        logits.extend(spell(2999, &|b| if b == 7 { 3.5e-4 } else { 2.0 }));
        logits.extend(spell(4000, &|b| 0.1 + b as f32 * 0.05));
        logits.extend(spell(7, &|b| 25.0 - b as f32));
        for v in [4096, 3000] {
            // MSB first, ±scale, as the bits model's table
            let table_data: Vec<f32> = (0..v * w)
                .map(|i| {
                    let (id, b) = (i / w, i % w);
                    if (id >> (w - 1 - b)) & 1 == 1 {
                        scale
                    } else {
                        -scale
                    }
                })
                .collect();
            let table = Matrix::f32(v, w, table_data);
            let mut allowed = vec![true; v];
            for id in [0, 1234, 1235, 1238, 3282].into_iter().filter(|&id| id < v) {
                allowed[id] = false;
            }
            let readout = Readout::Bits { scale };
            let (_, cpu_tokens, _) =
                continuous::estimate(readout, &logits, 5, w, &table, &allowed, false);
            assert_eq!(cpu_tokens[0], 42);
            assert_eq!(cpu_tokens[1], 210);
            assert!((cpu_tokens[3] as usize) < v);
            for round in [false, true] {
                let (ex, ep) = compare(&gpu, readout, &logits, &table, &allowed, round);
                assert!(ex < 1e-5, "V={v} round={round}: x0 {ex}");
                assert!(ep < 1e-5, "V={v} round={round}: p {ep}");
            }
        }
    }
}
