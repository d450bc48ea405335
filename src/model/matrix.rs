//! A weight matrix `[rows, cols]` kept in the precision it was stored in: f32, f16 or bf16
//! (natively, in place in the memory-mapped checkpoint), or q8_0 or q4_0 blocks. Backends read it a
//! panel of rows at a time as f32 ([`Matrix::rows_f32`]), so no f32 copy of a half-precision
//! or quantised model ever exists whole.

use std::sync::Arc;

use half::{bf16, f16};

/// Values per q8_0 block, as llama.cpp's Q8_0: 32 int8 values share one f16 scale.
pub const Q8_BLOCK: usize = 32;

/// Values per q4_0 block, as llama.cpp's Q4_0: 32 4-bit values share one f16 scale.
pub const Q4_BLOCK: usize = 32;

/// Bytes of one q4_0 block's values: two 4-bit values a byte, value j in the low nibble of
/// byte j and value j + 16 in its high nibble (llama.cpp's order, not interleaved).
pub const Q4_BYTES: usize = Q4_BLOCK / 2;

/// Rows per panel of [`Storage::Panels`]: two AVX vectors of f32.
pub const PANEL: usize = 16;

/// One depth step of a panel: column p of its 16 rows, one cache line.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Line(pub [f32; PANEL]);

/// Bytes owned elsewhere (a memory map, a file compiled into the binary, a buffer read whole)
/// that several matrices borrow ranges of.
pub type Backing = Arc<dyn Source>;

/// What a [`Backing`] is: bytes, and for a memory map a way to hand pages back.
pub trait Source: AsRef<[u8]> + Send + Sync {
    /// Drops the resident pages of `start..start + len` (a hint; they are read again from the
    /// file if touched). Only a memory map has any.
    fn drop_pages(&self, _start: usize, _len: usize) {}
}

impl Source for Vec<u8> {}

/// A byte range of a [`Backing`], or bytes of its own.
#[derive(Clone)]
pub struct Bytes {
    backing: Backing,
    start: usize,
    len: usize,
}

impl Bytes {
    /// `len` bytes of `backing` from `start`; the caller has checked the range.
    pub fn view(backing: Backing, start: usize, len: usize) -> Bytes {
        debug_assert!(start + len <= (*backing).as_ref().len());
        Bytes {
            backing,
            start,
            len,
        }
    }

    pub fn owned(v: Vec<u8>) -> Bytes {
        let len = v.len();
        Bytes {
            backing: Arc::new(v),
            start: 0,
            len,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &(*self.backing).as_ref()[self.start..self.start + self.len]
    }

    /// See [`Source::drop_pages`].
    pub fn drop_pages(&self) {
        self.backing.drop_pages(self.start, self.len)
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.len)
    }
}

/// Rows of equal byte width, in one or more ranges: stacking matrices (fused q/k/v, a gated
/// FFN's gate and up) joins their ranges instead of copying, so a memory-mapped checkpoint is
/// never held twice.
#[derive(Clone, Debug)]
pub struct RowBytes {
    parts: Vec<Bytes>,
    row_bytes: usize,
}

impl RowBytes {
    pub fn new(bytes: Bytes, row_bytes: usize) -> RowBytes {
        debug_assert!(row_bytes == 0 || bytes.len.is_multiple_of(row_bytes));
        RowBytes {
            parts: vec![bytes],
            row_bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn rows_of(&self, p: &Bytes) -> usize {
        p.len.checked_div(self.row_bytes).unwrap_or(0)
    }

    /// Calls `f` on the byte slices covering rows `r0..r1`, in order.
    pub fn for_rows(&self, mut r0: usize, r1: usize, mut f: impl FnMut(&[u8])) {
        let mut base = 0;
        for p in &self.parts {
            let n = self.rows_of(p);
            if r0 < r1 && r0 < base + n {
                let (a, b) = (r0 - base, (r1 - base).min(n));
                f(&p.as_slice()[a * self.row_bytes..b * self.row_bytes]);
                r0 = base + b;
            }
            base += n;
        }
    }

    /// The bytes of rows `r0..r1` when one part holds them all (a tensor read whole), so a
    /// caller can hand them on without a copy.
    pub fn rows_slice(&self, r0: usize, r1: usize) -> Option<&[u8]> {
        let mut base = 0;
        for p in &self.parts {
            let n = self.rows_of(p);
            if r0 >= base && r1 <= base + n {
                return Some(
                    &p.as_slice()[(r0 - base) * self.row_bytes..(r1 - base) * self.row_bytes],
                );
            }
            base += n;
        }
        None
    }

    /// One row's bytes.
    pub fn row(&self, r: usize) -> &[u8] {
        let mut base = 0;
        for p in &self.parts {
            let n = self.rows_of(p);
            if r < base + n {
                let a = (r - base) * self.row_bytes;
                return &p.as_slice()[a..a + self.row_bytes];
            }
            base += n;
        }
        panic!("row {r} of {base}")
    }

    fn concat<'a>(all: impl IntoIterator<Item = &'a RowBytes>) -> RowBytes {
        let mut parts = Vec::new();
        let mut row_bytes = 0;
        for r in all {
            row_bytes = r.row_bytes;
            parts.extend(r.parts.iter().cloned());
        }
        RowBytes { parts, row_bytes }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    F16,
    Bf16,
}

#[derive(Clone, Debug)]
pub enum Storage {
    F32(Vec<f32>),
    /// Little-endian 16-bit floats, row-major.
    Half(Half, RowBytes),
    /// Each row padded with zeros to whole blocks: `qs` holds `rows × blocks × 32` int8 values,
    /// `scales` `rows × blocks` little-endian f16 scales; value = q · scale.
    Q8 {
        qs: RowBytes,
        scales: RowBytes,
    },
    /// Each row padded with zeros to whole blocks: `qs` holds `rows × blocks × 16` bytes of
    /// packed 4-bit values (see [`Q4_BYTES`]), `scales` `rows × blocks` little-endian f16
    /// scales; value = (q − 8) · scale.
    Q4 {
        qs: RowBytes,
        scales: RowBytes,
    },
    /// f32 rows interleaved by panels of [`PANEL`]: line `j·cols + p` holds column p of rows
    /// 16j..16j + 16, zeros past the last row. The layout the CPU's AVX2 kernel streams
    /// (`backend::cpu::panels`), made once when a model is attached to the CPU instead of
    /// being packed again on every product.
    Panels(Vec<Line>),
    /// Rows held by a device, not by this process: the browser streams a checkpoint's matrices
    /// straight into GPU buffers, so wasm memory never holds the model. The host knows each
    /// part only by the key the device gave it; it can neither read nor convert the values.
    Device(DeviceRows),
}

/// Rows of [`Storage::Device`]: parts in order, each a whole matrix the device holds (stacking
/// fused q/k/v joins parts, as it joins byte ranges of halves).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRows {
    pub parts: Vec<DevicePart>,
    /// The device's format, as [`Matrix::dtype`] names it ("f16", "q8_0", …).
    pub dtype: &'static str,
    /// Bytes the device holds for these rows.
    pub bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevicePart {
    pub key: u64,
    pub rows: usize,
}

/// The precision a model's matrices are held in, as a user asks for it (`--weights`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// As the checkpoint stores them (f32, f16 or bf16).
    #[default]
    Stored,
    /// Every matrix widened to f32 (the old behaviour; the reference for parity).
    F32,
    /// Every matrix rounded to bf16 (benchmarks: a bf16 checkpoint from an f32 one).
    Bf16,
    /// Every matrix quantised to q8_0 at load.
    Q8,
    /// Every matrix quantised to q4_0 at load.
    Q4,
}

impl Precision {
    /// The spelling `--weights` takes.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Stored => "stored",
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Q8 => "q8",
            Precision::Q4 => "q4",
        }
    }
}

impl Precision {
    /// The block format this precision quantises to, if it is one.
    pub fn quant(self) -> Option<Quant> {
        match self {
            Precision::Q8 => Some(Quant::Q8),
            Precision::Q4 => Some(Quant::Q4),
            _ => None,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "stored" => Ok(Precision::Stored),
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            "q8" | "q8_0" => Ok(Precision::Q8),
            "q4" | "q4_0" => Ok(Precision::Q4),
            other => Err(format!(
                "unknown weight format `{other}` (stored, f32, bf16, q8, q4)"
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub storage: Storage,
}

/// The block formats a matrix can be quantised to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quant {
    Q8,
    Q4,
}

impl Quant {
    /// The name of the layout (llama.cpp's), as [`Matrix::dtype`] gives it.
    pub fn name(self) -> &'static str {
        match self {
            Quant::Q8 => "q8_0",
            Quant::Q4 => "q4_0",
        }
    }

    /// The largest |weight| a block can hold.
    pub fn max(self) -> f32 {
        match self {
            Quant::Q8 => Q8_MAX,
            Quant::Q4 => Q4_MAX,
        }
    }

    /// Bytes of one block of 32 values, scale included.
    pub fn block_bytes(self) -> usize {
        match self {
            Quant::Q8 => Q8_BLOCK + 2,
            Quant::Q4 => Q4_BYTES + 2,
        }
    }
}

/// A weight a quantised format cannot hold ([`Matrix::quantized_as`]): where it is, what it
/// holds, and the format.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unquantizable {
    pub row: usize,
    pub col: usize,
    pub value: f32,
    pub format: Quant,
}

impl std::fmt::Display for Unquantizable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (r, c, v) = (self.row, self.col, self.value);
        let name = self.format.name();
        if v.is_finite() {
            let (steps, keep) = match self.format {
                Quant::Q8 => (127, "f32, bf16 or as stored"),
                // q8_0 holds 16 times as much
                Quant::Q4 => (8, "q8, f32, bf16 or as stored"),
            };
            write!(
                f,
                "row {r}, column {c} holds {v:e}, beyond the ±{:e} a {name} block's f16 scale can \
                 hold (65504 × {steps}); keep this model in {keep}",
                self.format.max()
            )
        } else {
            write!(
                f,
                "row {r}, column {c} holds {v}: {name} cannot hold a non-finite weight (f32 and \
                 bf16 refuse it at the first pass); the checkpoint is damaged"
            )
        }
    }
}

/// The largest |weight| a q8_0 block can hold: 127 steps of the largest finite f16 scale.
pub const Q8_MAX: f32 = 65504.0 * 127.0;

/// The largest |weight| a q4_0 block can hold: 8 steps (the −8 end of its 4-bit range) of the
/// largest finite f16 scale.
pub const Q4_MAX: f32 = 65504.0 * 8.0;

impl Matrix {
    pub fn f32(rows: usize, cols: usize, data: Vec<f32>) -> Matrix {
        assert_eq!(data.len(), rows * cols, "matrix data size");
        Matrix {
            rows,
            cols,
            storage: Storage::F32(data),
        }
    }

    /// A 16-bit matrix over `bytes` (2·rows·cols of them, checked by the caller).
    pub fn half(rows: usize, cols: usize, kind: Half, bytes: Bytes) -> Matrix {
        assert_eq!(bytes.len, 2 * rows * cols, "matrix data size");
        Matrix {
            rows,
            cols,
            storage: Storage::Half(kind, RowBytes::new(bytes, 2 * cols)),
        }
    }

    /// Blocks per row of the q8_0 layout.
    pub fn q8_blocks(cols: usize) -> usize {
        cols.div_ceil(Q8_BLOCK)
    }

    /// A q8_0 matrix from its two arrays (sizes checked here, so a file can be trusted no
    /// further than its shapes).
    pub fn q8(rows: usize, cols: usize, qs: Bytes, scales: Bytes) -> Option<Matrix> {
        let blocks = Matrix::q8_blocks(cols);
        (qs.len == rows * blocks * Q8_BLOCK && scales.len == 2 * rows * blocks).then(|| Matrix {
            rows,
            cols,
            storage: Storage::Q8 {
                qs: RowBytes::new(qs, blocks * Q8_BLOCK),
                scales: RowBytes::new(scales, 2 * blocks),
            },
        })
    }

    /// Blocks per row of the q4_0 layout.
    pub fn q4_blocks(cols: usize) -> usize {
        cols.div_ceil(Q4_BLOCK)
    }

    /// A q4_0 matrix from its two arrays (sizes checked here, as for [`Matrix::q8`]).
    pub fn q4(rows: usize, cols: usize, qs: Bytes, scales: Bytes) -> Option<Matrix> {
        let blocks = Matrix::q4_blocks(cols);
        (qs.len == rows * blocks * Q4_BYTES && scales.len == 2 * rows * blocks).then(|| Matrix {
            rows,
            cols,
            storage: Storage::Q4 {
                qs: RowBytes::new(qs, blocks * Q4_BYTES),
                scales: RowBytes::new(scales, 2 * blocks),
            },
        })
    }

    pub fn shape(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }

    /// A short name of the storage, for messages and reports.
    pub fn dtype(&self) -> &'static str {
        match &self.storage {
            Storage::F32(_) | Storage::Panels(_) => "f32",
            Storage::Half(Half::F16, _) => "f16",
            Storage::Half(Half::Bf16, _) => "bf16",
            Storage::Q8 { .. } => "q8_0",
            Storage::Q4 { .. } => "q4_0",
            Storage::Device(d) => d.dtype,
        }
    }

    /// Whether the values live on a device ([`Storage::Device`]) rather than in this process.
    pub fn on_device(&self) -> bool {
        matches!(self.storage, Storage::Device(_))
    }

    /// Bytes the matrix holds.
    pub fn bytes(&self) -> usize {
        match &self.storage {
            Storage::F32(v) => 4 * v.len(),
            Storage::Panels(l) => std::mem::size_of_val(l.as_slice()),
            Storage::Half(_, b) => b.len(),
            Storage::Q8 { qs, scales } | Storage::Q4 { qs, scales } => qs.len() + scales.len(),
            // none of them in this process
            Storage::Device(_) => 0,
        }
    }

    /// The f32 data when that is how it is stored (the fast path of the f32 kernels).
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.storage {
            Storage::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Rows `r0..r1` as f32, written to `out` (`(r1 − r0) · cols` values).
    pub fn rows_f32(&self, r0: usize, r1: usize, out: &mut [f32]) {
        let c = self.cols;
        assert!(
            r0 <= r1 && r1 <= self.rows,
            "rows {r0}..{r1} of {}",
            self.rows
        );
        assert_eq!(out.len(), (r1 - r0) * c, "panel size");
        match &self.storage {
            // a plan with device rows attaches only to that device (`engine::for_cpu` refuses
            // it), and the host-side views check `on_device` first
            Storage::Device(d) => panic!(
                "a {}×{c} {} matrix lives on the GPU: the host cannot read its rows",
                self.rows, d.dtype
            ),
            Storage::F32(v) => out.copy_from_slice(&v[r0 * c..r1 * c]),
            Storage::Panels(lines) => {
                // panel by panel, each line read once for all the rows wanted from it
                let mut r = r0;
                while r < r1 {
                    let j = r / PANEL;
                    let end = ((j + 1) * PANEL).min(r1);
                    let lanes = r - j * PANEL..end - j * PANEL;
                    let dst = &mut out[(r - r0) * c..(end - r0) * c];
                    for (p, line) in lines[j * c..(j + 1) * c].iter().enumerate() {
                        for (i, lane) in lanes.clone().enumerate() {
                            dst[i * c + p] = line.0[lane];
                        }
                    }
                    r = end;
                }
            }
            Storage::Half(kind, b) => {
                let mut at = 0;
                b.for_rows(r0, r1, |bytes| {
                    let n = bytes.len() / 2;
                    widen_half(*kind, bytes, &mut out[at..at + n]);
                    at += n;
                });
            }
            Storage::Q8 { qs, scales } => {
                for (i, row) in out.chunks_exact_mut(c).enumerate() {
                    let (q, sc) = (qs.row(r0 + i), scales.row(r0 + i));
                    for (bi, vals) in row.chunks_mut(Q8_BLOCK).enumerate() {
                        let d = f16::from_le_bytes([sc[2 * bi], sc[2 * bi + 1]]).to_f32();
                        let qb = &q[bi * Q8_BLOCK..];
                        for (v, &q) in vals.iter_mut().zip(qb) {
                            *v = (q as i8) as f32 * d;
                        }
                    }
                }
            }
            Storage::Q4 { qs, scales } => {
                for (i, row) in out.chunks_exact_mut(c).enumerate() {
                    let (q, sc) = (qs.row(r0 + i), scales.row(r0 + i));
                    for (bi, vals) in row.chunks_mut(Q4_BLOCK).enumerate() {
                        let d = f16::from_le_bytes([sc[2 * bi], sc[2 * bi + 1]]).to_f32();
                        let qb = &q[bi * Q4_BYTES..(bi + 1) * Q4_BYTES];
                        // two passes over the 16 bytes, one per nibble, rather than a branch per
                        // value: the ragged last block simply ends early in either
                        let (lo, hi) = vals.split_at_mut(vals.len().min(Q4_BYTES));
                        for (v, &b) in lo.iter_mut().zip(qb) {
                            *v = ((b & 0x0F) as i32 - 8) as f32 * d;
                        }
                        for (v, &b) in hi.iter_mut().zip(qb) {
                            *v = ((b >> 4) as i32 - 8) as f32 * d;
                        }
                    }
                }
            }
        }
    }

    /// One row as f32.
    pub fn row_f32(&self, r: usize) -> Vec<f32> {
        let mut v = vec![0.0; self.cols];
        self.rows_f32(r, r + 1, &mut v);
        v
    }

    /// The whole matrix as f32 (small matrices, tests, and folding constants into weights).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.storage {
            Storage::F32(v) => v.clone(),
            _ => {
                let mut v = vec![0.0; self.rows * self.cols];
                self.rows_f32(0, self.rows, &mut v);
                v
            }
        }
    }

    /// The values as mutable f32 (widened first when held otherwise): tests that edit weights.
    pub fn f32_mut(&mut self) -> &mut Vec<f32> {
        if !matches!(self.storage, Storage::F32(_)) {
            self.storage = Storage::F32(self.to_f32());
        }
        match &mut self.storage {
            Storage::F32(v) => v,
            _ => unreachable!("widened above"),
        }
    }

    /// An f32 copy as a dense tensor (the teaching views, small models).
    pub fn as_tensor(&self) -> Arc<crate::tensor::Tensor> {
        Arc::new(crate::tensor::Tensor::new(
            vec![self.rows, self.cols],
            self.to_f32(),
        ))
    }

    /// A matrix from its panels (`rows.div_ceil(16) · cols` lines, zeros past the last row).
    pub fn from_panels(rows: usize, cols: usize, lines: Vec<Line>) -> Matrix {
        assert_eq!(lines.len(), rows.div_ceil(PANEL) * cols, "panel size");
        Matrix {
            rows,
            cols,
            storage: Storage::Panels(lines),
        }
    }

    /// An f32 matrix in panels ([`Storage::Panels`]); any other storage is left as it is (half,
    /// q8 and q4 matrices are widened a panel at a time when used instead).
    pub fn paneled(&self) -> Matrix {
        let Storage::F32(v) = &self.storage else {
            return self.clone();
        };
        let (rows, cols) = (self.rows, self.cols);
        let mut lines = vec![Line([0.0; PANEL]); rows.div_ceil(PANEL) * cols];
        for (r, row) in v.chunks_exact(cols.max(1)).enumerate().take(rows) {
            let (j, lane) = (r / PANEL, r % PANEL);
            for (line, &x) in lines[j * cols..(j + 1) * cols].iter_mut().zip(row) {
                line.0[lane] = x;
            }
        }
        Matrix {
            rows,
            cols,
            storage: Storage::Panels(lines),
        }
    }

    /// The matrix with f32 storage, widened if needed.
    pub fn widened(&self) -> Matrix {
        Matrix::f32(self.rows, self.cols, self.to_f32())
    }

    /// q8_0 quantisation as llama.cpp's reference `quantize_row_q8_0`: per block of 32,
    /// `d = max|x| / 127`, `q = round(x / d)`; the scale is stored as f16. A weight q8_0 cannot
    /// hold is an error, never a value made up: NaN and ±∞ (llama.cpp's reference maps NaN to
    /// 0, which would "repair" a model f32 and bf16 refuse at the first pass), and a block
    /// whose scale overflows f16 (|w| above 65504 × 127 ≈ 8.3e6 would give an infinite scale).
    pub fn quantized(&self) -> std::result::Result<Matrix, Unquantizable> {
        let (rows, cols) = (self.rows, self.cols);
        let blocks = Matrix::q8_blocks(cols);
        let mut qs = vec![0u8; rows * blocks * Q8_BLOCK];
        let mut scales = vec![0u8; 2 * rows * blocks];
        let mut row = vec![0.0f32; cols];
        for r in 0..rows {
            self.rows_f32(r, r + 1, &mut row);
            for (bi, vals) in row.chunks(Q8_BLOCK).enumerate() {
                let amax = vals.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let at_col = |j: usize| Unquantizable {
                    row: r,
                    col: bi * Q8_BLOCK + j,
                    value: vals[j],
                    format: Quant::Q8,
                };
                // `max` skips NaN: look for it (and ±∞) on its own
                if let Some(j) = vals.iter().position(|v| !v.is_finite()) {
                    return Err(at_col(j));
                }
                let d = amax / 127.0;
                let scale = f16::from_f32(d);
                if scale.is_infinite() {
                    let j = vals.iter().position(|v| v.abs() == amax).unwrap_or(0);
                    return Err(at_col(j));
                }
                let id = if d > 0.0 { 1.0 / d } else { 0.0 };
                let at = (r * blocks + bi) * Q8_BLOCK;
                for (j, v) in vals.iter().enumerate() {
                    qs[at + j] = ((v * id).round() as i8) as u8;
                }
                let s = 2 * (r * blocks + bi);
                scales[s..s + 2].copy_from_slice(&scale.to_le_bytes());
            }
        }
        self.drop_source_pages();
        Ok(
            Matrix::q8(rows, cols, Bytes::owned(qs), Bytes::owned(scales))
                .expect("sizes computed above"),
        )
    }

    /// The source's mapped pages are not needed again once quantised: without this a checkpoint
    /// quantised at load would be resident twice (measured: 21 GiB peak for LLaDA-8B, 8.5 GB of
    /// it q8).
    fn drop_source_pages(&self) {
        if let Storage::Half(_, b) = &self.storage {
            b.parts.iter().for_each(Bytes::drop_pages);
        }
    }

    /// q4_0 quantisation as llama.cpp's reference `quantize_row_q4_0_ref`, to the bit: per block
    /// of 32, `max` is the value of largest magnitude (its sign kept, the first of ties),
    /// `d = max / −8`, and each value becomes `min(15, trunc(x / d + 8.5))`, so `max` itself is
    /// exactly −8 steps and the other end of the range (+7) is one step short. The scale is
    /// stored as f16. A ragged last block is quantised as if padded with zeros, which gives
    /// the padding nibble 8 (value 0). Refused as [`Matrix::quantized`] refuses: NaN, ±∞, and
    /// |w| above [`Q4_MAX`] (8 steps of the largest f16 scale).
    pub fn quantized_q4(&self) -> std::result::Result<Matrix, Unquantizable> {
        let (rows, cols) = (self.rows, self.cols);
        let blocks = Matrix::q4_blocks(cols);
        let mut qs = vec![0u8; rows * blocks * Q4_BYTES];
        let mut scales = vec![0u8; 2 * rows * blocks];
        let mut row = vec![0.0f32; cols];
        for r in 0..rows {
            self.rows_f32(r, r + 1, &mut row);
            for (bi, vals) in row.chunks(Q4_BLOCK).enumerate() {
                let at_col = |j: usize| Unquantizable {
                    row: r,
                    col: bi * Q4_BLOCK + j,
                    value: vals[j],
                    format: Quant::Q4,
                };
                if let Some(j) = vals.iter().position(|v| !v.is_finite()) {
                    return Err(at_col(j));
                }
                let (mut amax, mut max, mut at_max) = (0.0f32, 0.0f32, 0);
                for (j, &v) in vals.iter().enumerate() {
                    if amax < v.abs() {
                        (amax, max, at_max) = (v.abs(), v, j);
                    }
                }
                // not "the scale overflows" as for q8: a value a little past the limit would
                // still round to the largest finite scale, and be clipped without a word
                if amax > Q4_MAX {
                    return Err(at_col(at_max));
                }
                let d = max / -8.0;
                let scale = f16::from_f32(d);
                // the reciprocal of the f32 `d`, not of its f16 rounding, as the reference
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                let mut x = [0.0f32; Q4_BLOCK];
                x[..vals.len()].copy_from_slice(vals);
                // `as i8` truncates toward zero as C's cast does (x·id + 8.5 is never below 0)
                let nibble = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
                let at = (r * blocks + bi) * Q4_BYTES;
                for j in 0..Q4_BYTES {
                    qs[at + j] = nibble(x[j]) | (nibble(x[Q4_BYTES + j]) << 4);
                }
                let s = 2 * (r * blocks + bi);
                scales[s..s + 2].copy_from_slice(&scale.to_le_bytes());
            }
        }
        self.drop_source_pages();
        Ok(
            Matrix::q4(rows, cols, Bytes::owned(qs), Bytes::owned(scales))
                .expect("sizes computed above"),
        )
    }

    /// The matrix quantised to `format` ([`Matrix::quantized`], [`Matrix::quantized_q4`]).
    pub fn quantized_as(&self, format: Quant) -> std::result::Result<Matrix, Unquantizable> {
        match format {
            Quant::Q8 => self.quantized(),
            Quant::Q4 => self.quantized_q4(),
        }
    }

    /// The matrix in `format`: unchanged for `Stored`, widened or quantised otherwise (which
    /// fails on a weight q8_0 or q4_0 cannot hold, see [`Matrix::quantized_as`]). A q4_0
    /// matrix asked for as q8 is quantised again from its dequantised values.
    pub fn converted(&self, format: Precision) -> std::result::Result<Matrix, Unquantizable> {
        Ok(match (format, &self.storage) {
            // converted as it streamed to the device, in the precision the load asked for
            (_, Storage::Device(_)) => self.clone(),
            (Precision::Stored, _) | (Precision::F32, Storage::F32(_)) => self.clone(),
            (Precision::Q8, Storage::Q8 { .. }) => self.clone(),
            (Precision::Q4, Storage::Q4 { .. }) => self.clone(),
            (Precision::F32, _) => self.widened(),
            (Precision::Bf16, Storage::Half(Half::Bf16, _)) => self.clone(),
            (Precision::Bf16, _) => Matrix::half(
                self.rows,
                self.cols,
                Half::Bf16,
                Bytes::owned(half_bytes(Half::Bf16, &self.to_f32())),
            ),
            (Precision::Q8, _) => self.quantized()?,
            (Precision::Q4, _) => self.quantized_q4()?,
        })
    }

    /// Rows of several matrices with the same column count, stacked (fused q/k/v, a gated FFN's
    /// gate and up). Same-precision parts stay in that precision and are joined, not copied;
    /// mixed ones become f32.
    pub fn stack(parts: &[&Matrix]) -> Matrix {
        let cols = parts[0].cols;
        assert!(
            parts.iter().all(|p| p.cols == cols),
            "stacked column counts"
        );
        let rows = parts.iter().map(|p| p.rows).sum();
        let device: Option<Vec<&DeviceRows>> = parts
            .iter()
            .map(|p| match &p.storage {
                Storage::Device(d) => Some(d),
                _ => None,
            })
            .collect();
        if let Some(d) = device {
            assert!(
                d.iter().all(|x| x.dtype == d[0].dtype),
                "stacked device rows of one format"
            );
            let storage = Storage::Device(DeviceRows {
                parts: d.iter().flat_map(|x| x.parts.iter().copied()).collect(),
                dtype: d[0].dtype,
                bytes: d.iter().map(|x| x.bytes).sum(),
            });
            return Matrix {
                rows,
                cols,
                storage,
            };
        }
        let halves: Option<Vec<(Half, &RowBytes)>> = parts
            .iter()
            .map(|p| match &p.storage {
                Storage::Half(k, b) => Some((*k, b)),
                _ => None,
            })
            .collect();
        if let Some(h) = halves {
            if h.iter().all(|(k, _)| *k == h[0].0) {
                let storage = Storage::Half(h[0].0, RowBytes::concat(h.iter().map(|(_, b)| *b)));
                return Matrix {
                    rows,
                    cols,
                    storage,
                };
            }
        }
        for format in [Quant::Q8, Quant::Q4] {
            let like: Option<Vec<(&RowBytes, &RowBytes)>> = parts
                .iter()
                .map(|p| match (&p.storage, format) {
                    (Storage::Q8 { qs, scales }, Quant::Q8)
                    | (Storage::Q4 { qs, scales }, Quant::Q4) => Some((qs, scales)),
                    _ => None,
                })
                .collect();
            if let Some(q) = like {
                let (qs, scales) = (
                    RowBytes::concat(q.iter().map(|(a, _)| *a)),
                    RowBytes::concat(q.iter().map(|(_, b)| *b)),
                );
                let storage = match format {
                    Quant::Q8 => Storage::Q8 { qs, scales },
                    Quant::Q4 => Storage::Q4 { qs, scales },
                };
                return Matrix {
                    rows,
                    cols,
                    storage,
                };
            }
        }
        let mut v = Vec::with_capacity(rows * cols);
        for p in parts {
            v.extend_from_slice(&p.to_f32());
        }
        Matrix::f32(rows, cols, v)
    }
}

/// Widens little-endian 16-bit floats into `out` (F16C/NEON through `half` where present).
fn widen_half(kind: Half, bytes: &[u8], out: &mut [f32]) {
    use half::slice::HalfFloatSliceExt;
    match kind {
        Half::F16 => match bytemuck::try_cast_slice::<u8, f16>(bytes) {
            Ok(h) if cfg!(target_endian = "little") => h.convert_to_f32_slice(out),
            _ => out
                .iter_mut()
                .zip(bytes.chunks_exact(2))
                .for_each(|(o, c)| *o = f16::from_le_bytes([c[0], c[1]]).to_f32()),
        },
        // bf16 is the top half of an f32: a shift, which the compiler vectorises
        Half::Bf16 => out
            .iter_mut()
            .zip(bytes.chunks_exact(2))
            .for_each(|(o, c)| {
                *o = f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)
            }),
    }
}

/// f32 values as little-endian bytes of `kind` (tests, the quantise tool).
pub fn half_bytes(kind: Half, vals: &[f32]) -> Vec<u8> {
    match kind {
        Half::F16 => vals
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect(),
        Half::Bf16 => vals
            .iter()
            .flat_map(|v| bf16::from_f32(*v).to_le_bytes())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 16.0)
            .collect()
    }

    #[test]
    fn panels_read_back_the_rows_they_were_made_of() {
        // 37 rows: two whole panels and a partial third; an empty matrix too
        for (rows, cols) in [(37, 5), (16, 3), (1, 1), (0, 4)] {
            let v = vals(rows * cols);
            let m = Matrix::f32(rows, cols, v.clone()).paneled();
            assert_eq!(m.dtype(), "f32");
            assert_eq!(m.bytes(), 64 * rows.div_ceil(PANEL) * cols);
            assert_eq!(m.to_f32(), v, "{rows}x{cols}");
            if rows > 3 {
                let mut out = vec![0.0; 2 * cols];
                m.rows_f32(rows - 3, rows - 1, &mut out);
                assert_eq!(out, v[(rows - 3) * cols..(rows - 1) * cols]);
            }
            if rows > 20 {
                // a range across a panel boundary
                let mut out = vec![0.0; 6 * cols];
                m.rows_f32(14, 20, &mut out);
                assert_eq!(out, v[14 * cols..20 * cols]);
            }
            // widening asks for rows again; other formats are left alone by `paneled`
            assert_eq!(m.widened().as_f32(), Some(&v[..]));
            let h = Matrix::half(
                rows,
                cols,
                Half::F16,
                Bytes::owned(half_bytes(Half::F16, &v)),
            );
            assert_eq!(h.paneled().dtype(), "f16");
        }
    }

    #[test]
    fn half_rows_widen_exactly() {
        let v = vals(7 * 5);
        for kind in [Half::F16, Half::Bf16] {
            let m = Matrix::half(7, 5, kind, Bytes::owned(half_bytes(kind, &v)));
            let mut out = vec![0.0; 2 * 5];
            m.rows_f32(3, 5, &mut out);
            for (i, o) in out.iter().enumerate() {
                // these values are exact in both formats (multiples of 1/16 below 4)
                assert_eq!(*o, v[15 + i], "{kind:?} at {i}");
            }
        }
    }

    #[test]
    fn misaligned_half_bytes_read_the_same() {
        let v = vals(12);
        let mut b = vec![0u8];
        b.extend(half_bytes(Half::F16, &v));
        let backing: Backing = Arc::new(b);
        let m = Matrix::half(3, 4, Half::F16, Bytes::view(backing, 1, 24));
        assert_eq!(m.to_f32(), v);
    }

    #[test]
    fn q8_error_is_within_half_a_step_per_block() {
        // 37 columns: one whole block and a padded one
        let (rows, cols) = (5, 37);
        let v: Vec<f32> = vals(rows * cols).iter().map(|x| x * 0.37).collect();
        let m = Matrix::f32(rows, cols, v.clone());
        let q = m.quantized().unwrap();
        assert_eq!(q.dtype(), "q8_0");
        assert_eq!(q.bytes(), rows * 2 * (32 + 2));
        let back = q.to_f32();
        for r in 0..rows {
            for (b, block) in v[r * cols..(r + 1) * cols].chunks(32).enumerate() {
                let amax = block.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                for (j, x) in block.iter().enumerate() {
                    let got = back[r * cols + b * 32 + j];
                    // half a quantisation step, plus the f16 rounding of the scale
                    let bound = amax / 127.0 * 0.5 + amax * 1e-3;
                    assert!((got - x).abs() <= bound, "({r},{j}): {got} vs {x}");
                }
            }
        }
        // a zero block quantises to zeros, not NaN
        let z = Matrix::f32(1, 3, vec![0.0; 3])
            .quantized()
            .unwrap()
            .to_f32();
        assert_eq!(z, vec![0.0; 3]);
    }

    /// q8_0 never hides or invents a value: NaN, ±∞ and a block whose f16 scale would
    /// overflow are refused naming the row and column; the largest weight it can hold is kept.
    #[test]
    fn q8_refuses_what_it_cannot_hold() {
        for (bad, what) in [
            (f32::NAN, "NaN"),
            (f32::INFINITY, "inf"),
            (f32::NEG_INFINITY, "-inf"),
            (9.0e6, "beyond"),
            (-1.0e30, "beyond"),
            (f32::MAX, "beyond"),
        ] {
            let mut v = vals(3 * 40);
            v[40 + 33] = bad;
            let e = Matrix::f32(3, 40, v).quantized().unwrap_err();
            assert_eq!((e.row, e.col), (1, 33), "{bad}");
            assert!(e.value == bad || bad.is_nan() && e.value.is_nan());
            let msg = e.to_string();
            assert!(
                msg.starts_with("row 1, column 33 holds") && msg.contains(what),
                "{bad}: {msg}"
            );
        }
        // the limit itself fits, exactly at a whole step
        let mut v = vec![0.0f32; 32];
        v[5] = Q8_MAX;
        v[6] = -Q8_MAX / 127.0;
        let back = Matrix::f32(1, 32, v.clone()).quantized().unwrap().to_f32();
        assert_eq!(back, v);
    }

    /// The stored bytes of a q4_0 matrix's row `r`: (packed values, f16 scales).
    fn q4_row(m: &Matrix, r: usize) -> (Vec<u8>, Vec<f16>) {
        let Storage::Q4 { qs, scales } = &m.storage else {
            panic!("{} is not q4_0", m.dtype())
        };
        let sc = scales.row(r).chunks_exact(2);
        let sc = sc.map(|c| f16::from_le_bytes([c[0], c[1]])).collect();
        (qs.row(r).to_vec(), sc)
    }

    /// The bytes of llama.cpp's layout, worked out by hand: the first 16 values in the low
    /// nibbles, the last 16 in the high ones; `d = max / −8` with max's sign; each value
    /// `min(15, trunc(x / d + 8.5))`, so halves round up and +8 steps clip to +7.
    #[test]
    fn q4_blocks_are_llama_cpps_bytes() {
        // low half: −8 … 7 (d = 1, nibble j); high half: −4, −3.5, … 3.5
        let mut v: Vec<f32> = (0..16).map(|j| j as f32 - 8.0).collect();
        v.extend((0..16).map(|j| (j as f32 - 8.0) / 2.0));
        let q = Matrix::f32(1, 32, v.clone()).quantized_q4().unwrap();
        assert_eq!(q.dtype(), "q4_0");
        let (qs, sc) = q4_row(&q, 0);
        assert_eq!(sc, vec![f16::ONE]);
        let want: Vec<u8> = (0..16u8).map(|j| j | ((4 + j.div_ceil(2)) << 4)).collect();
        assert_eq!(qs, want);
        // −3.5 → −3 (half up), every low value exact
        let back = q.to_f32();
        assert_eq!(back[..16], v[..16]);
        assert_eq!((back[16], back[17], back[18]), (-4.0, -3.0, -3.0));

        // a positive max: d = −2, so 16 is nibble 0; −14 is +7 steps; −16 (+8) clips to −14;
        // the first of two equal magnitudes gives the sign
        let mut v = vec![0.0f32; 32];
        (v[0], v[1], v[2], v[17]) = (16.0, -14.0, -16.0, 3.0);
        let q = Matrix::f32(1, 32, v).quantized_q4().unwrap();
        let (qs, sc) = q4_row(&q, 0);
        assert_eq!(sc, vec![f16::from_f32(-2.0)]);
        // 0 → 8; value 17 (3 / −2 + 8.5 = 7) in byte 1's high nibble
        assert_eq!(&qs[..3], &[0x80, 0x7F, 0x8F]);
        let back = q.to_f32();
        assert_eq!(back[..3], [16.0, -14.0, -14.0]);
        assert_eq!(back[17], 2.0);
    }

    #[test]
    fn q4_error_is_within_half_a_step_per_block() {
        // 37 columns: one whole block and a padded one (5 values and 27 of padding)
        let (rows, cols) = (5, 37);
        let v: Vec<f32> = vals(rows * cols).iter().map(|x| x * 0.37).collect();
        let q = Matrix::f32(rows, cols, v.clone()).quantized_q4().unwrap();
        assert_eq!(q.dtype(), "q4_0");
        assert_eq!(q.bytes(), rows * 2 * (16 + 2));
        let back = q.to_f32();
        for r in 0..rows {
            for (b, block) in v[r * cols..(r + 1) * cols].chunks(32).enumerate() {
                let max = block
                    .iter()
                    .fold(0.0f32, |m, &x| if x.abs() > m.abs() { x } else { m });
                let d = max / -8.0;
                for (j, x) in block.iter().enumerate() {
                    let got = back[r * cols + b * 32 + j];
                    // half a step, a whole one where +8 steps clip to +7, plus the f16
                    // rounding of the scale (8 steps of it at most)
                    let steps = if x / d > 7.5 { 1.0 } else { 0.5 };
                    let bound = d.abs() * steps + max.abs() * 1e-3;
                    assert!((got - x).abs() <= bound, "({r},{j}): {got} vs {x}");
                }
            }
            // the padding holds value 0 (nibble 8), not −8 steps
            let (qs, _) = q4_row(&q, r);
            assert!(qs[16 + 5..].iter().all(|&b| b == 0x88), "{:x?}", &qs[16..]);
        }
        let z = Matrix::f32(1, 3, vec![0.0; 3])
            .quantized_q4()
            .unwrap()
            .to_f32();
        assert_eq!(z, vec![0.0; 3]);
        // a range of rows reads what the whole matrix reads
        let mut out = vec![0.0; 2 * cols];
        q.rows_f32(2, 4, &mut out);
        assert_eq!(out, back[2 * cols..4 * cols]);
    }

    /// As q8_0: NaN, ±∞ and a weight past 8 steps of the largest f16 scale are refused naming
    /// the row and column; the limit itself is kept exactly.
    #[test]
    fn q4_refuses_what_it_cannot_hold() {
        for (bad, what) in [
            (f32::NAN, "NaN: q4_0 cannot hold"),
            (f32::INFINITY, "inf: q4_0 cannot hold"),
            (f32::NEG_INFINITY, "-inf: q4_0 cannot hold"),
            // below q8's limit, past q4's; rounds to a finite f16 scale all the same
            (5.25e5, "beyond the ±5.24032e5 a q4_0 block"),
            (-1.0e30, "beyond"),
            (f32::MAX, "beyond"),
        ] {
            let mut v = vals(3 * 40);
            v[40 + 33] = bad;
            let m = Matrix::f32(3, 40, v);
            let e = m.quantized_q4().unwrap_err();
            assert_eq!((e.row, e.col, e.format), (1, 33, Quant::Q4), "{bad}");
            assert!(e.value == bad || bad.is_nan() && e.value.is_nan());
            let msg = e.to_string();
            assert!(
                msg.starts_with("row 1, column 33 holds") && msg.contains(what),
                "{bad}: {msg}"
            );
            let via = m.converted(Precision::Q4).unwrap_err();
            assert_eq!(via.to_string(), msg);
        }
        let mut v = vec![0.0f32; 32];
        v[5] = Q4_MAX;
        v[6] = -Q4_MAX / 8.0;
        v[7] = -Q4_MAX * 7.0 / 8.0;
        let back = Matrix::f32(1, 32, v.clone())
            .quantized_q4()
            .unwrap()
            .to_f32();
        assert_eq!(back, v);
    }

    #[test]
    fn precisions_parse_by_name() {
        for p in [
            Precision::Stored,
            Precision::F32,
            Precision::Bf16,
            Precision::Q8,
            Precision::Q4,
        ] {
            assert_eq!(p.name().parse::<Precision>(), Ok(p));
        }
        assert_eq!("q4_0".parse::<Precision>(), Ok(Precision::Q4));
        assert_eq!("q8_0".parse::<Precision>(), Ok(Precision::Q8));
        let e = "q3".parse::<Precision>().unwrap_err();
        assert!(e.contains("q8, q4"), "{e}");
    }

    #[test]
    fn stacking_keeps_the_precision_of_like_parts() {
        let a = Matrix::half(
            2,
            3,
            Half::Bf16,
            Bytes::owned(half_bytes(Half::Bf16, &vals(6))),
        );
        let b = Matrix::half(
            1,
            3,
            Half::Bf16,
            Bytes::owned(half_bytes(Half::Bf16, &vals(3))),
        );
        let s = Matrix::stack(&[&a, &b]);
        assert_eq!((s.rows, s.dtype()), (3, "bf16"));
        let mut want = a.to_f32();
        want.extend(b.to_f32());
        assert_eq!(s.to_f32(), want);
        let c = Matrix::f32(1, 3, vec![1.0, 2.0, 3.0]);
        let mixed = Matrix::stack(&[&a, &c]);
        assert_eq!(mixed.dtype(), "f32");
        let q = Matrix::stack(&[&a.quantized().unwrap(), &b.quantized().unwrap()]);
        assert_eq!((q.rows, q.dtype()), (3, "q8_0"));
        assert_eq!(q.to_f32()[6..], b.quantized().unwrap().to_f32()[..]);
        let q4 = Matrix::stack(&[&a.quantized_q4().unwrap(), &b.quantized_q4().unwrap()]);
        assert_eq!((q4.rows, q4.dtype()), (3, "q4_0"));
        assert_eq!(q4.to_f32()[6..], b.quantized_q4().unwrap().to_f32()[..]);
        // q8 beside q4 has no common block format
        let mixed = Matrix::stack(&[&a.quantized().unwrap(), &b.quantized_q4().unwrap()]);
        assert_eq!(mixed.dtype(), "f32");
    }
}
