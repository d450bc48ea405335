//! A batch of token canvases and the `unmask forward` file contract: `input_ids` (I64 or I32
//! `[B, L]`), optional `attention_mask` (`[B, L]`, 1 = real token), `token_type_ids` (`[B, L]`)
//! and `sigma` (F32 `[B]`) in; F32 tensors out.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The most canvases (rows, `B`) one forward input may hold, checked from the file's header
/// before any id is read: far above any parity batch.
pub const MAX_BATCH: usize = 1024;

/// The canvas of a continuous model as its input path takes it (see
/// [`VectorIo`](crate::model::plan::VectorIo)).
#[derive(Clone, Copy, Debug)]
pub struct VectorInput<'a> {
    /// `[L, 2·width]`: each position's noisy vector then its self-conditioning estimate, each
    /// already scaled as the family feeds them.
    pub input: &'a [f32],
    /// `[L, width]`: the noisy vector times the output prior's coefficient (Plaid's
    /// `(α/σ²)·z`), whose product with the table is added to the logits; empty for none.
    pub prior: &'a [f32],
}

/// One canvas of a batch, as a backend runs it.
#[derive(Clone, Copy, Debug)]
pub struct Row<'a> {
    /// The tokens; for a continuous model their count is the canvas length and the ids are
    /// not read (the vectors are).
    pub ids: &'a [u32],
    /// `false` = padding: no position attends to it.
    pub key_mask: Option<&'a [bool]>,
    pub token_types: Option<&'a [u32]>,
    /// MDLM's noise level σ (ignored by models without time conditioning); −log SNR for the
    /// continuous families.
    pub sigma: f32,
    /// The continuous canvas, for a model with a vector input path.
    pub vectors: Option<VectorInput<'a>>,
}

impl<'a> Row<'a> {
    /// A canvas with no padding and no token types.
    pub fn plain(ids: &'a [u32], sigma: f32) -> Row<'a> {
        Row {
            ids,
            key_mask: None,
            token_types: None,
            sigma,
            vectors: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Batch {
    pub size: usize,
    pub len: usize,
    /// `[size, len]` row-major
    pub ids: Vec<u32>,
    pub attention_mask: Option<Vec<bool>>,
    pub token_types: Option<Vec<u32>>,
    /// One σ per row (MDLM time conditioning); 0 when absent.
    pub sigma: Option<Vec<f32>>,
}

impl Batch {
    /// A single canvas with no padding.
    pub fn single(ids: Vec<u32>) -> Batch {
        Batch {
            size: 1,
            len: ids.len(),
            ids,
            attention_mask: None,
            token_types: None,
            sigma: None,
        }
    }

    pub fn row(&self, b: usize) -> Row<'_> {
        let r = b * self.len..(b + 1) * self.len;
        Row {
            ids: &self.ids[r.clone()],
            key_mask: self.attention_mask.as_ref().map(|m| &m[r.clone()]),
            token_types: self.token_types.as_ref().map(|t| &t[r]),
            sigma: self.sigma.as_ref().map_or(0.0, |s| s[b]),
            vectors: None,
        }
    }

    /// Whether position `(b, i)` is a real token (not padding).
    pub fn is_real(&self, b: usize, i: usize) -> bool {
        self.attention_mask
            .as_ref()
            .is_none_or(|m| m[b * self.len + i])
    }

    /// Reads the forward contract's input file.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_safetensors(path: &std::path::Path) -> Result<Batch> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
        Batch::from_safetensors_bytes(&path.display().to_string(), &bytes)
    }

    pub fn from_safetensors_bytes(name: &str, bytes: &[u8]) -> Result<Batch> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::file(name, format!("not a valid safetensors file: {e}")))?;
        let ids_view = st.tensor("input_ids").map_err(|_| {
            Error::tensor(name, "input_ids", "missing (expected I64 or I32 [B, L])")
        })?;
        let shape = ids_view.shape().to_vec();
        if shape.len() != 2 || shape[0] == 0 || shape[1] == 0 {
            return Err(Error::tensor(
                name,
                "input_ids",
                format!("has shape {shape:?}, expected a non-empty [B, L]"),
            ));
        }
        let (size, len) = (shape[0], shape[1]);
        if size > MAX_BATCH {
            return Err(Error::tensor(
                name,
                "input_ids",
                format!("has {size} rows (shape {shape:?}); one forward input holds at most {MAX_BATCH} canvases"),
            ));
        }
        let ids = read_ints(name, "input_ids", &st, &shape)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                u32::try_from(v).map_err(|_| {
                    Error::input(format!(
                        "{name}: input_ids[{}, {}] = {v} is not a valid token id",
                        i / len,
                        i % len
                    ))
                })
            })
            .collect::<Result<Vec<u32>>>()?;
        let attention_mask = match st.tensor("attention_mask") {
            Ok(_) => {
                let m = read_ints(name, "attention_mask", &st, &shape)?;
                let mut out = Vec::with_capacity(m.len());
                for (i, v) in m.into_iter().enumerate() {
                    match v {
                        0 => out.push(false),
                        1 => out.push(true),
                        _ => {
                            return Err(Error::tensor(
                                name,
                                "attention_mask",
                                format!("value {v} at [{}, {}]; expected 0 or 1", i / len, i % len),
                            ))
                        }
                    }
                }
                Some(out)
            }
            Err(_) => None,
        };
        let token_types = match st.tensor("token_type_ids") {
            Ok(_) => Some(
                read_ints(name, "token_type_ids", &st, &shape)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        u32::try_from(v).map_err(|_| {
                            Error::input(format!(
                                "{name}: token_type_ids[{}, {}] = {v} is negative",
                                i / len,
                                i % len
                            ))
                        })
                    })
                    .collect::<Result<Vec<u32>>>()?,
            ),
            Err(_) => None,
        };
        let sigma = match st.tensor("sigma") {
            Ok(v) => {
                if v.dtype() != Dtype::F32 || v.shape() != [size] {
                    return Err(Error::tensor(
                        name,
                        "sigma",
                        format!("is {:?} {:?}, expected F32 [{size}]", v.dtype(), v.shape()),
                    ));
                }
                Some(
                    v.data()
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                )
            }
            Err(_) => None,
        };
        Ok(Batch {
            size,
            len,
            ids,
            attention_mask,
            token_types,
            sigma,
        })
    }
}

fn read_ints(name: &str, tensor: &str, st: &SafeTensors, shape: &[usize]) -> Result<Vec<i64>> {
    let v = st
        .tensor(tensor)
        .map_err(|e| Error::tensor(name, tensor, e.to_string()))?;
    if v.shape() != shape {
        return Err(Error::tensor(
            name,
            tensor,
            format!(
                "has shape {:?}, expected {shape:?} like input_ids",
                v.shape()
            ),
        ));
    }
    match v.dtype() {
        Dtype::I64 => Ok(v
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()),
        Dtype::I32 => Ok(v
            .data()
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as i64)
            .collect()),
        other => Err(Error::tensor(
            name,
            tensor,
            format!("has dtype {other:?}, expected I64 or I32"),
        )),
    }
}

/// Writes F32 tensors as one safetensors file.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_safetensors(path: &std::path::Path, tensors: &[(&str, &Tensor)]) -> Result<()> {
    let mut views = HashMap::new();
    for (name, t) in tensors {
        let view = safetensors::tensor::TensorView::new(
            Dtype::F32,
            t.shape.clone(),
            bytemuck::cast_slice(&t.data),
        )
        .map_err(|e| Error::file(path.display(), format!("cannot write tensor `{name}`: {e}")))?;
        views.insert(name.to_string(), view);
    }
    safetensors::serialize_to_file(views, None, path)
        .map_err(|e| Error::file(path.display(), format!("cannot write: {e}")))
}

/// Reads the F32 tensors of a file (tests and tools); tensors of other dtypes are left out.
pub fn read_f32_tensors(name: &str, bytes: &[u8]) -> Result<HashMap<String, Tensor>> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::file(name, format!("not a valid safetensors file: {e}")))?;
    let mut out = HashMap::new();
    for (k, v) in st.tensors() {
        if v.dtype() != Dtype::F32 {
            continue;
        }
        let data = v
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(k, Tensor::new(v.shape().to_vec(), data));
    }
    Ok(out)
}
