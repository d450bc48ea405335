//! Weight matrices on the device: f16 packed two per u32 along the input dimension by default
//! (portable storage, arithmetic stays f32), f32 on request, q8_0 or q4_0 blocks when the
//! model holds them, split by rows over several buffers when a matrix is larger than one storage binding
//! (the 50k-row head on a 128 MiB limit). Rows are packed from the host matrix a chunk at a
//! time, so a half-precision or quantised model is never widened whole on the way.

use half::f16;

use super::Gpu;
use crate::error::{Error, Result};
use crate::model::matrix::{Half, Matrix, Storage, Q4_BYTES, Q8_BLOCK};

/// u32 words per q8_0 block on the device: 32 int8 values in 8 words, then the f16 scale in
/// the low half of a ninth (`shaders/matmul.wgsl`, `weight()`).
pub const Q8_WORDS: usize = 9;

/// u32 words per q4_0 block on the device: its 16 bytes of packed 4-bit values in 4 words (as
/// stored: byte j holds value j in its low nibble and value j + 16 in its high one), then the
/// f16 scale in the low half of a fifth (`shaders/matmul.wgsl`, `weight()`).
pub const Q4_WORDS: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    F32,
    F16,
    Q8,
    Q4,
}

pub struct Chunk {
    pub buffer: wgpu::Buffer,
    /// First row held.
    pub start: usize,
    pub rows: usize,
}

pub struct GpuMatrix {
    pub chunks: Vec<Chunk>,
    pub rows: usize,
    pub cols: usize,
    /// u32 words per row.
    pub ldw: usize,
    pub packing: Packing,
}

/// The words of rows `r0..r1` of a `[rows, cols]` matrix in `packing`.
pub fn pack_rows(m: &Matrix, r0: usize, r1: usize, packing: Packing) -> Vec<u32> {
    let cols = m.cols;
    let ldw = words_per_row(cols, packing);
    let mut out = Vec::with_capacity((r1 - r0) * ldw);
    match (packing, &m.storage) {
        (Packing::Q8, Storage::Q8 { qs, scales }) | (Packing::Q4, Storage::Q4 { qs, scales }) => {
            let block_bytes = if packing == Packing::Q8 {
                Q8_BLOCK
            } else {
                Q4_BYTES
            };
            for r in r0..r1 {
                let (q, sc) = (qs.row(r), scales.row(r));
                for (b, block) in q.chunks_exact(block_bytes).enumerate() {
                    out.extend(
                        block
                            .chunks_exact(4)
                            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                    );
                    out.push(u16::from_le_bytes([sc[2 * b], sc[2 * b + 1]]) as u32);
                }
            }
        }
        (Packing::Q8 | Packing::Q4, _) => {
            unreachable!("block packings are chosen only for matrices held so")
        }
        (Packing::F16, Storage::Half(Half::F16, bytes)) if cols.is_multiple_of(2) => {
            // the stored bits as they are
            bytes.for_rows(r0, r1, |b| {
                out.extend(
                    b.chunks_exact(4)
                        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                )
            });
        }
        _ => {
            // 16 rows at a time: a matrix in panels then reads each of its lines once
            let mut block = vec![0.0f32; 16 * cols];
            for b0 in (r0..r1).step_by(16) {
                let b1 = (b0 + 16).min(r1);
                let block = &mut block[..(b1 - b0) * cols];
                m.rows_f32(b0, b1, block);
                for row in block.chunks_exact(cols.max(1)) {
                    if packing == Packing::F16 {
                        for pair in row.chunks(2) {
                            let lo = f16::from_f32(pair[0]).to_bits() as u32;
                            let hi = pair
                                .get(1)
                                .map_or(0, |v| f16::from_f32(*v).to_bits() as u32);
                            out.push(lo | (hi << 16));
                        }
                    } else {
                        out.extend(row.iter().map(|v| v.to_bits()));
                    }
                }
            }
        }
    }
    out
}

fn words_per_row(cols: usize, packing: Packing) -> usize {
    match packing {
        Packing::F32 => cols,
        Packing::F16 => cols.div_ceil(2),
        Packing::Q8 => Matrix::q8_blocks(cols) * Q8_WORDS,
        Packing::Q4 => Matrix::q4_blocks(cols) * Q4_WORDS,
    }
}

impl GpuMatrix {
    /// Uploads `m` as f16 pairs (`f16`) or f32, or as q8_0 or q4_0 blocks when it is held so
    /// and the kernel reading it takes them (`blocks_ok`: the matmul does, the embedding lookup
    /// does not).
    pub fn upload(
        gpu: &Gpu,
        name: &str,
        m: &Matrix,
        f16: bool,
        blocks_ok: bool,
    ) -> Result<GpuMatrix> {
        let (rows, cols) = (m.rows, m.cols);
        let packing = match &m.storage {
            Storage::Q8 { .. } if blocks_ok => Packing::Q8,
            Storage::Q4 { .. } if blocks_ok => Packing::Q4,
            _ if f16 => Packing::F16,
            _ => Packing::F32,
        };
        let ldw = words_per_row(cols, packing);
        let row_bytes = (ldw * 4) as u64;
        let per_chunk = (gpu.max_binding() / row_bytes.max(1)) as usize;
        if per_chunk == 0 {
            return Err(Error::gpu(crate::error::GpuFault::Failed, format!("one row of `{name}` ({row_bytes} bytes) exceeds the adapter's storage binding limit"
            )));
        }
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < rows {
            let end = (start + per_chunk).min(rows);
            let words = pack_rows(m, start, end, packing);
            chunks.push(Chunk {
                buffer: gpu.upload(name, &words),
                start,
                rows: end - start,
            });
            start = end;
        }
        Ok(GpuMatrix {
            chunks,
            rows,
            cols,
            ldw,
            packing,
        })
    }

    pub fn bytes(&self) -> u64 {
        (self.rows * self.ldw * 4) as u64
    }
}
