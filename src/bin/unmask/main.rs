//! The `unmask` command line.
//!
//! Exit status: 0 when everything succeeded; 1 on any error (bad input, a model or runtime
//! failure, an output that cannot be written, such as a full disk; in batch mode, when any line
//! failed); 2 on a usage error (clap's); 141 when the reader of standard output went away (a
//! broken pipe, as `| head -1`), quietly, as a program killed by SIGPIPE reads to the shell.
//! Nothing here prints with `println!`: every line goes through [`Out`], whose errors become
//! one of these endings instead of a panic.

mod adapter;
mod animate;
mod bench;
mod device;
mod eval;
mod files;
mod forward;
mod infill;
mod out;
mod progress;
mod quantize;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use out::{Fail, Out};

#[derive(Parser)]
#[command(
    name = "unmask",
    version,
    about = "Masked-diffusion language models for text infilling"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The commands, each in its own file with its flags (`Args`) and its `run`; a variant's doc
/// comment is the command's help.
#[derive(Subcommand)]
enum Command {
    /// Run one forward pass over token ids from a safetensors file and write the logits
    /// (and their reading: subs or log-softmax log-probabilities, or SEDD's log score).
    Forward(forward::Args),
    /// Fill the holes of a template by iterative unmasking: `[MASK]`, `[MASK*N]`,
    /// `[[words to rewrite]]`, `\[` for a literal bracket. `-` reads one template per line from
    /// stdin and prints one line per input line (a blank one for a blank or failed line); a
    /// failed line is reported on stderr with its number, the batch goes on, and the exit status
    /// is 1.
    Infill(infill::Args),
    /// Measure model quality on a text file: masked-token accuracy and the family's bound (MDLM or uniform NELBO, SEDD score entropy).
    Eval(eval::Args),
    /// Rewrite a checkpoint with its weight matrices quantised to q8_0 (blocks of 32 int8 values
    /// and an f16 scale, as llama.cpp's Q8_0) or, with `--format q4`, q4_0 (blocks of 32 4-bit
    /// values and an f16 scale, as llama.cpp's Q4_0), in a safetensors layout `--model` reads
    /// back.
    Quantize(quantize::Args),
    /// Time the forward pass of an MDLM-OWT-shaped model with random weights (or of --model).
    Bench(bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = Out::stdout();
    let ended = run(cli.command, &mut out).and_then(|()| out.flush());
    out::exit(ended)
}

fn run(cmd: Command, out: &mut Out) -> Result<(), Fail> {
    match cmd {
        Command::Forward(args) => forward::run(args, out),
        Command::Infill(args) => infill::run(args, out),
        Command::Eval(args) => eval::run(args, out),
        Command::Quantize(args) => quantize::run(args, out),
        Command::Bench(args) => bench::run(args, out),
    }
}
