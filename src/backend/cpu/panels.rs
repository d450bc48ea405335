//! `out[m, n] = a[m, k] · Wᵀ (+ bias)` for f32 weights held in 16-row panels
//! ([`Storage::Panels`]), with an AVX2/FMA kernel: x86-64's fast path, as onnxruntime's MLAS
//! packs its constant weights once at session creation.
//!
//! Why not gemm's kernel alone: gemm packs the weight operand on every product. The weights are
//! the large operand here (every one is read once per forward pass), so that packing pass was
//! 15% of a forward at L = 128 (perf, MDLM-OWT shape, 2 threads). Packed once at load, each
//! weight is read from memory straight into the kernel.
//!
//! The kernel computes a tile of up to 6 rows of `a` × one 16-wide panel in 12 ymm
//! accumulators, over a depth block of [`DEPTH`] (so the panel's lines stay in L1 while every
//! row of `a` passes them). `a` is packed in 6-row tiles per product (it is small: m × k), so
//! the six broadcasts of a step read one stream. Matrices held in f16, bf16, q8_0 or q4_0 are
//! widened into the same panels a few at a time, so one kernel serves every stored format.
//! Where the CPU has AVX-512F the same loops run 6 rows × 2 panels in zmm registers
//! (`Kernel`), with the same bits. In WebAssembly with simd128 the same loops run a 4-lane
//! build ([`Kernel::Simd128`]): the same products in the same order, each a multiply and an
//! add, as base simd128 has no fused multiply-add. `UNMASK_CPU_KERNEL` ([`KERNEL_VAR`]) forces
//! an x86 build. A second AVX2 tile, 3 rows × 2 panels with fewer loads per FMA, runs only where
//! that variable asks for it ([`Kernel::Avx2Pairs`]).
// The kernels run on x86-64 and on wasm32 with simd128; elsewhere `available()` is false and
// only the tests run the 4-lane build (on plain arrays).
#![cfg_attr(
    not(any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    )),
    allow(dead_code, unused_imports, unused_variables)
)]

use std::mem::MaybeUninit;

use crate::model::matrix::{Line, Matrix, Storage, PANEL};

/// Depth of one block: a 16 KB slice of a panel, resident in L1 across all rows of `a`.
const DEPTH: usize = 256;

/// About this many f32 weights are widened at a time: a row block that stays in a core's L2
/// between being written and being read by the kernel (or packed by gemm in `matmul.rs`).
const BLOCK_VALUES: usize = 1 << 16;

/// Rows of a 16-bit, q8 or q4 W widened to f32 per task: a multiple of 16 (whole kernel tiles and
/// whole panels), 16 to 256.
pub fn block_rows(k: usize) -> usize {
    (BLOCK_VALUES / k.max(1))
        .next_multiple_of(16)
        .clamp(16, 256)
}
/// Output values (f32) per group of panels: 128 KB, half a Zen 3 core's L2.
const OUT_BLOCK: usize = 1 << 15;
/// Rows of `a` per tile: 6 × 2 accumulators, 2 weight vectors and a broadcast fill 15 of the
/// 16 ymm registers.
const TILE: usize = 6;

/// Whether this CPU runs the panel kernel (checked once; std caches the answer). Always in a
/// wasm32 build with simd128 (the module would not have been instantiated without it).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        true
    }
    #[cfg(not(any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    )))]
    {
        false
    }
}

/// The builds of the kernel: 16 ymm registers (AVX2 + FMA), or 32 zmm registers, where a
/// panel's line is one register (AVX-512F). The x86 builds add the same products in the same
/// order, lane by lane, so they give the same bits. `Simd128`, WebAssembly's: the same order
/// with a multiply and an add per product (rounded twice, where FMA rounds once), so its bits
/// are those of plain scalar arithmetic in that order, which the tests check on plain arrays
/// (the build off wasm32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// 6 rows × 1 panel (16 columns) in 12 ymm accumulators: 2 weight loads and 6 broadcasts
    /// per 12 FMAs.
    Avx2,
    /// 3 rows × 2 panels (32 columns) in 12 ymm accumulators: 4 weight loads and 3 broadcasts
    /// per 12 FMAs. Only where [`KERNEL_VAR`] asks for it (`avx2-3x32`): on the one machine
    /// measured (AVX-512, forced to AVX2) it was no faster than [`Kernel::Avx2`], whose loop
    /// there already runs near the 8-wide FMA peak; kept to be measured on AVX2-only CPUs.
    Avx2Pairs,
    /// 6 rows × 2 panels in 12 zmm accumulators: 2 weight loads and 6 broadcasts per 12 FMAs
    /// of twice the width.
    Avx512,
    /// WebAssembly's 2 rows × 1 panel in 4-lane vectors, a multiply and an add per product
    /// (plain arrays off wasm32, for the tests).
    Simd128,
}

/// The environment variable that forces an x86 build of the kernel: `avx2` or `avx512` (or
/// `avx2-3x32`, [`Kernel::Avx2Pairs`]).
pub const KERNEL_VAR: &str = "UNMASK_CPU_KERNEL";

impl Kernel {
    /// The x86-64 builds (fused multiply-adds, the same bits), in the order benches and tests
    /// list them: the ones [`KERNEL_VAR`] names.
    pub const X86: [Kernel; 3] = [Kernel::Avx2, Kernel::Avx2Pairs, Kernel::Avx512];

    /// The build the products use: [`KERNEL_VAR`] where it names one this CPU runs, else the
    /// fastest here (read once; a name this CPU cannot run, or an unknown one, is said once on
    /// stderr and ignored).
    pub fn best() -> Kernel {
        static CHOSEN: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let value = std::env::var_os(KERNEL_VAR).unwrap_or_default();
            Kernel::chosen(&value.to_string_lossy()).unwrap_or_else(|(k, warning)| {
                eprintln!("unmask: {warning}");
                k
            })
        })
    }

    /// The build [`KERNEL_VAR`]`=value` asks for (the fastest where empty), or the fastest
    /// with the reason it was not taken.
    fn chosen(value: &str) -> Result<Kernel, (Kernel, String)> {
        let fastest = Kernel::fastest();
        let value = value.trim();
        match Kernel::named(value) {
            _ if value.is_empty() => Ok(fastest),
            Some(k) if k.runs_here() => Ok(k),
            Some(k) => Err((
                fastest,
                format!(
                    "{KERNEL_VAR}={value}: this CPU cannot run the {} kernel; using {}",
                    k.name(),
                    fastest.name()
                ),
            )),
            None => Err((
                fastest,
                format!(
                    "{KERNEL_VAR}={value}: not a kernel (avx2, avx512 or avx2-3x32); using {}",
                    fastest.name()
                ),
            )),
        }
    }

    /// AVX-512 where the CPU has it: half the instructions and loads per product, and on
    /// CPUs with two 512-bit FMA units twice the peak. Simd128 in WebAssembly.
    fn fastest() -> Kernel {
        if cfg!(target_arch = "wasm32") {
            return Kernel::Simd128;
        }
        if Kernel::Avx512.runs_here() {
            Kernel::Avx512
        } else {
            Kernel::Avx2
        }
    }

    /// The kernel's name, as [`KERNEL_VAR`] takes it.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Avx2 => "avx2",
            Kernel::Avx2Pairs => "avx2-3x32",
            Kernel::Avx512 => "avx512",
            Kernel::Simd128 => "simd128",
        }
    }

    fn named(name: &str) -> Option<Kernel> {
        Kernel::X86
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }

    /// Whether this CPU runs this build.
    pub fn runs_here(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Kernel::Avx2 | Kernel::Avx2Pairs => available(),
                Kernel::Avx512 => available() && std::arch::is_x86_feature_detected!("avx512f"),
                Kernel::Simd128 => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Kernel::Simd128
        }
    }

    /// # Safety
    /// As [`avx2::panels`], and `self.runs_here()`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn panels(
        self,
        a: &[f32],
        m: usize,
        k: usize,
        lines: &[Line],
        bias: Option<&[f32]>,
        n: usize,
        out: *mut f32,
        ldc: usize,
        j0: usize,
        j1: usize,
    ) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => avx2::panels::<false>(a, m, k, lines, bias, n, out, ldc, j0, j1),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Pairs => avx2::panels::<true>(a, m, k, lines, bias, n, out, ldc, j0, j1),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => avx512::panels(a, m, k, lines, bias, n, out, ldc, j0, j1),
            Kernel::Simd128 => simd128::panels(a, m, k, lines, bias, n, out, ldc, j0, j1),
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Avx2 | Kernel::Avx2Pairs | Kernel::Avx512 => {
                unreachable!("{self:?} runs only on x86-64")
            }
        }
    }
}

/// `out[m, n] = a[m, k] · Wᵀ + bias`. A matrix held as panels is read in place; one held in
/// f16, bf16, q8_0, q4_0 (or f32 rows) is widened a few panels at a time, each task into its own
/// buffer that stays in L2 until the kernel has read it. Panics where [`available`] is false
/// (callers check it).
pub fn matmul(a: &[f32], m: usize, w: &Matrix, bias: Option<&[f32]>, out: &mut [f32]) {
    product(a, m, w, bias, as_uninit(out), true, Kernel::best())
}

/// [`matmul`] with a given build of the kernel (benchmarks compare them). Panics where this CPU
/// does not run it.
pub fn matmul_with(
    kernel: Kernel,
    a: &[f32],
    m: usize,
    w: &Matrix,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    product(a, m, w, bias, as_uninit(out), true, kernel)
}

/// [`matmul`] into a new vector, never zeroed: the kernel writes every value before any is
/// read (its first depth block stores without loading), so the zeroing pass is saved.
/// `parallel: false` keeps it on the calling thread (attention runs its heads in parallel).
pub fn matmul_new(
    a: &[f32],
    m: usize,
    w: &Matrix,
    bias: Option<&[f32]>,
    parallel: bool,
) -> Vec<f32> {
    let len = m * w.rows;
    let mut out = Vec::with_capacity(len);
    product(
        a,
        m,
        w,
        bias,
        &mut out.spare_capacity_mut()[..len],
        parallel,
        Kernel::best(),
    );
    // SAFETY: `product` initialised all `len` values (every row and column of the product)
    unsafe { out.set_len(len) };
    out
}

fn as_uninit(out: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: initialised values may always be viewed as possibly uninitialised ones
    unsafe { &mut *(out as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// Writes every value of `out` (`[m, n]`).
fn product(
    a: &[f32],
    m: usize,
    w: &Matrix,
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
    parallel: bool,
    kernel: Kernel,
) {
    let (n, k) = (w.rows, w.cols);
    assert_eq!(a.len(), m * k, "lhs size");
    assert_eq!(out.len(), m * n, "out size");
    if let Storage::Panels(lines) = &w.storage {
        assert_eq!(lines.len(), n.div_ceil(PANEL) * k, "panel size");
    }
    if let Some(b) = bias {
        assert_eq!(b.len(), n, "bias size");
    }
    assert!(
        kernel.runs_here(),
        "{kernel:?} is not available on this CPU"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for r in out.chunks_exact_mut(n) {
            for (j, v) in r.iter_mut().enumerate() {
                v.write(bias.map_or(0.0, |b| b[j]));
            }
        }
        return;
    }
    {
        let panels = n.div_ceil(PANEL);
        struct Out(*mut f32);
        // SAFETY: each task writes only the columns of its own panels
        unsafe impl Sync for Out {}
        let dst = Out(out.as_mut_ptr().cast::<f32>());
        let dst = &dst;
        // `a` in tiles of 6 rows, interleaved by depth (row-padded with zeros): the kernel's
        // six broadcasts per step then read one stream instead of six rows `k` apart.
        let tiles = m.div_ceil(TILE);
        let mut packed = vec![0.0f32; tiles * k * TILE];
        let pack = |t: usize, dst: &mut [f32]| {
            let rows = &a[t * TILE * k..((t + 1) * TILE).min(m) * k];
            if rows.len() == TILE * k {
                // one pass writing in order, six rows read side by side
                for (p, d) in dst.chunks_exact_mut(TILE).enumerate() {
                    *d.first_chunk_mut::<TILE>().expect("a tile") =
                        std::array::from_fn(|r| rows[r * k + p]);
                }
            } else {
                for (r, row) in rows.chunks_exact(k).enumerate() {
                    for (p, &x) in row.iter().enumerate() {
                        dst[p * TILE + r] = x;
                    }
                }
            }
        };
        // Shared out among the threads for a large `a` (the down projection's is 6 MB at
        // L = 512): packed by one thread, it kept the other waiting for 2% of a forward pass.
        #[cfg(any(not(target_arch = "wasm32"), feature = "wasm-threads"))]
        let shared = parallel && super::threads() > 1 && packed.len() >= 1 << 16;
        #[cfg(all(target_arch = "wasm32", not(feature = "wasm-threads")))]
        let shared = false;
        if shared {
            #[cfg(any(not(target_arch = "wasm32"), feature = "wasm-threads"))]
            {
                use rayon::prelude::*;
                packed
                    .par_chunks_exact_mut(k * TILE)
                    .enumerate()
                    .for_each(|(t, dst)| pack(t, dst));
            }
        } else {
            for (t, dst) in packed.chunks_exact_mut(k * TILE).enumerate() {
                pack(t, dst);
            }
        }
        let a = &packed;
        let threads = if parallel { super::threads() } else { 1 };
        let run = |per: usize, task: &(dyn Fn(usize, usize) + Sync)| {
            let tasks = panels.div_ceil(per);
            if threads <= 1 || tasks <= 1 || m * n * k < 1 << 18 {
                (0..tasks).for_each(|t| task(t * per, ((t + 1) * per).min(panels)));
            } else {
                super::for_each_index(tasks, |t| task(t * per, ((t + 1) * per).min(panels)));
            }
        };
        match &w.storage {
            Storage::Panels(lines) => {
                // SAFETY: the asserts above bound every access: rows of `a` below m, depth
                // below k, lines of panels j0..j1, columns j·16 .. min(j·16 + 16, n) of rows
                // below m, and tasks own disjoint panels
                let task = |j0: usize, j1: usize| unsafe {
                    kernel.panels(a, m, k, lines, bias, n, dst.0, n, j0, j1)
                };
                // enough tasks for the pool to balance, each a run of whole panels
                run(panels.div_ceil(4 * threads).max(1), &task);
            }
            _ => {
                let per = (block_rows(k) / PANEL).max(1);
                let task = |j0: usize, j1: usize| {
                    let (r0, r1) = (j0 * PANEL, (j1 * PANEL).min(n));
                    let bias = bias.map(|b| &b[r0..]);
                    WIDENED.with_borrow_mut(|(row, lines)| {
                        widen(w, r0, r1, row, lines);
                        // SAFETY: as above, for the panels j0..j1 moved to the front of a
                        // local buffer: their columns start at r0 and n − r0 of them are valid
                        unsafe {
                            kernel.panels(
                                a,
                                m,
                                k,
                                lines,
                                bias,
                                n - r0,
                                dst.0.add(r0),
                                n,
                                0,
                                j1 - j0,
                            )
                        }
                    });
                };
                run(per, &task);
            }
        }
    }
}

thread_local! {
    /// Each thread's row and panel buffers for widening, kept between tasks (a few hundred KB;
    /// made for every task they would be page-faulted in again).
    static WIDENED: std::cell::RefCell<(Vec<f32>, Vec<Line>)> = Default::default();
}

/// Rows `r0..r1` of `w` (r0 a multiple of 16) as panels in `lines`: each panel's 16 rows
/// widened into `rows` (zeros past r1), then turned into lines (8 × 8 values at a time with
/// AVX2).
fn widen(w: &Matrix, r0: usize, r1: usize, rows: &mut Vec<f32>, lines: &mut Vec<Line>) {
    let k = w.cols;
    rows.resize(PANEL * k, 0.0);
    lines.resize((r1 - r0).div_ceil(PANEL) * k, Line([0.0; PANEL]));
    for (j, panel) in lines.chunks_exact_mut(k).enumerate() {
        let (a, b) = (r0 + j * PANEL, (r0 + (j + 1) * PANEL).min(r1));
        w.rows_f32(a, b, &mut rows[..(b - a) * k]);
        rows[(b - a) * k..].fill(0.0);
        #[cfg(target_arch = "x86_64")]
        if available() {
            // SAFETY: AVX2 is present; `rows` is [16, k], `panel` [k]
            unsafe { avx2::transpose(rows, k, panel) };
            continue;
        }
        for (q, line) in panel.iter_mut().enumerate() {
            line.0 = std::array::from_fn(|r| rows[r * k + q]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Line, DEPTH, OUT_BLOCK, PANEL, TILE};
    use std::arch::x86_64::*;

    /// Panels `j0..j1` of the product, all rows of `a`, depth block by depth block: each panel
    /// against 6 rows at a time (the 6 × 16 tile, [`super::Kernel::Avx2`]), or with `PAIRS`
    /// panels in pairs against 3 rows at a time (the 3 × 32 tile, the halves of a packed 6-row
    /// tile, [`super::Kernel::Avx2Pairs`]; a group's lone last panel still against 6 rows).
    ///
    /// # Safety
    /// AVX2 and FMA present; `a` is `a` packed in tiles (`[⌈m/6⌉, k, 6]`), `lines` panels
    /// `[.., k]` whose first `n` columns are valid, `bias` at least `n` long, `out` rows of
    /// stride `ldc` with `n` columns from panel 0's, and no other thread writes the columns of
    /// panels `j0..j1`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn panels<const PAIRS: bool>(
        a: &[f32],
        m: usize,
        k: usize,
        lines: &[Line],
        bias: Option<&[f32]>,
        n: usize,
        out: *mut f32,
        ldc: usize,
        j0: usize,
        j1: usize,
    ) {
        // Panels go in groups whose output columns (m × 16 × group) stay in L2 while every
        // depth block passes them: one pass per depth block over the whole output would send
        // a wide output (the 50k-wide head: 26 MB at m = 128) through memory once per block.
        // With PAIRS, groups of whole pairs.
        let group = (OUT_BLOCK / (m * PANEL).max(1)).max(1);
        let group = if PAIRS {
            group.max(2).next_multiple_of(2)
        } else {
            group
        };
        let mut g0 = j0;
        while g0 < j1 {
            let g1 = (g0 + group).min(j1);
            let mut p0 = 0;
            while p0 < k {
                let depth = DEPTH.min(k - p0);
                let (first, last) = (p0 == 0, p0 + depth == k);
                let mut j = g0;
                while j < g1 {
                    let pair = PAIRS && j + 1 < g1;
                    let np = if pair { 2 } else { 1 };
                    let cols = (np * PANEL).min(n - j * PANEL);
                    let mut b = Wide([0.0; 2 * PANEL]);
                    if let (true, Some(bias)) = (last, bias) {
                        b.0[..cols].copy_from_slice(&bias[j * PANEL..j * PANEL + cols]);
                    }
                    let w = lines.as_ptr().add(j * k + p0);
                    // the lines the next panel (or pair) reads, or the next block's first, fetched
                    // while the first tile of this one computes
                    let next = if j + np < g1 {
                        w.add(np * k)
                    } else if !last {
                        lines.as_ptr().add(g0 * k + p0 + depth)
                    } else {
                        lines.as_ptr().add(g1.min(j1 - 1) * k)
                    };
                    let t = Block {
                        depth,
                        w,
                        k,
                        cols,
                        ldc,
                        load: !first,
                        bias: &b,
                    };
                    let (a, c) = (a.as_ptr().add(p0 * TILE), out.add(j * PANEL));
                    if pair {
                        t.rows::<3, 4>(a, m, k, c, next);
                    } else {
                        t.rows::<6, 2>(a, m, k, c, next);
                    }
                    j += np;
                }
                p0 += depth;
            }
            g0 = g1;
        }
    }

    /// Two panels' worth of values (bias, or a partial row), aligned for ymm loads.
    #[repr(align(64))]
    struct Wide([f32; 2 * PANEL]);

    /// One depth block of one or two panels (`V` = 2 or 4 ymm vectors of 8 columns), applied
    /// to tiles of rows.
    struct Block<'b> {
        depth: usize,
        /// Line `p0` of the first panel; the second panel's is `k` lines on.
        w: *const Line,
        k: usize,
        /// Valid columns (`8·V` but in the last panels).
        cols: usize,
        ldc: usize,
        /// Accumulate onto `out` (every depth block but the first).
        load: bool,
        /// Added on the last depth block (zeros otherwise).
        bias: &'b Wide,
    }

    impl Block<'_> {
        /// Every row of `a` in tiles of `R` rows (6, or 3: each packed tile's halves), the
        /// first tile prefetching `next` (`V / 2` panels' lines).
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn rows<const R: usize, const V: usize>(
            &self,
            a: *const f32,
            m: usize,
            k: usize,
            c: *mut f32,
            next: *const Line,
        ) {
            let mut i = 0;
            while i < m {
                // row i of the packed `a`: tile i / 6, lane i % 6, from depth p0
                let ap = a.add(i / TILE * TILE * k + i % TILE);
                let cp = c.add(i * self.ldc);
                match (m - i).min(R) {
                    r if r == R && i == 0 => self.run::<R, V, true>(ap, cp, next),
                    r if r == R => self.run::<R, V, false>(ap, cp, next),
                    1 => self.run::<1, V, false>(ap, cp, next),
                    2 => self.run::<2, V, false>(ap, cp, next),
                    3 if R > 3 => self.run::<3, V, false>(ap, cp, next),
                    4 if R > 4 => self.run::<4, V, false>(ap, cp, next),
                    5 if R > 5 => self.run::<5, V, false>(ap, cp, next),
                    _ => unreachable!("tiles of {R} rows"),
                }
                i += R;
            }
        }

        /// `R` rows × `V` vectors: `c[r, 0..cols] (+)= Σ_p a[r, p] · w[p, 0..cols] + bias`,
        /// prefetching `next[0..depth]` (and the next panel's) with `FETCH`. Each value gets
        /// the same operations in the same order as in every other tile and build: the stored
        /// sum (or zero), plus the bias (or zero), then one FMA per depth step.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn run<const R: usize, const V: usize, const FETCH: bool>(
            &self,
            a: *const f32,
            c: *mut f32,
            next: *const Line,
        ) {
            let mut acc = [[_mm256_setzero_ps(); V]; R];
            let full = self.cols == 8 * V;
            if self.load {
                for (r, acc) in acc.iter_mut().enumerate() {
                    let row = c.add(r * self.ldc);
                    if full {
                        for (v, acc) in acc.iter_mut().enumerate() {
                            *acc = _mm256_loadu_ps(row.add(8 * v));
                        }
                    } else {
                        let mut t = Wide([0.0; 2 * PANEL]);
                        let t = &mut t.0;
                        std::ptr::copy_nonoverlapping(row, t.as_mut_ptr(), self.cols);
                        for (v, acc) in acc.iter_mut().enumerate() {
                            *acc = _mm256_load_ps(t.as_ptr().add(8 * v));
                        }
                    }
                }
            }
            for v in 0..V {
                let b = _mm256_load_ps(self.bias.0.as_ptr().add(8 * v));
                for acc in acc.iter_mut() {
                    acc[v] = _mm256_add_ps(acc[v], b);
                }
            }
            // vector v: half v % 2 of panel v / 2, whose lines are k apart
            let w: [*const f32; V] = std::array::from_fn(|v| {
                (self.w.wrapping_add(v / 2 * self.k) as *const f32).wrapping_add(v % 2 * 8)
            });
            for p in 0..self.depth {
                if FETCH {
                    _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(p) as *const i8);
                    if V == 4 {
                        _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(self.k + p) as *const i8);
                    }
                }
                let ap = a.add(p * TILE);
                if V > R {
                    // wide: R broadcasts held, one weight vector at a time (12 + 3 + 1 ymm)
                    let x: [__m256; R] = std::array::from_fn(|r| _mm256_broadcast_ss(&*ap.add(r)));
                    for v in 0..V {
                        let w = _mm256_load_ps(w[v].add(p * PANEL));
                        for (acc, x) in acc.iter_mut().zip(&x) {
                            acc[v] = _mm256_fmadd_ps(*x, w, acc[v]);
                        }
                    }
                } else {
                    // tall: V weight vectors held, one broadcast at a time
                    let w: [__m256; V] =
                        std::array::from_fn(|v| _mm256_load_ps(w[v].add(p * PANEL)));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let x = _mm256_broadcast_ss(&*ap.add(r));
                        for (acc, w) in acc.iter_mut().zip(&w) {
                            *acc = _mm256_fmadd_ps(x, *w, *acc);
                        }
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                let row = c.add(r * self.ldc);
                if full {
                    for (v, acc) in acc.iter().enumerate() {
                        _mm256_storeu_ps(row.add(8 * v), *acc);
                    }
                } else {
                    let mut t = Wide([0.0; 2 * PANEL]);
                    let t = &mut t.0;
                    for (v, acc) in acc.iter().enumerate() {
                        _mm256_store_ps(t.as_mut_ptr().add(8 * v), *acc);
                    }
                    std::ptr::copy_nonoverlapping(t.as_ptr(), row, self.cols);
                }
            }
        }
    }

    /// `panel[p].0[r] = rows[r·k + p]` for the 16 rows of `rows` (`[16, k]`).
    ///
    /// # Safety
    /// AVX2 present; `rows.len() == 16·k`, `panel.len() == k`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn transpose(rows: &[f32], k: usize, panel: &mut [Line]) {
        debug_assert!(rows.len() == 16 * k && panel.len() == k);
        let src = rows.as_ptr();
        let mut p = 0;
        while p + 8 <= k {
            for half in 0..2 {
                let r: [__m256; 8] =
                    std::array::from_fn(|i| _mm256_loadu_ps(src.add((half * 8 + i) * k + p)));
                let t0 = _mm256_unpacklo_ps(r[0], r[1]);
                let t1 = _mm256_unpackhi_ps(r[0], r[1]);
                let t2 = _mm256_unpacklo_ps(r[2], r[3]);
                let t3 = _mm256_unpackhi_ps(r[2], r[3]);
                let t4 = _mm256_unpacklo_ps(r[4], r[5]);
                let t5 = _mm256_unpackhi_ps(r[4], r[5]);
                let t6 = _mm256_unpacklo_ps(r[6], r[7]);
                let t7 = _mm256_unpackhi_ps(r[6], r[7]);
                let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                let cols = [
                    _mm256_permute2f128_ps::<0x20>(s0, s4),
                    _mm256_permute2f128_ps::<0x20>(s1, s5),
                    _mm256_permute2f128_ps::<0x20>(s2, s6),
                    _mm256_permute2f128_ps::<0x20>(s3, s7),
                    _mm256_permute2f128_ps::<0x31>(s0, s4),
                    _mm256_permute2f128_ps::<0x31>(s1, s5),
                    _mm256_permute2f128_ps::<0x31>(s2, s6),
                    _mm256_permute2f128_ps::<0x31>(s3, s7),
                ];
                for (q, c) in cols.iter().enumerate() {
                    _mm256_store_ps(panel[p + q].0.as_mut_ptr().add(half * 8), *c);
                }
            }
            p += 8;
        }
        for (q, line) in panel.iter_mut().enumerate().skip(p) {
            line.0 = std::array::from_fn(|r| rows[r * k + q]);
        }
    }
}

/// The kernel with 512-bit registers: a panel's line is one zmm, so a tile is 6 rows × 2
/// panels (32 columns) in 12 accumulators, two loads and six broadcasts per 12 FMAs (the AVX2
/// tile needs eight loads per 12 FMAs of half the width). Partial panels use masked loads and
/// stores. Same loops and blocking as [`avx2::panels`].
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Line, DEPTH, OUT_BLOCK, PANEL, TILE};
    use std::arch::x86_64::*;

    /// # Safety
    /// As [`super::avx2::panels`], with AVX-512F present.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn panels(
        a: &[f32],
        m: usize,
        k: usize,
        lines: &[Line],
        bias: Option<&[f32]>,
        n: usize,
        out: *mut f32,
        ldc: usize,
        j0: usize,
        j1: usize,
    ) {
        // groups of whole pairs of panels
        let group = (OUT_BLOCK / (m * PANEL).max(1)).max(2).next_multiple_of(2);
        let mut g0 = j0;
        while g0 < j1 {
            let g1 = (g0 + group).min(j1);
            let mut p0 = 0;
            while p0 < k {
                let depth = DEPTH.min(k - p0);
                let (first, last) = (p0 == 0, p0 + depth == k);
                let mut j = g0;
                while j < g1 {
                    let pair = j + 1 < g1;
                    let np = if pair { 2 } else { 1 };
                    let mut b = [Line([0.0; PANEL]); 2];
                    let mut masks = [0 as __mmask16; 2];
                    for (q, (b, mask)) in b.iter_mut().zip(&mut masks).enumerate().take(np) {
                        let cols = PANEL.min(n - (j + q) * PANEL);
                        *mask = ((1u32 << cols) - 1) as __mmask16;
                        if let (true, Some(bias)) = (last, bias) {
                            let c0 = (j + q) * PANEL;
                            b.0[..cols].copy_from_slice(&bias[c0..c0 + cols]);
                        }
                    }
                    let w = lines.as_ptr().add(j * k + p0);
                    let c = out.add(j * PANEL);
                    // the lines the next pair reads (or the next block's first pair), fetched
                    // while the first tile of this one computes
                    let next = if j + np < g1 {
                        w.add(np * k)
                    } else if !last {
                        lines.as_ptr().add(g0 * k + p0 + depth)
                    } else {
                        lines.as_ptr().add(g1.min(j1 - 1) * k)
                    };
                    let t = Tile {
                        depth,
                        w,
                        k,
                        masks,
                        ldc,
                        load: !first,
                        bias: &b,
                    };
                    if pair {
                        t.rows::<2>(a, m, k, p0, c, next);
                    } else {
                        t.rows::<1>(a, m, k, p0, c, next);
                    }
                    j += np;
                }
                p0 += depth;
            }
            g0 = g1;
        }
    }

    struct Tile<'b> {
        depth: usize,
        /// Line `p0` of the first panel; the second panel's is `k` lines on.
        w: *const Line,
        k: usize,
        /// Valid columns of each panel, as lane masks.
        masks: [__mmask16; 2],
        ldc: usize,
        load: bool,
        bias: &'b [Line; 2],
    }

    impl Tile<'_> {
        /// Every row of `a` (packed in tiles of 6) against `NP` panels, from depth `p0`.
        #[inline]
        #[target_feature(enable = "avx512f,avx2,fma")]
        unsafe fn rows<const NP: usize>(
            &self,
            a: &[f32],
            m: usize,
            k: usize,
            p0: usize,
            c: *mut f32,
            next: *const Line,
        ) {
            let mut i = 0;
            if m >= TILE {
                self.run::<TILE, NP, true>(a.as_ptr().add(p0 * TILE), c, next);
                i += TILE;
            }
            while i + TILE <= m {
                self.run::<TILE, NP, false>(
                    a.as_ptr().add(i * k + p0 * TILE),
                    c.add(i * self.ldc),
                    next,
                );
                i += TILE;
            }
            let (ap, cp) = (a.as_ptr().add(i * k + p0 * TILE), c.add(i * self.ldc));
            match m - i {
                0 => {}
                1 => self.run::<1, NP, false>(ap, cp, next),
                2 => self.run::<2, NP, false>(ap, cp, next),
                3 => self.run::<3, NP, false>(ap, cp, next),
                4 => self.run::<4, NP, false>(ap, cp, next),
                _ => self.run::<5, NP, false>(ap, cp, next),
            }
        }

        /// `R` rows × `NP` panels: `c (+)= Σ_p a[r, p] · w[p] + bias`, prefetching the next
        /// lines with `FETCH`.
        #[inline]
        #[target_feature(enable = "avx512f,avx2,fma")]
        unsafe fn run<const R: usize, const NP: usize, const FETCH: bool>(
            &self,
            a: *const f32,
            c: *mut f32,
            next: *const Line,
        ) {
            let mut acc = [[_mm512_setzero_ps(); NP]; R];
            if self.load {
                for (r, acc) in acc.iter_mut().enumerate() {
                    let row = c.add(r * self.ldc);
                    for (q, acc) in acc.iter_mut().enumerate() {
                        *acc = _mm512_maskz_loadu_ps(self.masks[q], row.add(q * PANEL));
                    }
                }
            }
            for q in 0..NP {
                let b = _mm512_load_ps(self.bias[q].0.as_ptr());
                for acc in acc.iter_mut() {
                    acc[q] = _mm512_add_ps(acc[q], b);
                }
            }
            let w = self.w as *const f32;
            let second = self.k * PANEL;
            for p in 0..self.depth {
                if FETCH {
                    _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(p) as *const i8);
                    if NP == 2 {
                        _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(self.k + p) as *const i8);
                    }
                }
                let line = w.add(p * PANEL);
                let ws: [__m512; NP] =
                    std::array::from_fn(|q| _mm512_load_ps(line.add(q * second)));
                let ap = a.add(p * TILE);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*ap.add(r));
                    for (acc, w) in acc.iter_mut().zip(&ws) {
                        *acc = _mm512_fmadd_ps(x, *w, *acc);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                let row = c.add(r * self.ldc);
                for (q, acc) in acc.iter().enumerate() {
                    _mm512_mask_storeu_ps(row.add(q * PANEL), self.masks[q], *acc);
                }
            }
        }
    }
}

/// The kernel in WebAssembly's 128-bit vectors: a panel's line is four of them, and a tile is
/// 2 rows × one panel in 8 accumulators (4 weight loads and 2 broadcasts per 8 products). Rows
/// are taken two at a time out of the 6-row tiles of `a`. In V8 (16 xmm registers, one its
/// scratch) the 6 × 16 and 3 × 16 tiles spill their accumulators: measured on the MDLM-OWT
/// shapes (Node 20, one thread), 2 × 16 gave 56–58 GFLOP/s, 3 × 16 30, 6 × 16 34, 1 × 16 42.
/// Each product is a multiply and then an add (base simd128 has no fused multiply-add), in the
/// order of the x86 builds. Off wasm32 the same loops run on plain `[f32; 4]`, which the tests
/// compare with scalar arithmetic bit for bit.
mod simd128 {
    use super::{Line, DEPTH, OUT_BLOCK, PANEL, TILE};
    use vector::{add, load, mul, splat, store, zero, V};

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    mod vector {
        use core::arch::wasm32::*;
        pub type V = v128;
        /// # Safety
        /// `p` points at 4 readable f32 (any alignment: v128.load is unaligned)
        #[inline(always)]
        pub unsafe fn load(p: *const f32) -> V {
            v128_load(p as *const v128)
        }
        /// # Safety
        /// `p` points at 4 writable f32
        #[inline(always)]
        pub unsafe fn store(p: *mut f32, v: V) {
            v128_store(p as *mut v128, v)
        }
        /// # Safety
        /// `p` points at a readable f32
        #[inline(always)]
        pub unsafe fn splat(p: *const f32) -> V {
            v128_load32_splat(p as *const u32)
        }
        #[inline(always)]
        pub fn zero() -> V {
            f32x4_splat(0.0)
        }
        #[inline(always)]
        pub fn add(a: V, b: V) -> V {
            f32x4_add(a, b)
        }
        #[inline(always)]
        pub fn mul(a: V, b: V) -> V {
            f32x4_mul(a, b)
        }
    }

    /// The same four lanes as plain arrays: IEEE multiplies and adds, lane by lane, as
    /// simd128's are.
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    mod vector {
        #[derive(Clone, Copy)]
        pub struct V([f32; 4]);
        /// # Safety
        /// `p` points at 4 readable f32
        #[inline(always)]
        pub unsafe fn load(p: *const f32) -> V {
            V(std::ptr::read_unaligned(p as *const [f32; 4]))
        }
        /// # Safety
        /// `p` points at 4 writable f32
        #[inline(always)]
        pub unsafe fn store(p: *mut f32, v: V) {
            std::ptr::write_unaligned(p as *mut [f32; 4], v.0)
        }
        /// # Safety
        /// `p` points at a readable f32
        #[inline(always)]
        pub unsafe fn splat(p: *const f32) -> V {
            V([*p; 4])
        }
        #[inline(always)]
        pub fn zero() -> V {
            V([0.0; 4])
        }
        #[inline(always)]
        pub fn add(a: V, b: V) -> V {
            V(std::array::from_fn(|i| a.0[i] + b.0[i]))
        }
        #[inline(always)]
        pub fn mul(a: V, b: V) -> V {
            V(std::array::from_fn(|i| a.0[i] * b.0[i]))
        }
    }

    /// Rows taken per tile.
    const ROWS: usize = 2;

    /// # Safety
    /// As [`super::avx2::panels`] (without its CPU features).
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn panels(
        a: &[f32],
        m: usize,
        k: usize,
        lines: &[Line],
        bias: Option<&[f32]>,
        n: usize,
        out: *mut f32,
        ldc: usize,
        j0: usize,
        j1: usize,
    ) {
        let group = (OUT_BLOCK / (m * PANEL).max(1)).max(1);
        let mut g0 = j0;
        while g0 < j1 {
            let g1 = (g0 + group).min(j1);
            let mut p0 = 0;
            while p0 < k {
                let depth = DEPTH.min(k - p0);
                let (first, last) = (p0 == 0, p0 + depth == k);
                for j in g0..g1 {
                    let cols = PANEL.min(n - j * PANEL);
                    let mut b = Line([0.0; PANEL]);
                    if let (true, Some(bias)) = (last, bias) {
                        b.0[..cols].copy_from_slice(&bias[j * PANEL..j * PANEL + cols]);
                    }
                    let t = Tile {
                        depth,
                        w: lines.as_ptr().add(j * k + p0) as *const f32,
                        cols,
                        ldc,
                        load: !first,
                        bias: &b,
                    };
                    let c = out.add(j * PANEL);
                    // row i is lane i mod 6 of tile i / 6; pairs never straddle two tiles
                    let row =
                        |i: usize| a.as_ptr().add((i / TILE) * TILE * k + p0 * TILE + i % TILE);
                    let mut i = 0;
                    while i + ROWS <= m {
                        t.run::<ROWS>(row(i), c.add(i * ldc));
                        i += ROWS;
                    }
                    if i < m {
                        t.run::<1>(row(i), c.add(i * ldc));
                    }
                }
                p0 += depth;
            }
            g0 = g1;
        }
    }

    /// One panel's depth block, applied to `R` rows.
    struct Tile<'b> {
        depth: usize,
        w: *const f32,
        /// Valid columns of the panel (16 but in the last one).
        cols: usize,
        ldc: usize,
        /// Accumulate onto `out` (every depth block but the first).
        load: bool,
        /// Added on the last depth block (zeros otherwise).
        bias: &'b Line,
    }

    impl Tile<'_> {
        /// `c[r, 0..cols] (+)= bias + Σ_p a[r, p] · w[p, 0..cols]`, `a` at stride 6 by depth.
        #[inline(always)]
        unsafe fn run<const R: usize>(&self, a: *const f32, c: *mut f32) {
            let mut acc = [[zero(); 4]; R];
            let full = self.cols == PANEL;
            if self.load {
                for (r, acc) in acc.iter_mut().enumerate() {
                    let row = c.add(r * self.ldc);
                    let mut t = Line([0.0; PANEL]);
                    let src = if full {
                        row as *const f32
                    } else {
                        std::ptr::copy_nonoverlapping(row, t.0.as_mut_ptr(), self.cols);
                        t.0.as_ptr()
                    };
                    for (q, acc) in acc.iter_mut().enumerate() {
                        *acc = load(src.add(4 * q));
                    }
                }
            }
            for q in 0..4 {
                let b = load(self.bias.0.as_ptr().add(4 * q));
                for acc in acc.iter_mut() {
                    acc[q] = add(acc[q], b);
                }
            }
            let (mut w, mut a) = (self.w, a);
            for _ in 0..self.depth {
                let ws: [V; 4] = std::array::from_fn(|q| load(w.add(4 * q)));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = splat(a.add(r));
                    for (acc, w) in acc.iter_mut().zip(&ws) {
                        *acc = add(*acc, mul(x, *w));
                    }
                }
                w = w.add(PANEL);
                a = a.add(TILE);
            }
            for (r, acc) in acc.iter().enumerate() {
                let row = c.add(r * self.ldc);
                if full {
                    for (q, acc) in acc.iter().enumerate() {
                        store(row.add(4 * q), *acc);
                    }
                } else {
                    let mut t = Line([0.0; PANEL]);
                    for (q, acc) in acc.iter().enumerate() {
                        store(t.0.as_mut_ptr().add(4 * q), *acc);
                    }
                    std::ptr::copy_nonoverlapping(t.0.as_ptr(), row, self.cols);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::matmul::tests::naive;
    use crate::model::matrix::{half_bytes, Bytes, Half};

    /// The fused multiply-add kernels this CPU runs; says which it cannot.
    fn kernels() -> Vec<Kernel> {
        let all = Kernel::X86;
        for k in all.iter().filter(|k| !k.runs_here()) {
            println!("{k:?}: not on this CPU, so only the other kernel is compared here");
        }
        all.into_iter().filter(|k| k.runs_here()).collect()
    }

    /// The products in the kernels' order, one multiply and one add each as simd128 does
    /// them: per depth block of 256 the running sum (0 at first), plus the bias on the last
    /// block, then each product in depth order.
    fn in_kernel_order(
        a: &[f32],
        m: usize,
        k: usize,
        w: &[f32],
        n: usize,
        bias: Option<&[f32]>,
    ) -> Vec<f32> {
        let mut out = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f32;
                for p0 in (0..k).step_by(DEPTH) {
                    let end = (p0 + DEPTH).min(k);
                    acc += if end == k {
                        bias.map_or(0.0, |b| b[j])
                    } else {
                        0.0
                    };
                    for p in p0..end {
                        acc += a[i * k + p] * w[j * k + p];
                    }
                }
                out[i * n + j] = acc;
            }
        }
        out
    }

    /// Shapes off every boundary: partial tiles (m mod 6), partial panels (n mod 16), depth
    /// blocks and their remainder (k around 256), several panel groups (m · n large), and the
    /// single-row products of the modulation.
    #[test]
    fn matches_naive_on_odd_shapes() {
        if !available() {
            println!("skipped: this CPU has no AVX2/FMA, so the panel kernel never runs here");
            return;
        }
        let shapes = [
            (1, 1, 1),
            (1, 300, 37),
            (5, 7, 16),
            (6, 256, 17),
            (7, 257, 33),
            (13, 513, 15),
            (130, 65, 300),
            (64, 600, 100),
            // an odd number of panels in a group (the AVX-512 tile takes them in pairs)
            (700, 70, 48),
            (3, 40, 80),
            // the 3 × 32 AVX2 tile's 3-row halves (m mod 3, m mod 6 = 4 or 5), with tasks of more
            // than one panel (over 8 panels): pairs with a partial second panel (500, 264),
            // a lone partial panel after pairs (280), odd groups of pairs (400 rows)
            (4, 300, 500),
            (5, 40, 264),
            (8, 33, 280),
            (9, 257, 300),
            (10, 20, 2000),
            (11, 513, 136),
            (400, 40, 1000),
            (700, 30, 744),
        ];
        for &(m, k, n) in &shapes {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0)
                .collect();
            let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 3.0).collect();
            // in place, and widened from each other format (values exact in f16 and bf16
            // would need fewer bits; instead each is compared with its own widened weights)
            let f32_rows = Matrix::f32(n, k, w.clone());
            let mats = [
                f32_rows.paneled(),
                f32_rows.clone(),
                Matrix::half(n, k, Half::F16, Bytes::owned(half_bytes(Half::F16, &w))),
                Matrix::half(n, k, Half::Bf16, Bytes::owned(half_bytes(Half::Bf16, &w))),
                f32_rows.quantized().unwrap(),
                f32_rows.quantized_q4().unwrap(),
            ];
            for (mat, bias) in mats.iter().flat_map(|m| [(m, None), (m, Some(&b[..]))]) {
                let w = mat.to_f32();
                let want = naive(&a, m, k, &w, n, bias);
                let mut got = vec![f32::NAN; m * n];
                matmul(&a, m, mat, bias, &mut got);
                // the never-zeroed output holds the same values
                assert_eq!(matmul_new(&a, m, mat, bias, true), got);
                assert_eq!(matmul_new(&a, m, mat, bias, false), got);
                // and each build of the kernel this CPU runs gives the same bits
                for kernel in kernels() {
                    let mut other = vec![f32::NAN; m * n];
                    product(&a, m, mat, bias, as_uninit(&mut other), true, kernel);
                    assert_eq!(other, got, "{kernel:?} ({m},{k},{n})");
                }
                // the 4-lane build (plain arrays here) gives scalar arithmetic's bits in the
                // same order, and within rounding of the fused builds
                let mut lanes = vec![f32::NAN; m * n];
                product(
                    &a,
                    m,
                    mat,
                    bias,
                    as_uninit(&mut lanes),
                    true,
                    Kernel::Simd128,
                );
                let ordered = in_kernel_order(&a, m, k, &w, n, bias);
                for (i, (g, o)) in lanes.iter().zip(&ordered).enumerate() {
                    assert_eq!(g.to_bits(), o.to_bits(), "Simd128 ({m},{k},{n}) at {i}");
                }
                for (i, (g, x)) in lanes.iter().zip(&got).enumerate() {
                    assert!(
                        (g - x).abs() <= 1e-4 * (1.0 + x.abs()),
                        "Simd128 ({m},{k},{n}) at {i}: {g} vs {x}"
                    );
                }
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                        "{} ({m},{k},{n}) bias {} at {i}: {g} vs {w}",
                        mat.dtype(),
                        bias.is_some()
                    );
                }
            }
        }
    }

    /// `UNMASK_CPU_KERNEL`'s values: a build by name (any case), the fastest where unset,
    /// and the fastest with a warning for an unknown name or a build this CPU cannot run.
    #[test]
    fn the_kernel_variable_names_a_build() {
        let fastest = Kernel::fastest();
        assert_eq!(Kernel::chosen(""), Ok(fastest));
        assert_eq!(Kernel::chosen("  "), Ok(fastest));
        for k in Kernel::X86 {
            let want = if k.runs_here() {
                Ok(k)
            } else {
                Err((
                    fastest,
                    format!(
                        "{KERNEL_VAR}={}: this CPU cannot run the {} kernel; using {}",
                        k.name(),
                        k.name(),
                        fastest.name()
                    ),
                ))
            };
            assert_eq!(Kernel::chosen(k.name()), want);
            assert_eq!(
                Kernel::chosen(&format!(" {} ", k.name().to_uppercase())).map_err(|e| e.0),
                want.clone().map_err(|e| e.0)
            );
        }
        let (k, warning) = Kernel::chosen("avx3").unwrap_err();
        assert_eq!(k, fastest);
        assert!(warning.contains("avx3: not a kernel"), "{warning}");
    }

    #[test]
    fn empty_depth_gives_the_bias() {
        if !available() {
            println!("skipped: this CPU has no AVX2/FMA, so the panel kernel never runs here");
            return;
        }
        let mat = Matrix::f32(3, 0, vec![]).paneled();
        let mut out = vec![f32::NAN; 6];
        matmul(&[], 2, &mat, Some(&[1.0, 2.0, 3.0]), &mut out);
        assert_eq!(out, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
        matmul(&[], 2, &mat, None, &mut out);
        assert_eq!(out, [0.0; 6]);
    }
}
