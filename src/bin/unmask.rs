//! The `unmask` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use unmask::backend::Backend;
use unmask::batch::{write_safetensors, Batch};
use unmask::{Model, Result};

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

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    /// Plain Rust on the CPU (the reference; multi-threaded).
    Cpu,
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Backend {
        match b {
            BackendArg::Cpu => Backend::Cpu,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run one forward pass over token ids from a safetensors file and write the logits
    /// (and, for MDLM, the subs log-probabilities).
    Forward {
        /// Model folder in Hugging Face layout (config.json, model.safetensors, tokenizer.json).
        #[arg(long)]
        model: PathBuf,
        /// Input: `input_ids` (I64/I32 [B, L]); optional `attention_mask`, `token_type_ids`, `sigma` (F32 [B]).
        #[arg(long)]
        input: PathBuf,
        /// Output: `logits` (F32 [B, L, V]) and, for MDLM, `log_probs`.
        #[arg(long)]
        output: PathBuf,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: BackendArg,
    },
    /// Time the forward pass of an MDLM-OWT-shaped model with random weights.
    Bench {
        /// Canvas lengths to time.
        #[arg(long, value_delimiter = ',', default_value = "128,512")]
        lengths: Vec<usize>,
        /// Timed runs per length (after one warm-up); the median is reported.
        #[arg(long, default_value_t = 5)]
        iters: usize,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Print one JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: BackendArg,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Forward {
            model,
            input,
            output,
            backend,
        } => {
            let model = Model::load(&model)?;
            let batch = Batch::read_safetensors(&input)?;
            let f = model.forward(&batch, backend.into(), false)?;
            let mut tensors = vec![("logits", &f.out.logits)];
            if let Some(lp) = &f.log_probs {
                tensors.push(("log_probs", lp));
            }
            write_safetensors(&output, &tensors)
        }
        Command::Bench {
            lengths,
            iters,
            threads,
            json,
            backend,
        } => bench(&lengths, iters, threads, json, backend.into()),
    }
}

fn bench(
    lengths: &[usize],
    iters: usize,
    threads: Option<usize>,
    json: bool,
    backend: Backend,
) -> Result<()> {
    use unmask::bench::{measure, random_mdlm, Shape};
    if let Some(n) = threads {
        // Only fails if a pool already exists, which cannot happen this early.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    let shape = Shape::mdlm_owt();
    if let Some(&bad) = lengths.iter().find(|&&l| l == 0 || l > shape.max_len) {
        return Err(unmask::Error::input(format!(
            "--lengths: {bad} is outside 1..={} (the model's maximum)",
            shape.max_len
        )));
    }
    eprintln!("building an MDLM-OWT-shaped model with random weights …");
    let model = random_mdlm(&shape, 0)?;
    let threads = rayon::current_num_threads();
    if !json {
        println!(
            "model: MDLM-OWT shape (12 x 768, 12 heads, V 50258), f32, backend {}, {threads} threads",
            backend.name()
        );
        println!(
            "{:>6} {:>12} {:>12} {:>10} {:>10}",
            "L", "ms/forward", "min ms", "GFLOP", "GFLOP/s"
        );
    }
    for &len in lengths {
        let m = measure(&model, "mdlm-owt-shape", backend, len, iters, 1)?;
        if json {
            println!("{}", serde_json::to_string(&m).expect("serialisable"));
        } else {
            println!(
                "{:>6} {:>12.1} {:>12.1} {:>10.2} {:>10.1}",
                m.len, m.ms_median, m.ms_min, m.gflop, m.gflops_per_s
            );
        }
    }
    Ok(())
}
