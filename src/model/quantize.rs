//! `unmask quantize DIR OUT`: a checkpoint rewritten with every weight matrix its architecture
//! reads (linears, token embeddings) as q8_0 (`<name>.q8_0`, I8 `[rows, blocks·32]`, and
//! `<name>.q8_0_scale`, F16 `[rows, blocks]`) or q4_0 (`<name>.q4_0`, U8 `[rows, blocks·16]`
//! of packed 4-bit values, and `<name>.q4_0_scale`, F16 `[rows, blocks]`), everything else
//! (norms, biases, position tables) copied as it is, so the folder loads as exactly the model
//! `--weights q8` (or `q4`) quantises at load. [`Weights::matrix`] reads the pair back in place.
//!
//! The file is written one tensor at a time after a header computed up front, so quantising an
//! 8B checkpoint needs no more memory than its largest tensor.

use std::io::Write;
use std::path::Path;

use safetensors::Dtype;
use serde_json::{json, Map, Value};

use super::matrix::{Matrix, Quant, Storage, Q4_BYTES, Q8_BLOCK};
use super::weights::{quant_name, quant_scale_name, Weights};
use crate::error::{Error, Result};

/// What one quantisation did.
#[derive(Debug, Default)]
pub struct Quantized {
    pub tensors: usize,
    pub quantized: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

enum Entry {
    Copy(String),
    Quantize(String, usize, usize),
}

/// Quantises the checkpoint in `dir` to q8_0 into the folder `out` (created; its config.json
/// and tokenizer files are copied). `progress(done, total)` is called after each tensor.
pub fn quantize_dir(
    dir: &Path,
    out: &Path,
    progress: impl FnMut(usize, usize),
) -> Result<Quantized> {
    quantize_dir_as(dir, out, Quant::Q8, progress)
}

/// [`quantize_dir`] into `format`.
pub fn quantize_dir_as(
    dir: &Path,
    out: &Path,
    format: Quant,
    mut progress: impl FnMut(usize, usize),
) -> Result<Quantized> {
    if out.exists() && std::fs::read_dir(out).map_or(true, |mut d| d.next().is_some()) {
        return Err(Error::file(
            out.display(),
            "already exists and is not an empty folder; give a new one",
        ));
    }
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(cfg_path.display(), e))?;
    let cfg = super::config::Config::parse(cfg_path.display().to_string(), &text)?;
    let w = Weights::open_dir(dir)?;
    // a build names the tensors the architecture reads as matrices (and checks the checkpoint)
    drop(super::Model::from_parts(&cfg, &w, None)?);
    let matrices = w.matrix_names();
    std::fs::create_dir_all(out).map_err(|e| Error::io(out.display(), e))?;
    for f in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        let src = dir.join(f);
        if src.is_file() {
            std::fs::copy(&src, out.join(f)).map_err(|e| Error::io(src.display(), e))?;
        }
    }

    let mut header = Map::new();
    header.insert(
        "__metadata__".into(),
        json!({"format": "pt", "unmask.quantization": format.name()}),
    );
    let mut entries = Vec::new();
    let mut offset = 0usize;
    let mut add = |header: &mut Map<String, Value>,
                   name: String,
                   dtype: String,
                   shape: Vec<usize>,
                   len: usize| {
        header.insert(
            name,
            json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len]}),
        );
        offset += len;
    };
    let mut report = Quantized::default();
    for name in w.names() {
        let (dtype, shape) = w.info(&name).expect("listed");
        report.tensors += 1;
        let matrix = matrices.binary_search(&name).is_ok();
        if let (true, [rows, cols]) = (matrix, shape.as_slice()) {
            let (rows, cols) = (*rows, *cols);
            let blocks = Matrix::q8_blocks(cols);
            // both formats have a byte's element: the row width in elements is its bytes
            let (dtype, width) = match format {
                Quant::Q8 => ("I8", blocks * Q8_BLOCK),
                Quant::Q4 => ("U8", blocks * Q4_BYTES),
            };
            add(
                &mut header,
                quant_name(&name, format),
                dtype.into(),
                vec![rows, width],
                rows * width,
            );
            add(
                &mut header,
                quant_scale_name(&name, format),
                "F16".into(),
                vec![rows, blocks],
                2 * rows * blocks,
            );
            entries.push(Entry::Quantize(name, rows, cols));
            report.quantized += 1;
        } else {
            let len = w.raw(&name).expect("listed").len();
            add(&mut header, name.clone(), dtype_name(dtype), shape, len);
            entries.push(Entry::Copy(name));
        }
    }
    let mut text = serde_json::to_string(&Value::Object(header)).expect("JSON of a map");
    // the data section starts 8-aligned, as the reference writer keeps it
    while !(8 + text.len()).is_multiple_of(8) {
        text.push(' ');
    }

    let path = out.join("model.safetensors");
    let file = std::fs::File::create(&path).map_err(|e| Error::io(path.display(), e))?;
    let mut f = std::io::BufWriter::with_capacity(1 << 20, file);
    let io = |e: std::io::Error| Error::io(path.display(), e);
    f.write_all(&(text.len() as u64).to_le_bytes())
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    let total = entries.len();
    for (i, e) in entries.iter().enumerate() {
        match e {
            Entry::Copy(name) => f.write_all(w.raw(name).expect("listed")).map_err(io)?,
            Entry::Quantize(name, rows, cols) => {
                let q = w
                    .matrix(name, *rows, *cols)?
                    .quantized_as(format)
                    .map_err(|e| Error::tensor(w.origin(), name, e.to_string()))?;
                let (Storage::Q8 { qs, scales } | Storage::Q4 { qs, scales }) = &q.storage else {
                    unreachable!("quantized_as() gives q8_0 or q4_0")
                };
                let mut failed = None;
                for part in [qs, scales] {
                    part.for_rows(0, *rows, |b| {
                        if failed.is_none() {
                            failed = f.write_all(b).err();
                        }
                    });
                }
                if let Some(e) = failed {
                    return Err(io(e));
                }
            }
        }
        progress(i + 1, total);
    }
    f.flush().map_err(io)?;
    drop(f);
    report.bytes_in = w.data_bytes() as u64;
    report.bytes_out = std::fs::metadata(&path).map_err(io)?.len();
    Ok(report)
}

/// The header's spelling of a dtype (safetensors serialises its enum by these names).
fn dtype_name(d: Dtype) -> String {
    serde_json::to_value(d)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{d:?}"))
}
