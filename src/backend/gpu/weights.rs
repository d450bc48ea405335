//! Weight matrices on the device: f16 packed two per u32 along the input dimension by default
//! (portable storage, arithmetic stays f32), f32 on request, q8_0 or q4_0 blocks when the
//! model holds them, split by rows over several buffers when a matrix is larger than one storage binding
//! (the 50k-row head on a 128 MiB limit). Rows are packed from the host matrix a chunk at a
//! time, so a half-precision or quantised model is never widened whole on the way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use half::f16;

use super::Gpu;
use crate::error::{Error, GpuFault, Result};
use crate::model::matrix::{
    DevicePart, DeviceRows, Half, Matrix, Quant, Storage, Q4_BYTES, Q8_BLOCK,
};
use crate::model::stream::{DeviceUse, MatrixSink};

/// u32 words per q8_0 and q4_0 block on the device (their layout: `backend::gpu_words`).
pub const Q8_WORDS: usize = crate::backend::gpu_words::Q8;
pub const Q4_WORDS: usize = crate::backend::gpu_words::Q4;

/// Bytes of rows packed and written at a time.
const SLAB_BYTES: u64 = 4 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    F32,
    F16,
    Q8,
    Q4,
}

#[derive(Clone)]
pub struct Chunk {
    pub buffer: wgpu::Buffer,
    /// First row held.
    pub start: usize,
    pub rows: usize,
}

#[derive(Clone)]
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

/// Rows `r0..r1` of `m` in a new buffer. In the browser they are written a slab at a time by
/// queue writes: a buffer mapped at creation is a copy in wasm memory there, and a packed
/// chunk another, so a 311 MB table would cost wasm three times its size; a slab costs 4 MiB.
/// Natively a buffer mapped at creation is written in place, and queue writes would stage the
/// whole model until the first submit.
#[allow(clippy::too_many_arguments)]
fn write_rows(
    gpu: &Gpu,
    name: &str,
    m: &Matrix,
    stored: Option<&crate::model::matrix::RowBytes>,
    r0: usize,
    r1: usize,
    packing: Packing,
    row_bytes: u64,
) -> wgpu::Buffer {
    if cfg!(target_arch = "wasm32") {
        let buffer = gpu.storage(name, (r1 - r0) as u64 * row_bytes);
        let slab = ((SLAB_BYTES / row_bytes.max(1)) as usize).max(1);
        for s0 in (r0..r1).step_by(slab) {
            let s1 = (s0 + slab).min(r1);
            let at = (s0 - r0) as u64 * row_bytes;
            match stored.and_then(|b| b.rows_slice(s0, s1)) {
                Some(bytes) => gpu.queue.write_buffer(&buffer, at, bytes),
                None => gpu.queue.write_buffer(
                    &buffer,
                    at,
                    bytemuck::cast_slice(&pack_rows(m, s0, s1, packing)),
                ),
            }
        }
        return buffer;
    }
    match stored.and_then(|b| b.rows_slice(r0, r1)) {
        Some(bytes) => gpu.upload(name, bytes),
        None => gpu.upload(name, &pack_rows(m, r0, r1, packing)),
    }
}

impl GpuMatrix {
    /// Uploads `m` as f16 pairs (`f16`) or f32, or as q8_0 or q4_0 blocks when it is held so
    /// and the kernel reading it takes them (`blocks_ok`: the matmul does, the embedding lookup
    /// does not).
    /// A matrix already on the device ([`Storage::Device`]) is taken from `held`, not uploaded
    /// again: its parts' chunks joined in order.
    pub fn upload(
        gpu: &Gpu,
        name: &str,
        m: &Matrix,
        f16: bool,
        blocks_ok: bool,
        held: &Held,
    ) -> Result<GpuMatrix> {
        if let Storage::Device(d) = &m.storage {
            return held.join(name, m, d, blocks_ok);
        }
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
            return Err(Error::gpu(
                GpuFault::Failed,
                format!(
                    "one row of `{name}` ({row_bytes} bytes) exceeds the adapter's storage binding limit"
                ),
            ));
        }
        // f16 pairs are the stored bytes themselves: a tensor read whole goes up without a copy
        let stored = match (&m.storage, packing) {
            (Storage::Half(Half::F16, b), Packing::F16) if cols.is_multiple_of(2) => Some(b),
            _ => None,
        };
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < rows {
            let end = (start + per_chunk).min(rows);
            let buffer = write_rows(gpu, name, m, stored, start, end, packing, row_bytes);
            chunks.push(Chunk {
                buffer,
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

/// Matrices uploaded before their model exists (a streamed load sends each to the device as
/// it arrives), by the key their [`DevicePart`]s carry; the model's upload takes them from
/// here instead of from host memory.
#[derive(Default)]
pub struct Held {
    matrices: HashMap<u64, GpuMatrix>,
    next: u64,
}

impl Held {
    fn put(&mut self, m: GpuMatrix) -> u64 {
        self.next += 1;
        self.matrices.insert(self.next, m);
        self.next
    }

    /// Bytes held on the device.
    pub fn bytes(&self) -> u64 {
        self.matrices.values().map(GpuMatrix::bytes).sum()
    }

    /// The parts of `d` joined into one matrix (stacked rows share the parts' buffers).
    fn join(&self, name: &str, m: &Matrix, d: &DeviceRows, blocks_ok: bool) -> Result<GpuMatrix> {
        let fail = |msg: String| Err(Error::gpu(GpuFault::Failed, format!("`{name}`: {msg}")));
        let mut out: Option<GpuMatrix> = None;
        let mut rows = 0;
        for part in &d.parts {
            let Some(p) = self.matrices.get(&part.key) else {
                return fail(format!(
                    "device matrix {} is not held (a plan streamed to another device?)",
                    part.key
                ));
            };
            if p.rows != part.rows || p.cols != m.cols {
                return fail(format!(
                    "device matrix {} is {}×{}, the plan expects {}×{}",
                    part.key, p.rows, p.cols, part.rows, m.cols
                ));
            }
            let o = out.get_or_insert_with(|| GpuMatrix {
                chunks: Vec::new(),
                rows: 0,
                cols: p.cols,
                ldw: p.ldw,
                packing: p.packing,
            });
            if (o.ldw, o.packing) != (p.ldw, p.packing) {
                return fail("stacked parts held in different formats".into());
            }
            o.chunks.extend(p.chunks.iter().map(|c| Chunk {
                buffer: c.buffer.clone(),
                start: rows + c.start,
                rows: c.rows,
            }));
            rows += p.rows;
        }
        let Some(mut out) = out else {
            return fail("no device rows".into());
        };
        out.rows = rows;
        if rows != m.rows {
            return fail(format!("{rows} device rows, the plan expects {}", m.rows));
        }
        if !blocks_ok && matches!(out.packing, Packing::Q8 | Packing::Q4) {
            return fail("held in blocks, which the embedding lookup cannot read".into());
        }
        Ok(out)
    }
}

/// Where a streamed load sends its matrices: each is converted to the precision asked (`quant`,
/// else f16 pairs or f32) and uploaded as it arrives, then dropped from host memory. A table
/// the lookup reads (the token embeddings) stays f16/f32: the lookup cannot read blocks.
pub struct DeviceSink {
    pub gpu: Arc<Gpu>,
    pub held: Arc<Mutex<Held>>,
    pub f16: bool,
    pub quant: Option<Quant>,
}

impl MatrixSink for DeviceSink {
    fn put(&mut self, name: &str, m: Matrix, used: DeviceUse) -> Result<Matrix> {
        let m = match (self.quant, used) {
            (Some(q), DeviceUse::Product) => m
                .quantized_as(q)
                .map_err(|e| Error::tensor(format!("weights {}", q.name()), name, e.to_string()))?,
            _ => m,
        };
        let g = GpuMatrix::upload(&self.gpu, name, &m, self.f16, true, &Held::default())?;
        let dtype = match g.packing {
            Packing::F32 => "f32",
            Packing::F16 => "f16",
            Packing::Q8 => "q8_0",
            Packing::Q4 => "q4_0",
        };
        let (rows, cols, bytes) = (g.rows, g.cols, g.bytes());
        let mut held = self
            .held
            .lock()
            .map_err(|_| Error::gpu(GpuFault::Failed, "the device's matrices were poisoned"))?;
        let key = held.put(g);
        Ok(Matrix {
            rows,
            cols,
            storage: Storage::Device(DeviceRows {
                parts: vec![DevicePart { key, rows }],
                dtype,
                bytes,
            }),
        })
    }
}
