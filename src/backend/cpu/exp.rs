//! `exp` as straight-line f32 arithmetic (Cephes' `expf` reduction and polynomial), so loops
//! over slices compile to AVX2/SIMD128 code instead of one libm call per value. libm's `expf`
//! was 3.3% of a forward at L = 128 (perf, MDLM-OWT shape, 2 threads): GELU's and softmax's.
//! Within 2 ulp of the correctly rounded result over the range that does not overflow.

const LOG2E: f32 = std::f32::consts::LOG2_E;
const ROUND: f32 = 12_582_912.0;
/// ln 2 split in two so `n · ln 2` subtracts exactly for the |n| ≤ 127 that can occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Below this e^x is under f32's smallest normal: 0 (what softmax's hidden keys, −∞, need).
const LO: f32 = -87.336_55;
/// Above this e^x overflows.
const HI: f32 = 88.722_83;

/// `a.max(b)` where `b` is not NaN, as a comparison: in WebAssembly `f32::max` is a call to
/// libm's `fmaxf` (wasm's own `max` returns NaN where Rust's returns the other operand), one
/// call per value that kept softmax's and GELU's loops from vectorising (6% of a forward at
/// L = 512 in Node's profile). A NaN `a` gives `b`, as `f32::max` does.
#[inline(always)]
pub fn max(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// `a.min(b)` where `b` is not NaN (see [`max`]).
#[inline(always)]
pub fn min(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // max/min, not clamp: they drop a NaN, so every step below stays finite and in range, and
    // the integer part is read from the rounding's bits rather than by a saturating `as i32`
    // (a scalar conversion per value, which kept the loops from vectorising)
    let c = min(max(x, LO), HI);
    let t = c * LOG2E + ROUND;
    let n = t - ROUND;
    let ni = t.to_bits() as i32 - ROUND.to_bits() as i32;
    let r = c - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n by the exponent bits; n is within [−126, 128], and 2^128 is 2^127 · 2
    let scaled =
        y * f32::from_bits(((ni.min(127) + 127) as u32) << 23) * if ni > 127 { 2.0 } else { 1.0 };
    if x < LO {
        0.0
    } else if x > HI {
        f32::INFINITY
    } else if x.is_nan() {
        x
    } else {
        scaled
    }
}

/// `x ← f(x)` over a slice, compiled for AVX2 where the CPU has it (the default x86-64 target
/// is SSE2: half the width). The arithmetic is the same either way (Rust never fuses a·b + c),
/// so the results are the same bits on both paths.
#[inline]
pub fn map(x: &mut [f32], f: impl Fn(f32) -> f32) {
    #[cfg(target_arch = "x86_64")]
    if super::panels::available() {
        // SAFETY: AVX2 and FMA are present
        unsafe { map_avx2(x, &f) };
        return;
    }
    x.iter_mut().for_each(|v| *v = f(*v));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn map_avx2<F: Fn(f32) -> f32>(x: &mut [f32], f: &F) {
    x.iter_mut().for_each(|v| *v = f(*v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_two_ulp_of_libm_everywhere_that_counts() {
        let mut worst = 0u32;
        let mut x = -87.0f32;
        while x < 88.5 {
            let (got, want) = (exp(x), (x as f64).exp() as f32);
            let ulp = (got.to_bits() as i64 - want.to_bits() as i64).unsigned_abs() as u32;
            worst = worst.max(ulp);
            x += 0.000_37;
        }
        assert!(worst <= 2, "worst error {worst} ulp");
    }

    #[test]
    fn edges() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn the_vector_loop_gives_the_scalar_bits() {
        // the AVX2 compilation of `map` (where the CPU has it) against `exp` one value at a time
        let xs: Vec<f32> = (0..10_007).map(|i| (i as f32 - 5000.0) * 0.0191).collect();
        let mut v = xs.clone();
        map(&mut v, exp);
        for (g, x) in v.iter().zip(&xs) {
            assert_eq!(g.to_bits(), exp(*x).to_bits(), "at {x}");
        }
    }
}
