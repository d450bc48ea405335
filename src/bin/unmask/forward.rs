//! `unmask forward`: one forward pass over the token ids of a safetensors file, its logits (and
//! their reading: MDLM's subs or UDLM's and Duo's log-probabilities, SEDD's log score) written
//! to another.

use std::path::{Path, PathBuf};

use unmask::backend::Denoiser;
use unmask::batch::{write_safetensors, Batch};
use unmask::blocking::block_on;
use unmask::engine;
use unmask::model::Model;
use unmask::{Error, Result};

use crate::adapter;
use crate::device::{self, Device};
use crate::files;
use crate::out::{Fail, Out};

// The doc comment of `Command::Forward` (main.rs) is this command's help.
#[derive(clap::Args)]
pub struct Args {
    /// Model folder in Hugging Face layout (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Input: `input_ids` (I64/I32 [B, L]); optional `attention_mask`, `token_type_ids`, `sigma` (F32 [B]).
    #[arg(long)]
    input: PathBuf,
    /// Output: `logits` (F32 [B, L, V]) and `log_probs` (MDLM subs, UDLM/Duo log-softmax) or `log_score` (SEDD).
    #[arg(long)]
    output: PathBuf,
    #[command(flatten)]
    device: Device,
}

pub fn run(args: Args, _out: &mut Out) -> std::result::Result<(), Fail> {
    let Args {
        model,
        input,
        output,
        device,
    } = args;
    let mut inputs = files::model_inputs(&model);
    inputs.push(input.clone());
    files::refuse_inputs("--output", &output, &inputs)?;
    // claimed before the work, so an unwritable folder is found at once
    let (staged, file) = files::Staged::new(&output)?;
    drop(file);
    let mut model = device::load_model(Some(&model), device)?;
    let batch = Batch::read_safetensors(&input)?;
    model.check(&batch)?;
    check_logits_fit(&input, &model, &batch)?;
    // the engine's choice, as for `infill`; a denoiser without an engine around it, since the
    // forward contract needs no tokenizer
    let (mut d, selection) = adapter::quietly(|| {
        block_on(async {
            let target = engine::target(device.options()).await?;
            let mut d = target.denoiser(&mut model).await?;
            d.warm_up().await?;
            Ok::<_, Error>((d, target.selection))
        })
    })?;
    device::tell(&selection);
    let f = block_on(engine::forward(&model, &mut d, &batch, false))?;
    let mut tensors = vec![("logits", &f.out.logits)];
    if let Some(lp) = &f.log_probs {
        tensors.push(("log_probs", lp));
    }
    if let Some(ls) = &f.log_score {
        tensors.push(("log_score", ls));
    }
    write_safetensors(staged.path(), &tensors).map_err(|e| named(e, &staged))?;
    Ok(staged.commit()?)
}

/// Refuses a forward batch whose logits (and their reading, for the DiT families) this machine's
/// memory cannot hold, before they are computed: `B × L × V` f32 values each.
fn check_logits_fit(input: &Path, model: &Model, batch: &Batch) -> Result<()> {
    use unmask::model::memory::{human, memory_limit};
    use unmask::model::LogitReading;
    let copies = match model.spec.logits {
        LogitReading::Subs | LogitReading::LogSoftmax | LogitReading::LogScore { .. } => 2u64,
        LogitReading::Raw | LogitReading::Shifted => 1,
    };
    let bytes = [batch.size, batch.len, model.spec.vocab_size]
        .iter()
        .try_fold(4 * copies, |acc, &n| acc.checked_mul(n as u64))
        .unwrap_or(u64::MAX);
    match memory_limit()? {
        Some(limit) if bytes > limit => Err(Error::file(
            input.display(),
            format!(
                "the output of {} x {} tokens over a vocabulary of {} takes {}, more than this machine's {} of memory; split the batch",
                batch.size,
                batch.len,
                model.spec.vocab_size,
                human(bytes),
                human(limit)
            ),
        )),
        _ => Ok(()),
    }
}

/// An error about the temporary file, told as about the path the user gave.
fn named(e: Error, staged: &files::Staged) -> Error {
    let (tmp, dest) = (staged.path(), staged.dest());
    if tmp == dest {
        return e;
    }
    let tmp = tmp.display().to_string();
    let dest = dest.display().to_string();
    match e {
        Error::Io { path, source } if path == tmp => Error::Io { path: dest, source },
        Error::File { path, msg } if path == tmp => Error::File { path: dest, msg },
        e => e,
    }
}
