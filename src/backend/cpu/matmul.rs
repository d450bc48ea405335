//! Matrix products through gemm's f32 kernels (`gemm-f32`: packed, SIMD, multi-threaded
//! natively). The `gemm` umbrella crate would also build its f16, f64 and complex kernels,
//! which nothing here calls.

use gemm_common::Parallelism;

use crate::model::matrix::{Matrix, Storage};
use crate::model::plan::Linear;

/// How many threads a large product may use. Natively (and on wasm32 with `wasm-threads`) gemm
/// splits the work over the rayon pool; the plain wasm32 build has no threads.
pub fn parallelism() -> Parallelism {
    #[cfg(any(not(target_arch = "wasm32"), feature = "wasm-threads"))]
    {
        Parallelism::Rayon(0)
    }
    #[cfg(all(target_arch = "wasm32", not(feature = "wasm-threads")))]
    {
        Parallelism::None
    }
}

/// `out[m, n] (+)= a[m, k] · w[n, k]ᵀ` — `w` in PyTorch's `[out, in]` layout.
#[allow(clippy::too_many_arguments)]
pub fn matmul_nt(
    a: &[f32],
    m: usize,
    k: usize,
    w: &[f32],
    n: usize,
    out: &mut [f32],
    accumulate: bool,
    par: Parallelism,
) {
    assert_eq!(a.len(), m * k, "lhs size");
    assert_eq!(w.len(), n * k, "rhs size");
    assert_eq!(out.len(), m * n, "out size");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out.fill(0.0);
        }
        return;
    }
    // The kernel prefers a column-major destination, so a row-major `out` (n > 1) is computed
    // as its transpose: `outᵀ[n, m] = w[n, k] · aᵀ[k, m]`, the operands swapped. This is the
    // orientation the `gemm` front end picks for these strides, so the results are the same
    // bits as through it.
    let (rows, cols, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs) = if n > 1 {
        (n, m, n as isize, 1, w, 1, k as isize, a, k as isize, 1)
    } else {
        (m, n, 1, n as isize, a, 1, k as isize, w, k as isize, 1)
    };
    // SAFETY: the three asserts above bound every index the kernel computes from these
    // strides: out (i, j) at i·n + j, a (i, p) at i·k + p, w (j, p) at j·k + p.
    unsafe {
        gemm(
            (rows, cols, k),
            (out.as_mut_ptr(), dst_cs, dst_rs),
            (lhs.as_ptr(), lhs_cs, lhs_rs),
            (rhs.as_ptr(), rhs_cs, rhs_rs),
            accumulate,
            par,
        )
    }
}

/// gemm's f32 kernel: `dst[rows, cols] (+)= lhs[rows, k] · rhs[k, cols]`, each operand a
/// pointer with its column and row strides.
///
/// # Safety
/// Every element the shapes and strides address must lie inside its buffer, and `dst` must
/// not overlap the operands.
unsafe fn gemm(
    (rows, cols, k): (usize, usize, usize),
    (dst, dst_cs, dst_rs): (*mut f32, isize, isize),
    (lhs, lhs_cs, lhs_rs): (*const f32, isize, isize),
    (rhs, rhs_cs, rhs_rs): (*const f32, isize, isize),
    accumulate: bool,
    par: Parallelism,
) {
    gemm_f32::gemm::f32::get_gemm_fn()(
        rows, cols, k, dst, dst_cs, dst_rs, accumulate, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs,
        1.0, 1.0, false, false, false, par,
    )
}

/// `out[m, n] = a[m, k] · w[n, k]ᵀ` as one parallel loop over blocks of output columns, each
/// a single-threaded gemm. gemm's own threading opens one parallel region per cache block of
/// the product, dozens per forward pass; each wakes the pool, which in the browser costs far
/// more than natively. One region per product keeps the second thread's gain.
#[cfg(all(target_arch = "wasm32", feature = "wasm-threads"))]
fn by_column_blocks(a: &[f32], m: usize, k: usize, w: &[f32], n: usize, out: &mut [f32]) {
    use rayon::prelude::*;
    let threads = rayon::current_num_threads();
    // a product below gemm's own threading threshold is not worth splitting either
    if threads <= 1 || m * n * k < 48 * 48 * 256 || n < 2 * 32 {
        matmul_nt(a, m, k, w, n, out, false, Parallelism::None);
        return;
    }
    // column blocks rounded to 32 (whole kernel tiles), one per thread
    let block = n.div_ceil(threads).next_multiple_of(32);
    struct Out(*mut f32);
    // SAFETY: each task writes only its own columns n0..n1 of `out`
    unsafe impl Sync for Out {}
    let dst = Out(out.as_mut_ptr());
    let dst = &dst;
    (0..n.div_ceil(block)).into_par_iter().for_each(|b| {
        let (n0, n1) = (b * block, ((b + 1) * block).min(n));
        // SAFETY: as in `matmul_nt`, with rows n0..n1 of `w` and columns n0..n1 of the
        // row-major `out` (its transpose's rows, stride 1 between them, n between columns)
        unsafe {
            gemm(
                (n1 - n0, m, k),
                (dst.0.add(n0), n as isize, 1),
                (w[n0 * k..n1 * k].as_ptr(), 1, k as isize),
                (a.as_ptr(), k as isize, 1),
                false,
                Parallelism::None,
            )
        }
    });
}

/// `x[rows, in] · Wᵀ + b`
pub fn linear(x: &[f32], rows: usize, lin: &Linear) -> Vec<f32> {
    let (n, k) = (lin.out_dim(), lin.in_dim());
    // Panels, and (where the panel kernel runs) halves, q8 and q4 widened into panels; f32 rows
    // (a plan that was not prepared, any CPU without AVX2) go through gemm. The bias is added
    // in the kernel's last depth block, while the tile is in registers.
    let paneled = matches!(lin.weight.storage, Storage::Panels(_));
    if paneled || (lin.weight.as_f32().is_none() && super::panels::available()) {
        return super::panels::matmul_new(x, rows, &lin.weight, lin.bias.as_deref(), true);
    }
    // Written by the kernels' threads first, so the pages of a large output (the 50k-wide head)
    // are faulted in parallel rather than by a serial bias fill.
    let mut out = vec![0.0f32; rows * n];
    match lin.weight.as_f32() {
        #[cfg(all(target_arch = "wasm32", feature = "wasm-threads"))]
        Some(w) => by_column_blocks(x, rows, k, w, n, &mut out),
        #[cfg(not(all(target_arch = "wasm32", feature = "wasm-threads")))]
        Some(w) => matmul_nt(x, rows, k, w, n, &mut out, false, parallelism()),
        None => by_row_blocks(x, rows, &lin.weight, &mut out),
    }
    if let Some(b) = &lin.bias {
        super::for_rows(&mut out, n, |r| {
            r.iter_mut().zip(b).for_each(|(v, b)| *v += b)
        });
    }
    out
}

/// `out[m, n] = a[m, k] · W[n, k]ᵀ` for a matrix held in f16, bf16, q8_0 or q4_0: each task widens a
/// row block of W ([`block_rows`] rows) to f32 and multiplies it with a single-threaded gemm
/// into its own columns of `out`. The model is never widened whole, and each weight is read
/// once per product. (A "panel" is only the interleaved layout of `panels.rs`.)
fn by_row_blocks(a: &[f32], m: usize, w: &Matrix, out: &mut [f32]) {
    let (n, k) = (w.rows, w.cols);
    assert_eq!(a.len(), m * k, "lhs size");
    assert_eq!(out.len(), m * n, "out size");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        out.fill(0.0);
        return;
    }
    let rows = super::panels::block_rows(k);
    struct Out(*mut f32);
    // SAFETY: each task writes only its own columns n0..n1 of `out`
    unsafe impl Sync for Out {}
    let dst = Out(out.as_mut_ptr());
    let dst = &dst;
    let task = |block: &mut Vec<f32>, p: usize| {
        let (n0, n1) = (p * rows, ((p + 1) * rows).min(n));
        block.resize((n1 - n0) * k, 0.0);
        w.rows_f32(n0, n1, block);
        // SAFETY: as in `by_column_blocks`: the block is rows n0..n1 of W ([n1 − n0, k],
        // contiguous), written to columns n0..n1 of the row-major `out` (stride n)
        unsafe {
            gemm(
                (n1 - n0, m, k),
                (dst.0.add(n0), n as isize, 1),
                (block.as_ptr(), 1, k as isize),
                (a.as_ptr(), k as isize, 1),
                false,
                Parallelism::None,
            )
        }
    };
    let blocks = n.div_ceil(rows);
    #[cfg(any(not(target_arch = "wasm32"), feature = "wasm-threads"))]
    {
        use rayon::prelude::*;
        (0..blocks)
            .into_par_iter()
            .for_each_init(Vec::new, |block, p| task(block, p));
    }
    #[cfg(all(target_arch = "wasm32", not(feature = "wasm-threads")))]
    {
        let mut block = Vec::new();
        (0..blocks).for_each(|p| task(&mut block, p));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tensor::Tensor;

    /// `a[m, k] · w[n, k]ᵀ (+ b)` summed in f64: the reference of this file's and the panel
    /// kernel's tests.
    pub(crate) fn naive(
        a: &[f32],
        m: usize,
        k: usize,
        w: &[f32],
        n: usize,
        b: Option<&[f32]>,
    ) -> Vec<f32> {
        let mut o = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|p| a[i * k + p] as f64 * w[j * k + p] as f64)
                    .sum();
                o[i * n + j] = (dot + b.map_or(0.0, |b| b[j] as f64)) as f32;
            }
        }
        o
    }

    #[test]
    fn half_and_quantised_row_blocks_match_their_widened_weights() {
        use crate::model::matrix::{half_bytes, Bytes, Half};
        // n spans several row blocks and ends in a partial one; k is odd
        for &(m, k, n) in &[(1, 5, 3), (9, 1031, 77), (33, 65, 600)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0)
                .collect();
            let mats = [
                Matrix::half(n, k, Half::F16, Bytes::owned(half_bytes(Half::F16, &w))),
                Matrix::half(n, k, Half::Bf16, Bytes::owned(half_bytes(Half::Bf16, &w))),
                Matrix::f32(n, k, w.clone()).quantized().unwrap(),
                Matrix::f32(n, k, w.clone()).quantized_q4().unwrap(),
            ];
            for mat in mats {
                let want = naive(&a, m, k, &mat.to_f32(), n, None);
                let lin = Linear::from_matrix(mat.clone(), None);
                let got = linear(&a, m, &lin);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() < 1e-3,
                        "{} ({m},{k},{n}) at {i}: {g} vs {w}",
                        mat.dtype()
                    );
                }
            }
        }
    }

    #[test]
    fn matches_naive_on_odd_shapes() {
        for &(m, k, n) in &[(1, 1, 1), (7, 13, 5), (33, 65, 17), (130, 31, 257)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0)
                .collect();
            let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
            let lin = Linear::new(
                Tensor::new(vec![n, k], w.clone()),
                Some(Tensor::new(vec![n], b.clone())),
            );
            let got = linear(&a, m, &lin);
            let want = naive(&a, m, k, &w, n, None);
            for i in 0..m {
                for j in 0..n {
                    let d = (got[i * n + j] - want[i * n + j] - b[j]).abs();
                    assert!(d < 1e-4, "({m},{k},{n}) at ({i},{j}): {d}");
                }
            }
        }
    }
}
