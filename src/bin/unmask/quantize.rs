//! `unmask quantize DIR OUT [--format q8|q4]`: a checkpoint rewritten with its weight matrices
//! in q8_0 or q4_0, in a new folder that appears whole or not at all (`files::StagedDir`).

use std::path::{Path, PathBuf};

use unmask::model::matrix::Quant;
use unmask::Error;

use crate::files;
use crate::out::{Fail, Out};
use crate::progress::Progress;

// The doc comment of `Command::Quantize` (main.rs) is this command's help.
#[derive(clap::Args)]
pub struct Args {
    /// Model folder in Hugging Face layout.
    dir: PathBuf,
    /// New folder for the quantised model (config and tokenizer are copied).
    out: PathBuf,
    /// Block format of the matrices.
    #[arg(long, value_enum, default_value = "q8")]
    format: FormatArg,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FormatArg {
    /// q8_0: 32 int8 values and an f16 scale a block, 1.06 bytes a weight.
    #[value(alias = "q8_0")]
    Q8,
    /// q4_0: 32 4-bit values and an f16 scale a block, 0.56 bytes a weight; less accurate.
    #[value(alias = "q4_0")]
    Q4,
}

pub fn run(args: Args, out: &mut Out) -> std::result::Result<(), Fail> {
    let Args {
        dir,
        out: dst,
        format,
    } = args;
    let format = match format {
        FormatArg::Q8 => Quant::Q8,
        FormatArg::Q4 => Quant::Q4,
    };
    let mut inputs = files::model_inputs(&dir);
    inputs.push(dir.clone());
    files::refuse_inputs("OUT", &dst, &inputs)?;
    let staged = files::StagedDir::new(&dst)?;
    let bar = Progress::new("tensors");
    let q =
        unmask::model::quantize::quantize_dir_as(&dir, staged.path(), format, |d, t| bar.set(d, t))
            .map_err(|e| named_dir(e, staged.path(), &dst))?;
    bar.finish();
    staged.commit()?;
    out.line(&format!(
        "{}: {} of {} tensors quantised to {}, {:.1} MB -> {:.1} MB",
        dst.join("model.safetensors").display(),
        q.quantized,
        q.tensors,
        format.name(),
        q.bytes_in as f64 / 1e6,
        q.bytes_out as f64 / 1e6
    ))
}

/// An error about a file in the temporary folder, told as about the folder given.
fn named_dir(e: Error, tmp: &Path, dest: &Path) -> Error {
    let tmp = tmp.display().to_string();
    let swap = |p: String| match p.strip_prefix(&tmp) {
        Some(rest) => format!("{}{rest}", dest.display()),
        None => p,
    };
    match e {
        Error::Io { path, source } => Error::Io {
            path: swap(path),
            source,
        },
        Error::File { path, msg } => Error::File {
            path: swap(path),
            msg,
        },
        e => e,
    }
}
