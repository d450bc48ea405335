//! Weight matrices on the device: f16 packed two per u32 along the input dimension by default
//! (portable storage, arithmetic stays f32), f32 on request, split by rows over several buffers
//! when a matrix is larger than one storage binding (the 50k-row head on a 128 MiB limit).

use half::f16;

use super::Gpu;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

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
    pub f16: bool,
}

/// The words of rows `r0..r1` of a row-major `[rows, cols]` matrix.
pub fn pack_rows(t: &Tensor, r0: usize, r1: usize, f16: bool) -> Vec<u32> {
    let cols = t.cols();
    let mut out = Vec::with_capacity((r1 - r0) * cols.div_ceil(if f16 { 2 } else { 1 }));
    for r in r0..r1 {
        let row = t.row(r);
        if f16 {
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
    out
}

impl GpuMatrix {
    pub fn upload(gpu: &Gpu, name: &str, t: &Tensor, f16: bool) -> Result<GpuMatrix> {
        let (rows, cols) = (t.rows(), t.cols());
        let ldw = if f16 { cols.div_ceil(2) } else { cols };
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
            let words = pack_rows(t, start, end, f16);
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
            f16,
        })
    }

    pub fn bytes(&self) -> u64 {
        (self.rows * self.ldw * 4) as u64
    }
}
