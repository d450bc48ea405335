//! Dispatcher for `shaders/embed.wgsl`: token (+ position, + token-type) embedding sum, one
//! dispatch per row chunk of the token table.

use super::weights::{GpuMatrix, Packing};
use super::{Binding, Call, Gpu, Shader};

/// `struct Params` of `embed.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct EmbedParams {
    pub len: u32,
    pub d: u32,
    pub ldt: u32,
    /// The token rows this dispatch's chunk of the table holds: `tok_start .. tok_start + tok_rows`.
    pub tok_start: u32,
    pub tok_rows: u32,
    pub _p0: u32,
    pub _p1: u32,
    pub _p2: u32,
}

pub struct GpuEmbeddings {
    pub tokens: GpuMatrix,
    pub positions: Option<wgpu::Buffer>,
    pub types: Option<wgpu::Buffer>,
    pub d: usize,
}

/// `ids`, `pos_ids`, `type_ids`: `[len]` u32 buffers; `x`: `[len, d]`.
#[allow(clippy::too_many_arguments)]
pub fn embed(
    gpu: &Gpu,
    e: &GpuEmbeddings,
    ids: &wgpu::Buffer,
    pos_ids: &wgpu::Buffer,
    type_ids: &wgpu::Buffer,
    x: &wgpu::Buffer,
    len: usize,
) -> Vec<Call> {
    use super::context::expect_values as at_least;
    at_least(ids, "embed ids [L]", len);
    at_least(x, "embed x [L, d]", len * e.d);
    if e.positions.is_some() {
        at_least(pos_ids, "embed pos_ids [L]", len);
    }
    if e.types.is_some() {
        at_least(type_ids, "embed type_ids [L]", len);
    }
    let bindings = [
        Binding::Read,
        Binding::Read,
        Binding::Read,
        Binding::Read,
        Binding::Read,
        Binding::Read,
        Binding::Write,
        Binding::Uniform,
    ];
    e.tokens
        .chunks
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let first = k == 0;
            let flag = |b: bool| if b { 1.0 } else { 0.0 };
            let kernel = gpu.kernel(
                Shader::Embed,
                &bindings,
                &[
                    ("F16", flag(e.tokens.packing == Packing::F16)),
                    ("ACCUM", flag(!first)),
                    ("HAS_POS", flag(first && e.positions.is_some())),
                    super::WG_CONSTANT,
                    ("HAS_TYPES", flag(first && e.types.is_some())),
                ],
            );
            let params = EmbedParams {
                len: len as u32,
                d: e.d as u32,
                ldt: e.tokens.ldw as u32,
                tok_start: c.start as u32,
                tok_rows: c.rows as u32,
                _p0: 0,
                _p1: 0,
                _p2: 0,
            };
            gpu.call(
                &kernel,
                &[
                    ids,
                    pos_ids,
                    type_ids,
                    &c.buffer,
                    e.positions.as_ref().unwrap_or(&gpu.dummy),
                    e.types.as_ref().unwrap_or(&gpu.dummy),
                    x,
                ],
                &params,
                [(e.d as u32).div_ceil(super::WG), len as u32, 1],
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu;
    use crate::backend::gpu::test_gpu;
    use crate::backend::gpu::weights::{pack_rows, Chunk};
    use crate::model::matrix::Matrix;
    use crate::model::plan::{Embeddings, PositionIds};
    use crate::tensor::Tensor;
    use std::sync::Arc;

    #[test]
    fn matches_cpu_with_positions_types_and_a_split_table() {
        let Some(gpu) = test_gpu() else { return };
        let (v, d, len) = (23, 33, 7);
        let tok = Tensor::new(
            vec![v, d],
            (0..v * d).map(|i| (i as f32 * 0.013).sin()).collect(),
        );
        let pos = Tensor::new(
            vec![12, d],
            (0..12 * d).map(|i| (i as f32 * 0.07).cos()).collect(),
        );
        let types = Tensor::new(vec![2, d], (0..2 * d).map(|i| i as f32 * 0.001).collect());
        let ids: Vec<u32> = vec![1, 5, 22, 0, 9, 1, 1];
        let tt: Vec<u32> = vec![0, 0, 1, 1, 0, 1, 0];
        let plan_e = Embeddings {
            tokens: Arc::new(Matrix::f32(v, d, tok.data.clone())),
            positions: Some((pos.clone(), PositionIds::AfterPadding { pad_id: 1 })),
            token_types: Some(types.clone()),
            norm: None,
        };
        let want = cpu::embed::embed(&plan_e, &ids, Some(&tt));
        let pos_ids: Vec<u32> =
            cpu::embed::position_ids(PositionIds::AfterPadding { pad_id: 1 }, &ids)
                .iter()
                .map(|&p| p as u32)
                .collect();
        for f16 in [false, true] {
            let packing = if f16 { Packing::F16 } else { Packing::F32 };
            let mut tokens =
                GpuMatrix::upload(&gpu, "tok", &plan_e.tokens, f16, true, &Default::default())
                    .unwrap();
            // three chunks of 8 rows
            tokens.chunks = (0..v)
                .step_by(8)
                .map(|s| {
                    let e = (s + 8).min(v);
                    Chunk {
                        buffer: gpu.upload("tok", &pack_rows(&plan_e.tokens, s, e, packing)),
                        start: s,
                        rows: e - s,
                    }
                })
                .collect();
            let ge = GpuEmbeddings {
                tokens,
                positions: Some(gpu.upload("pos", &pos.data)),
                types: Some(gpu.upload("types", &types.data)),
                d,
            };
            let (ib, pb, tb, xb) = (
                gpu.upload("ids", &ids),
                gpu.upload("pos", &pos_ids),
                gpu.upload("tt", &tt),
                gpu.storage("x", (len * d * 4) as u64),
            );
            let calls = embed(&gpu, &ge, &ib, &pb, &tb, &xb, len);
            gpu.run(&calls.iter().collect::<Vec<_>>());
            let got: Vec<f32> = gpu.read_blocking(&[(&xb, 0, (len * d) as u64)]).unwrap();
            let tol = if f16 { 2e-3 } else { 1e-6 };
            let e = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(e < tol, "f16={f16}: {e}");
        }
    }
}
