//! The CPU's f32 product paths side by side on the MDLM-OWT shapes: gemm over row-major
//! weights (packing them on every call) and each build of the panel kernel this CPU runs
//! (`panels::Kernel`) over weights packed once (`backend/cpu/panels.rs`), interleaved call by
//! call so a noisy machine affects all alike. Best of N, as GFLOP/s; the builds must give the
//! same bits. `cargo bench --bench matmul_shapes [-- M]` (M rows, default 128);
//! `SHAPES=768x2304,3072x768` (k x n) picks shapes, `RAYON_NUM_THREADS` the threads.

use std::time::Instant;
use unmask::backend::cpu::{matmul::linear, panels, panels::Kernel};
use unmask::model::matrix::Matrix;
use unmask::model::plan::Linear;

fn main() {
    if !panels::available() {
        println!("this CPU has no AVX2/FMA: the panel kernel does not run here");
        return;
    }
    let m: usize = std::env::args()
        .skip(1)
        .find_map(|s| s.parse().ok())
        .unwrap_or(128);
    let shapes: Vec<(usize, usize)> = match std::env::var("SHAPES") {
        Ok(v) => v
            .split(',')
            .filter_map(|p| {
                let (k, n) = p.split_once('x')?;
                Some((k.parse().ok()?, n.parse().ok()?))
            })
            .collect(),
        Err(_) => vec![
            (768, 2304),
            (768, 768),
            (768, 3072),
            (3072, 768),
            (768, 50258),
        ],
    };
    println!(
        "m = {m}, {} threads; best of N calls",
        rayon::current_num_threads()
    );
    for &(k, n) in &shapes {
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 500.0)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 480.0)
            .collect();
        let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.01).collect();
        let rows = Matrix::f32(n, k, w);
        let packed = rows.paneled();
        let lin = Linear::from_matrix(rows, Some(b.clone()));
        let reps = if n > 10000 { 10 } else { 60 };
        let kernels: Vec<Kernel> = Kernel::X86.into_iter().filter(|k| k.runs_here()).collect();
        let mut best_g = f64::MAX;
        let mut best = vec![f64::MAX; kernels.len()];
        let mut want = vec![];
        let mut got = vec![vec![0.0f32; m * n]; kernels.len()];
        for _ in 0..reps {
            let t = Instant::now();
            want = linear(&a, m, &lin);
            best_g = best_g.min(t.elapsed().as_secs_f64() * 1e3);
            for ((&kernel, best), got) in kernels.iter().zip(&mut best).zip(&mut got) {
                let t = Instant::now();
                let mut o = vec![0.0f32; m * n];
                panels::matmul_with(kernel, &a, m, &packed, Some(&b), &mut o);
                *best = best.min(t.elapsed().as_secs_f64() * 1e3);
                *got = o;
            }
        }
        let diff = got[0]
            .iter()
            .zip(&want)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        for (kernel, other) in kernels.iter().zip(&got) {
            assert!(other == &got[0], "{kernel:?} gave other bits");
        }
        let gf = 2.0 * (m * n * k) as f64 / 1e6;
        let rates: Vec<String> = kernels
            .iter()
            .zip(&best)
            .map(|(k, ms)| format!("{} {ms:>8.2} ms {:>6.1}", k.name(), gf / ms))
            .collect();
        println!(
            "k {k:>5} n {n:>6}: gemm {best_g:>8.2} ms {:>6.1} | {} GFLOP/s | max |diff| vs gemm {diff:.1e}",
            gf / best_g,
            rates.join(" | ")
        );
    }
}
