//! The one error type of the crate. Every message names what is wrong (file, tensor, field,
//! position) and what was expected, so a user can fix the input without reading the code.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read at all.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its contents are malformed (bad header, truncated data …).
    #[error("{path}: {msg}")]
    File { path: String, msg: String },
    /// A field of a config file is missing, has the wrong type or an unsupported value.
    #[error("{path}: field `{field}`: {msg}")]
    Config {
        path: String,
        field: String,
        msg: String,
    },
    /// A weight tensor is missing, has the wrong shape or an unsupported dtype.
    #[error("{path}: tensor `{tensor}`: {msg}")]
    Tensor {
        path: String,
        tensor: String,
        msg: String,
    },
    /// The caller's input (ids, masks, lengths, options) does not fit the model.
    #[error("input: {0}")]
    Input(String),
    /// The template cannot be read (bad hole syntax, no holes) or does not fit the model's
    /// context. Worded like any input error; kept apart so surfaces can tell the two apart.
    #[error("input: {0}")]
    Template(String),
    /// No adapter, a lost device, an allocation the device refused; `fault` says which.
    #[error("GPU: {msg}")]
    Gpu { fault: GpuFault, msg: String },
    /// The model cannot fit where it would run (wasm32 memory, the adapter's limits), found
    /// before its weights were read.
    #[error("model too large: {0}")]
    TooLarge(String),
    /// The model's scores for a masked row were not finite numbers (NaN or ±∞: non-finite
    /// weights, or logits that overflow once tempered or guided), so no token can be drawn
    /// from them. `step` is the sampler's step (from 1), `row` the canvas position. Found once
    /// per step, before any token of that step is chosen.
    #[error("the model produced non-finite scores at step {step}, row {row}")]
    NonFinite { step: usize, row: usize },
    /// The raw forward pass (`unmask forward`, `engine::forward`) produced a NaN or ±∞ logit at
    /// a real (non-padding) position: the weights hold a non-finite value, or the activations
    /// overflowed. `sequence` and `row` count from 0, `column` is the vocabulary id.
    #[error("the model produced a non-finite logit ({value}) at sequence {sequence}, row {row}, column {column}")]
    NonFiniteLogits {
        sequence: usize,
        row: usize,
        column: usize,
        value: f32,
    },
    /// The caller stopped the run (an `AbortSignal`, a host that said stop).
    #[error("aborted")]
    Aborted,
    /// The tokenizer could not be loaded or could not encode/decode.
    #[error("tokenizer {path}: {msg}")]
    Tokenizer { path: String, msg: String },
}

/// What kind of GPU failure an [`Error::Gpu`] is, for callers that react differently (the
/// JS bindings name their errors after it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuFault {
    /// No GPU API or no adapter here.
    Unavailable,
    /// The device was lost (driver reset, the browser reclaimed it).
    DeviceLost,
    /// The device refused an allocation.
    OutOfMemory,
    /// Anything else: a validation error, a failed readback, a shape the kernels cannot run.
    Failed,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }
    pub fn file(path: impl fmt::Display, msg: impl Into<String>) -> Self {
        Error::File {
            path: path.to_string(),
            msg: msg.into(),
        }
    }
    pub fn config(
        path: impl fmt::Display,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) -> Self {
        Error::Config {
            path: path.to_string(),
            field: field.into(),
            msg: msg.into(),
        }
    }
    pub fn tensor(
        path: impl fmt::Display,
        tensor: impl Into<String>,
        msg: impl Into<String>,
    ) -> Self {
        Error::Tensor {
            path: path.to_string(),
            tensor: tensor.into(),
            msg: msg.into(),
        }
    }
    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }
    pub fn template(msg: impl Into<String>) -> Self {
        Error::Template(msg.into())
    }
    pub fn gpu(fault: GpuFault, msg: impl Into<String>) -> Self {
        Error::Gpu {
            fault,
            msg: msg.into(),
        }
    }
}
