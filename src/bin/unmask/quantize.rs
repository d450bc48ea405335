//! `unmask quantize DIR OUT`: a checkpoint rewritten with its weight matrices in q8_0, in a new
//! folder that appears whole or not at all (`files::StagedDir`).

use std::path::{Path, PathBuf};

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
}

pub fn run(args: Args, out: &mut Out) -> std::result::Result<(), Fail> {
    let Args { dir, out: dst } = args;
    let mut inputs = files::model_inputs(&dir);
    inputs.push(dir.clone());
    files::refuse_inputs("OUT", &dst, &inputs)?;
    let staged = files::StagedDir::new(&dst)?;
    let bar = Progress::new("tensors");
    let q = unmask::model::quantize::quantize_dir(&dir, staged.path(), |d, t| bar.set(d, t))
        .map_err(|e| named_dir(e, staged.path(), &dst))?;
    bar.finish();
    staged.commit()?;
    out.line(&format!(
        "{}: {} of {} tensors quantised to q8_0, {:.1} MB -> {:.1} MB",
        dst.join("model.safetensors").display(),
        q.quantized,
        q.tensors,
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
