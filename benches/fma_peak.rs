//! The hardware limit the CPU figures are a fraction of: one core's f32 FMA throughput, from
//! twelve independent chains of 8-wide FMAs (enough to cover the latency on any AVX2 core), and
//! of 16-wide ones where the CPU has AVX-512 (twice the 8-wide rate on cores with two 512-bit
//! units, the same on those that split them, as Zen 4); the higher of the two is the peak.
//! Then every thread of the pool does the same at once. `cargo bench --bench fma_peak`.

use std::time::Instant;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn chains(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_set1_ps(0.0); 12];
    let (a, b) = (_mm256_set1_ps(1.000_000_1), _mm256_set1_ps(0.999_999_9));
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = _mm256_fmadd_ps(*x, a, b);
        }
    }
    let mut out = [0.0f32; 8];
    let mut s = 0.0;
    for x in acc {
        _mm256_storeu_ps(out.as_mut_ptr(), x);
        s += out.iter().sum::<f32>();
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn chains512(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_set1_ps(0.0); 12];
    let (a, b) = (_mm512_set1_ps(1.000_000_1), _mm512_set1_ps(0.999_999_9));
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = _mm512_fmadd_ps(*x, a, b);
        }
    }
    acc.iter().map(|x| _mm512_reduce_add_ps(*x)).sum()
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            println!("no AVX2/FMA on this CPU");
            return;
        }
        let iters = 100_000_000u64;
        let flop = iters as f64 * 12.0 * 8.0 * 2.0;
        let wide = is_x86_feature_detected!("avx512f");
        let run8 = || {
            let t = Instant::now();
            // SAFETY: AVX2 and FMA were detected above
            std::hint::black_box(unsafe { chains(iters) });
            flop / t.elapsed().as_secs_f64() / 1e9
        };
        let run16 = || {
            let t = Instant::now();
            // SAFETY: AVX-512F was detected
            std::hint::black_box(unsafe { chains512(iters / 2) });
            flop / t.elapsed().as_secs_f64() / 1e9
        };
        let one8 = (0..3).map(|_| run8()).fold(0.0, f64::max);
        let one16 = if wide {
            (0..3).map(|_| run16()).fold(0.0, f64::max)
        } else {
            0.0
        };
        if wide {
            println!("8-wide: {one8:.1} GFLOP/s, 16-wide: {one16:.1} GFLOP/s on one core");
        }
        let run = || if one16 > one8 * 1.2 { run16() } else { run8() };
        let one = one8.max(one16);
        let threads = rayon::current_num_threads();
        let all: f64 = rayon::broadcast(|_| run()).iter().sum();
        println!(
            "f32 FMA peak: {one:.1} GFLOP/s on one core, {all:.1} GFLOP/s on {threads} threads"
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    println!("fma_peak measures x86-64 AVX2 only");
}
