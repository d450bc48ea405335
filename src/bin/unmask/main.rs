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
mod files;
mod out;
mod progress;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use unmask::batch::{write_safetensors, Batch};
use unmask::blocking::block_on;
use unmask::diffusion::eval::{evaluate_with, EvalOptions};
use unmask::diffusion::spans::{self, SpanLength, SpanOptions};
use unmask::diffusion::{Force, InfillOptions, InfillReport, SamplerOptions, Strategy, TraceEvent};
use unmask::engine::{
    self, AnyDenoiser, BackendChoice, DeviceOptions, Engine, LoadOptions, Reason, Selection,
    WeightFormat,
};
use unmask::model::matrix::Precision;
use unmask::model::Model;
use unmask::{Error, Result};

use out::{say, Fail, Out};
use progress::Progress;

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

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    /// The GPU when a hardware adapter exists, else the CPU (a line on stderr says which).
    Auto,
    /// WGSL compute shaders through wgpu, on any adapter (software Vulkan included).
    Gpu,
    /// Plain Rust on the CPU (the reference; multi-threaded).
    Cpu,
}

/// How weight matrices are held (arithmetic is f32 either way).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WeightsArg {
    /// As the checkpoint stores them on the host (f16/bf16 used in place); f16 on the GPU.
    F16,
    /// Every matrix widened to f32, on the host and the GPU (parity checks).
    F32,
    /// Quantised at load to q8_0 (blocks of 32 int8 with an f16 scale), on the host and the
    /// GPU: about half the memory of f16.
    Q8,
    /// Rounded to bf16 on the host at load (f16 on the GPU): for benchmarks of f32 checkpoints.
    Bf16,
}

/// Where a command runs.
#[derive(Clone, Copy, clap::Args)]
struct Device {
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendArg,
    /// Weight storage.
    #[arg(long, value_enum, default_value = "f16")]
    weights: WeightsArg,
}

impl WeightsArg {
    /// How the host holds the matrices.
    fn precision(self) -> Precision {
        match self {
            WeightsArg::Q8 => Precision::Q8,
            WeightsArg::Bf16 => Precision::Bf16,
            WeightsArg::F32 => Precision::F32,
            WeightsArg::F16 => Precision::Stored,
        }
    }
}

impl Device {
    fn precision(self) -> Precision {
        self.weights.precision()
    }

    fn options(self) -> DeviceOptions {
        DeviceOptions {
            backend: self.backend.choice(),
            weights: self.weights.format(),
        }
    }
}

impl BackendArg {
    fn choice(self) -> BackendChoice {
        match self {
            BackendArg::Auto => BackendChoice::Auto,
            BackendArg::Gpu => BackendChoice::Gpu,
            BackendArg::Cpu => BackendChoice::Cpu,
        }
    }
}

impl WeightsArg {
    fn format(self) -> WeightFormat {
        match self {
            WeightsArg::F16 | WeightsArg::Q8 | WeightsArg::Bf16 => WeightFormat::F16,
            WeightsArg::F32 => WeightFormat::F32,
        }
    }
}

/// The model folder given, or the embedded default model.
fn load_model(dir: Option<&std::path::Path>, device: Device) -> Result<Model> {
    let opts = LoadOptions::precision(device.precision());
    // a large model takes a while to map and check: say what it will take first
    if let Some(est) = dir.and_then(|d| engine::memory_estimate(d, opts.precision).ok()) {
        if est.weights >= 1 << 30 {
            say(&format!(
                "unmask: loading {}: {}",
                dir.map_or(String::new(), |d| d.display().to_string()),
                est.describe()
            ));
        }
    }
    match dir {
        Some(d) => engine::load_model_with(d, opts).map(warned),
        #[cfg(feature = "default-model")]
        None => engine::default_model_with(opts),
        #[cfg(not(feature = "default-model"))]
        None => Err(Error::input("no --model given, and this build has no embedded default model (feature `default-model`)")),
    }
}

/// What the load tolerated but the user should know (unused tensors), on stderr.
fn warned(model: Model) -> Model {
    for w in &model.warnings {
        out::say(&format!("warning: {w}"));
    }
    model
}

/// Says on stderr which backend runs and why, where that is news; in the CLI's own words
/// where the library's would name no flag.
fn tell(selection: &Selection) {
    let line = match (&selection.reason, &selection.adapter) {
        (Reason::SoftwareAdapterSkipped, Some(a)) => Some(format!(
            "only a software adapter ({a}); running on the CPU (--backend gpu uses it anyway)"
        )),
        _ => selection.notice(),
    };
    if let Some(l) = line {
        say(&format!("unmask: {l}"));
    }
}

/// The model on the backend `device` asks for, warmed up.
fn attach(model: Model, device: Device) -> Result<Engine> {
    let (inf, selection) =
        adapter::quietly(|| block_on(engine::infiller(model, device.options())))?;
    tell(&selection);
    Ok(inf)
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
        #[command(flatten)]
        device: Device,
    },
    /// Fill the holes of a template by iterative unmasking: `[MASK]`, `[MASK*N]`,
    /// `[[words to rewrite]]`, `\[` for a literal bracket. `-` reads one template per line from
    /// stdin and prints one line per input line (a blank one for a blank or failed line); a
    /// failed line is reported on stderr with its number, the batch goes on, and the exit status
    /// is 1.
    Infill {
        template: String,
        /// Model folder in Hugging Face layout (default: the embedded default model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Denoising steps (default: one per hole; Mask-Predict: 10 iterations).
        #[arg(long)]
        steps: Option<usize>,
        /// ancestral, first-hitting, top-prob, margin, entropy, threshold[:TAU], mask-predict
        /// (default: top-prob, the best fills measured by `eval --spans`).
        #[arg(long, value_parser = parse_strategy)]
        strategy: Option<Strategy>,
        /// Sampling temperature for the token choice; 0 = argmax (default: 0, and 1 for ancestral
        /// and first-hitting on MDLM).
        #[arg(long)]
        temperature: Option<f64>,
        /// Keep only the k most likely tokens (0 = all).
        #[arg(long, default_value_t = 0)]
        top_k: usize,
        /// Nucleus sampling: keep the most likely tokens up to this mass.
        #[arg(long, default_value_t = 1.0)]
        top_p: f64,
        /// Noise schedule: loglinear, cosine or linear.
        #[arg(long, default_value = "loglinear", value_parser = |s: &str| s.parse::<unmask::diffusion::ScheduleKind>())]
        schedule: unmask::diffusion::ScheduleKind,
        /// Semi-autoregressive blocks of this many holes, filled left to right.
        #[arg(long)]
        block_length: Option<usize>,
        /// Classifier-free guidance weight (the unconditional pass sees the known text masked).
        #[arg(long, default_value_t = 0.0)]
        cfg: f64,
        /// Fix a hole's token: HOLE=TEXT (holes numbered from 0; TEXT must be one token).
        #[arg(long = "force", value_name = "HOLE=TEXT")]
        forced: Vec<String>,
        /// Run a forward pass every step even when nothing changed.
        #[arg(long)]
        no_cache: bool,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write every step as JSON lines to this file.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// In the trace, also list each committed position's N most likely tokens (at most 16).
        #[arg(long, value_name = "N")]
        candidates: Option<usize>,
        /// With --candidates: also list them for every position a step predicted but left
        /// masked (`pending`), as the web demo's scrubber shows them.
        #[arg(long, requires = "candidates")]
        pending: bool,
        /// Print one JSON object per template instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        device: Device,
    },
    /// Measure model quality on a text file: masked-token accuracy and the MDLM perplexity bound.
    Eval {
        /// Model folder in Hugging Face layout (default: the embedded default model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// UTF-8 text; paragraphs are separated by blank lines.
        #[arg(long)]
        text: PathBuf,
        /// Fraction of each chunk's tokens masked for the accuracy figure.
        #[arg(long, default_value_t = 0.15)]
        mask_rate: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Score fills instead: cut a span of words out of sentences and fill it (one JSON
        /// line: exact match, token and word accuracy, NFE and ms per hole token).
        #[arg(long)]
        spans: bool,
        /// With --spans: words per span.
        #[arg(long, default_value_t = 2, requires = "spans")]
        span_words: usize,
        /// With --spans: spans of whole words making exactly this many tokens, instead.
        #[arg(long, requires = "spans", conflicts_with = "span_words")]
        span_tokens: Option<usize>,
        /// With --spans: write each hole as `[MASK*A-B]`, its length unknown to the sampler,
        /// and report how often the chosen length is the true one (only spans of A to B tokens
        /// are cut; A-B defaults to 1-8, as `[MASK*?]`).
        #[arg(long, value_name = "A-B", num_args = 0..=1, default_missing_value = "1-8", value_parser = parse_range, requires = "spans")]
        unknown_length: Option<(usize, usize)>,
        /// With --spans: spans to fill (fewer if the text has fewer eligible sentences).
        #[arg(long, default_value_t = 200, requires = "spans")]
        count: usize,
        /// With --spans: the unmasking strategy (default: the model's).
        #[arg(long, value_parser = parse_strategy, requires = "spans")]
        strategy: Option<Strategy>,
        /// With --spans: sampling temperature (default: the strategy's, as `infill`).
        #[arg(long, requires = "spans")]
        temperature: Option<f64>,
        /// With --spans: denoising steps (default: as `infill`).
        #[arg(long, requires = "spans")]
        steps: Option<usize>,
        /// With --spans: several settings over the same spans, printed as a table (JSON lines
        /// with --json): comma-separated STRATEGY[@TEMPERATURE][/STEPS], e.g.
        /// `ancestral,top-prob,ancestral@0.7,threshold:0.9`.
        #[arg(long, requires = "spans", conflicts_with_all = ["strategy", "temperature", "steps"])]
        compare: Option<String>,
        /// With --compare: JSON lines instead of the table.
        #[arg(long, requires = "compare")]
        json: bool,
        #[command(flatten)]
        device: Device,
    },
    /// Rewrite a checkpoint with its weight matrices quantised to q8_0 (blocks of 32 int8 values
    /// and an f16 scale, as llama.cpp's Q8_0), in a safetensors layout `--model` reads back.
    Quantize {
        /// Model folder in Hugging Face layout.
        dir: PathBuf,
        /// New folder for the quantised model (config and tokenizer are copied).
        out: PathBuf,
    },
    /// Time the forward pass of an MDLM-OWT-shaped model with random weights (or of --model).
    Bench {
        /// Time this model folder instead (its load time is reported too).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Canvas lengths to time.
        #[arg(long, value_delimiter = ',', default_value = "128,512")]
        lengths: Vec<usize>,
        /// Timed runs per length (after one warm-up), 1 to 10000; the median is reported.
        #[arg(long, default_value_t = 5)]
        iters: usize,
        /// Worker threads, 1 to 4 × the logical cores and at most 256 (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Print one JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// auto: the CPU, and the GPU beside it when any adapter exists; cpu or gpu: only that one.
        #[arg(long, value_enum, default_value = "auto")]
        backend: BackendArg,
        /// Weight storage: f16 (the GPU's f16; the host keeps what is stored), f32, bf16 or q8
        /// (the host's matrices rounded or quantised).
        #[arg(long, value_enum, default_value = "f16")]
        weights: WeightsArg,
        /// Also time the GPU matmul kernel alone on a few shapes (GFLOP/s).
        #[arg(long)]
        matmul: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = Out::stdout();
    let ended = run(cli.command, &mut out).and_then(|()| out.flush());
    out::exit(ended)
}

fn run(cmd: Command, out: &mut Out) -> std::result::Result<(), Fail> {
    match cmd {
        Command::Forward {
            model,
            input,
            output,
            device,
        } => {
            let mut inputs = files::model_inputs(&model);
            inputs.push(input.clone());
            files::refuse_inputs("--output", &output, &inputs)?;
            // claimed before the work, so an unwritable folder is found at once
            let (staged, file) = files::Staged::new(&output)?;
            drop(file);
            let model = load_model(Some(&model), device)?;
            let batch = Batch::read_safetensors(&input)?;
            model.check(&batch)?;
            check_logits_fit(&input, &model, &batch)?;
            let (mut d, selection) =
                adapter::quietly(|| block_on(AnyDenoiser::select(&model, device.options())))?;
            tell(&selection);
            let f = block_on(engine::forward(&model, &mut d, &batch, false))?;
            let mut tensors = vec![("logits", &f.out.logits)];
            if let Some(lp) = &f.log_probs {
                tensors.push(("log_probs", lp));
            }
            write_safetensors(staged.path(), &tensors).map_err(|e| named(e, &staged))?;
            Ok(staged.commit()?)
        }
        Command::Infill {
            template,
            model,
            steps,
            strategy,
            temperature,
            top_k,
            top_p,
            schedule,
            block_length,
            cfg,
            forced,
            no_cache,
            seed,
            trace,
            candidates,
            pending,
            json,
            device,
        } => {
            if let Some(t) = &trace {
                let inputs = model
                    .as_deref()
                    .map(files::model_inputs)
                    .unwrap_or_default();
                files::refuse_inputs("--trace", t, &inputs)?;
            }
            let mut inf = attach(load_model(model.as_deref(), device)?, device)?;
            let request = InfillOptions {
                strategy,
                steps,
                temperature,
                top_k,
                top_p,
                schedule,
                block_length,
                cfg,
                force: forced
                    .iter()
                    .map(|f| f.parse::<Force>())
                    .collect::<Result<_>>()?,
                cache: !no_cache,
                seed,
                candidates,
                pending,
            };
            let opts = request.resolve(&inf.model)?;
            if template == "-" {
                batch(&mut inf, &opts, trace, json, out)
            } else {
                infill(&mut inf, &template, &opts, trace, json, out)
            }
        }
        Command::Eval {
            model,
            text,
            mask_rate,
            seed,
            spans,
            span_words,
            span_tokens,
            unknown_length,
            count,
            strategy,
            temperature,
            steps,
            compare,
            json,
            device,
        } => {
            let mut inf = attach(load_model(model.as_deref(), device)?, device)?;
            let body = std::fs::read_to_string(&text).map_err(|e| Error::io(text.display(), e))?;
            if spans {
                let settings = match &compare {
                    Some(list) => list
                        .split(',')
                        .enumerate()
                        .map(|(i, s)| {
                            let entry = format!("--compare entry {} `{}`", i + 1, s.trim());
                            let setting = parse_setting(s.trim())
                                .map_err(|e| Error::input(format!("{entry}: {}", bare(&e))))?;
                            Ok((Some(entry), setting))
                        })
                        .collect::<Result<Vec<_>>>()?,
                    None => vec![(None, (strategy, temperature, steps))],
                };
                let max_tokens = inf.model.spec.max_len.saturating_sub(2);
                return eval_spans(
                    &mut inf,
                    &text,
                    &body,
                    &SpanOptions {
                        length: match span_tokens {
                            Some(n) => SpanLength::Tokens(n),
                            None => SpanLength::Words(span_words),
                        },
                        count,
                        seed,
                        max_tokens,
                        lengths: unknown_length,
                    },
                    &settings,
                    compare.is_some() && !json,
                    out,
                );
            }
            let bar = Progress::new("tokens");
            let report = block_on(evaluate_with(
                &mut inf,
                &body,
                &EvalOptions { mask_rate, seed },
                &mut |done, total| bar.set(done, total),
            ))
            .map_err(|e| match e {
                // what is wrong with the text, named with its file
                Error::Input(m) => Error::file(text.display(), m),
                e => e,
            })?;
            bar.finish();
            out.json(&report)
        }
        Command::Quantize { dir, out: dst } => {
            let mut inputs = files::model_inputs(&dir);
            inputs.push(dir.clone());
            files::refuse_inputs("OUT", &dst, &inputs)?;
            let staged = files::StagedDir::new(&dst)?;
            let bar = Progress::new("tensors");
            let q =
                unmask::model::quantize::quantize_dir(&dir, staged.path(), |d, t| bar.set(d, t))
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
        Command::Bench {
            model,
            lengths,
            iters,
            threads,
            json,
            backend,
            weights,
            matmul,
        } => bench(
            model.as_deref(),
            &lengths,
            iters,
            threads,
            json,
            backend,
            weights,
            matmul,
            out,
        ),
    }
}

/// Refuses a forward batch whose logits (and, for MDLM, log-probabilities) this machine's
/// memory cannot hold, before they are computed: `B × L × V` f32 values each.
fn check_logits_fit(input: &std::path::Path, model: &Model, batch: &Batch) -> Result<()> {
    use unmask::model::memory::{human, memory_limit};
    let copies = match model.spec.logits {
        unmask::model::LogitReading::Subs => 2u64,
        _ => 1,
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

/// The message of `e` without the `input: ` its Display starts with for input errors, so a
/// prefix such as a line number or a file can go before it.
fn bare(e: &Error) -> String {
    match e {
        Error::Input(m) | Error::Template(m) => m.clone(),
        e => e.to_string(),
    }
}

/// The most worker threads `bench --threads` takes: 4 × the logical cores, at most 256 (and
/// never fewer than the cores).
fn max_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    (4 * cores).min(256).max(cores)
}

#[allow(clippy::too_many_arguments)]
fn bench(
    dir: Option<&std::path::Path>,
    lengths: &[usize],
    iters: usize,
    threads: Option<usize>,
    json: bool,
    backend: BackendArg,
    weights: WeightsArg,
    matmul: bool,
    out: &mut Out,
) -> std::result::Result<(), Fail> {
    use unmask::bench::{measure, random_mdlm, Shape};
    if iters == 0 || iters > unmask::bench::MAX_ITERS {
        return Err(Error::input(format!(
            "--iters: {iters} is outside 1..={}",
            unmask::bench::MAX_ITERS
        ))
        .into());
    }
    if let Some(n) = threads {
        let max = max_threads();
        if n == 0 || n > max {
            return Err(Error::input(format!(
                "--threads: {n} is outside 1..={max} (4 × this machine's logical cores, at most 256)"
            ))
            .into());
        }
        // fails if the threads cannot be spawned (a pool cannot exist this early)
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| Error::input(format!("--threads {n}: cannot start the threads: {e}")))?;
    }
    let shape = Shape::mdlm_owt();
    let precision = weights.precision();
    // the model first: its maximum length bounds --lengths, and a model that does not fit is
    // refused before anything else
    let (mut model, name, load_s) = match dir {
        Some(d) => {
            let t0 = std::time::Instant::now();
            let m = load_model(Some(d), Device { backend, weights })?;
            (m, d.display().to_string(), Some(t0.elapsed().as_secs_f64()))
        }
        None => {
            say("building an MDLM-OWT-shaped model with random weights …");
            let m = engine::prepare(random_mdlm(&shape, 0)?, LoadOptions::precision(precision))?;
            (m, "mdlm-owt-shape".to_string(), None)
        }
    };
    let max_len = model.spec.max_len;
    if let Some(&bad) = lengths.iter().find(|&&l| l == 0 || l > max_len) {
        return Err(Error::input(format!(
            "--lengths: {bad} is outside 1..={max_len} (the model's maximum)"
        ))
        .into());
    }
    // auto benchmarks the GPU beside the CPU on any adapter, software ones included
    #[cfg(feature = "gpu")]
    let gpu = {
        use unmask::backend::gpu::Gpu;
        match backend {
            BackendArg::Cpu => None,
            BackendArg::Gpu => Some(std::sync::Arc::new(
                adapter::quietly(|| block_on(Gpu::new())).map_err(Fail::from)?,
            )),
            BackendArg::Auto => adapter::quietly(|| block_on(Gpu::new()))
                .ok()
                .map(std::sync::Arc::new),
        }
    };
    #[cfg(not(feature = "gpu"))]
    let _ = weights;
    #[cfg(not(feature = "gpu"))]
    if backend == BackendArg::Gpu {
        return Err(Error::gpu(
            unmask::error::GpuFault::Unavailable,
            "this build has no GPU backend (feature `gpu`)",
        )
        .into());
    }
    // the header first: an unwritable stdout is found before minutes of work
    let threads = rayon::current_num_threads();
    let held: Vec<&str> = {
        let mut v: Vec<&str> = model.plan()?.matrices().iter().map(|m| m.dtype()).collect();
        v.sort();
        v.dedup();
        v
    };
    if !json {
        match load_s {
            Some(s) => out.line(&format!(
                "model: {name} ({} x {}, V {}), loaded in {s:.2} s, head over all rows",
                model.plan()?.blocks.len(),
                model.plan()?.hidden,
                model.plan()?.vocab
            ))?,
            None => out.line("model: MDLM-OWT shape (12 x 768, 12 heads, V 50258), random weights, head over all rows")?,
        }
        out.line(&format!(
            "cpu: {} weights ({:.1} MB), f32 arithmetic, {threads} threads",
            held.join("+"),
            model.plan()?.matrix_bytes() as f64 / 1e6
        ))?;
        #[cfg(feature = "gpu")]
        if let Some(g) = &gpu {
            let w = match weights {
                WeightsArg::F32 => "f32 weights",
                WeightsArg::Q8 => "q8_0 weights (embeddings f16)",
                WeightsArg::F16 | WeightsArg::Bf16 => "f16 weights",
            };
            out.line(&format!("gpu: {}, {w}, f32 arithmetic", g.describe()))?;
        }
        out.line(&format!(
            "{:>7} {:>6} {:>12} {:>12} {:>10} {:>10}",
            "backend", "L", "ms/forward", "min ms", "GFLOP", "GFLOP/s"
        ))?;
    }
    // the GPU uploads the plan as prepared, then the CPU packs its panels in place
    let mut denoisers: Vec<AnyDenoiser> = Vec::new();
    #[cfg(feature = "gpu")]
    if let Some(g) = &gpu {
        denoisers.push(block_on(AnyDenoiser::gpu(
            g.clone(),
            &model,
            weights.format(),
        ))?);
    }
    if backend != BackendArg::Gpu {
        engine::for_cpu(&mut model)?;
        denoisers.insert(0, AnyDenoiser::cpu(&model)?);
    }
    for &len in lengths {
        for d in &mut denoisers {
            let m = block_on(measure(&model, d, &name, len, iters, 1))?;
            if json {
                out.json(&m)?;
            } else {
                out.line(&format!(
                    "{:>7} {:>6} {:>12.1} {:>12.1} {:>10.2} {:>10.1}",
                    m.backend, m.len, m.ms_median, m.ms_min, m.gflop, m.gflops_per_s
                ))?;
            }
        }
    }
    if matmul {
        #[cfg(not(feature = "gpu"))]
        return Err(Error::input("--matmul needs the GPU backend (feature `gpu`)").into());
        #[cfg(feature = "gpu")]
        {
            let g = gpu
                .as_ref()
                .ok_or_else(|| Error::input("--matmul needs a GPU adapter"))?;
            for (m, k, n) in [
                (128, 768, 768),
                (512, 768, 3072),
                (512, 3072, 768),
                (1024, 768, 2304),
                (32, 768, 50258),
            ] {
                for f16 in [true, false] {
                    let r = block_on(unmask::bench::matmul_gflops(g, m, k, n, f16, iters))?;
                    if json {
                        out.json(&r)?;
                    } else {
                        out.line(&format!(
                            "matmul {m}x{k}x{n} {}: {:.2} ms, {:.1} GFLOP/s",
                            if f16 { "f16" } else { "f32" },
                            r.ms_median,
                            r.gflops_per_s
                        ))?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn parse_strategy(s: &str) -> std::result::Result<Strategy, String> {
    s.parse()
}

/// One setting of `eval --compare`: `STRATEGY[@TEMPERATURE][/STEPS]`.
type Setting = (Option<Strategy>, Option<f64>, Option<usize>);

fn parse_setting(s: &str) -> Result<Setting> {
    if s.is_empty() {
        return Err(Error::input(
            "is empty; give STRATEGY[@TEMPERATURE][/STEPS]",
        ));
    }
    let bad = Error::input;
    let (rest, steps) = match s.split_once('/') {
        Some((r, n)) => (
            r,
            Some(
                n.parse::<usize>()
                    .map_err(|_| bad(format!("steps `{n}` is not a count")))?,
            ),
        ),
        None => (s, None),
    };
    let (name, temp) = match rest.split_once('@') {
        Some((n, t)) => (
            n,
            Some(
                t.parse::<f64>()
                    .map_err(|_| bad(format!("temperature `{t}` is not a number")))?,
            ),
        ),
        None => (rest, None),
    };
    let strategy = name.parse::<Strategy>().map_err(bad)?;
    Ok((Some(strategy), temp, steps))
}

/// `A-B` for `--unknown-length`, read as the template reads `[MASK*A-B]`.
fn parse_range(s: &str) -> std::result::Result<(usize, usize), String> {
    let t = unmask::text::Template::parse(&format!("[MASK*{s}]"), None).map_err(|e| bare(&e))?;
    t.ranges()
        .first()
        .copied()
        .ok_or_else(|| format!("`{s}` is not a range of lengths like 1-8"))
}

/// `eval --spans`: each setting over the same spans, as JSON lines or one table.
fn eval_spans(
    inf: &mut Engine,
    path: &std::path::Path,
    body: &str,
    opts: &SpanOptions,
    settings: &[(Option<String>, Setting)],
    table: bool,
    out: &mut Out,
) -> std::result::Result<(), Fail> {
    let named = |e: Error| match e {
        Error::Input(m) => Error::file(path.display(), m),
        e => e,
    };
    let cases = spans::pick(body, inf.tokenizer(), opts).map_err(named)?;
    // a value out of range, or one the spans' holes do not suit, is named with its entry
    let entry_error = |entry: &Option<String>, e: Error| match (entry, e) {
        (Some(entry), e @ (Error::Input(_) | Error::Template(_))) => {
            Error::input(format!("{entry}: {}", bare(&e)))
        }
        (_, e) => e,
    };
    let mut samplers = Vec::new();
    for (entry, (strategy, temperature, steps)) in settings {
        let sampler = InfillOptions {
            strategy: *strategy,
            temperature: *temperature,
            steps: *steps,
            seed: opts.seed,
            ..InfillOptions::default()
        }
        .resolve(&inf.model)
        .map_err(|e| entry_error(entry, e))?;
        samplers.push((entry, sampler));
    }
    let mut rows = Vec::new();
    for (entry, sampler) in samplers {
        // with unknown lengths each span is a fill per length: the bar counts those
        let bar = Progress::new(match opts.lengths {
            Some(_) => "fills",
            None => "spans",
        });
        let report = block_on(spans::evaluate(
            inf,
            &cases,
            &sampler,
            opts.length,
            &mut |done, total| bar.set(done, total),
        ))
        .map_err(|e| entry_error(entry, e))?;
        bar.finish();
        if table {
            rows.push(report);
        } else {
            out.json(&report)?;
        }
    }
    if table {
        let length = match opts.length {
            SpanLength::Words(n) => format!("{n} words"),
            SpanLength::Tokens(n) => format!("{n} tokens"),
        };
        out.line(&format!(
            "{} spans of {length} from {} (seed {})",
            cases.len(),
            path.display(),
            opts.seed
        ))?;
        let unknown = opts.lengths.is_some();
        out.line(&format!(
            "| strategy | temperature | steps | exact | token acc. | word acc. | NFE / hole | ms / hole |{}",
            if unknown { " true length wins (chance; most common length) |" } else { "" }
        ))?;
        out.line(&format!(
            "|---|---|---|---|---|---|---|---|{}",
            if unknown { "---|" } else { "" }
        ))?;
        for r in &rows {
            let wins = match (r.length_right, r.length_chance, r.length_most_common) {
                (Some(w), Some(c), Some(m)) => {
                    format!(
                        " {:.1}% ({:.1}%; {:.1}%) |",
                        100.0 * w,
                        100.0 * c,
                        100.0 * m
                    )
                }
                _ => String::new(),
            };
            out.line(&format!(
                "| {} | {} | {} | {:.1}% | {:.1}% | {:.1}% | {:.2} | {:.1} |{wins}",
                r.strategy,
                r.temperature,
                r.steps.map_or("default".into(), |n| n.to_string()),
                100.0 * r.exact,
                100.0 * r.token_accuracy,
                100.0 * r.word_accuracy,
                r.nfe_per_hole,
                r.ms_per_hole
            ))?;
        }
    }
    Ok(())
}

/// The trace file, when asked for: every step of every template as JSON lines, written beside
/// the path given and moved into place when the run ends (`files::Staged`).
struct Trace {
    staged: files::Staged,
    file: std::io::BufWriter<std::fs::File>,
}

impl Trace {
    fn create(path: Option<PathBuf>) -> Result<Option<Trace>> {
        path.map(|path| {
            let (staged, file) = files::Staged::new(&path)?;
            Ok(Trace {
                staged,
                file: std::io::BufWriter::new(file),
            })
        })
        .transpose()
    }

    /// The path given, for messages.
    fn path(&self) -> &std::path::Path {
        self.staged.dest()
    }

    fn finish(trace: Option<Trace>) -> Result<()> {
        if let Some(t) = trace {
            let dest = t.path().display().to_string();
            let file = t
                .file
                .into_inner()
                .map_err(|e| Error::io(&dest, e.into_error()))?;
            if t.staged.path() != t.staged.dest() {
                // on the disk before the rename makes it the trace (not for a device)
                file.sync_all().map_err(|e| Error::io(&dest, e))?;
            }
            drop(file);
            t.staged.commit()?;
        }
        Ok(())
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

/// An error about a file in the temporary folder of `quantize`, told as about the folder given.
fn named_dir(e: Error, tmp: &std::path::Path, dest: &std::path::Path) -> Error {
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

/// How one template turned out: its text or JSON line, or the library's error.
enum Filled {
    Text(String),
    Json(String),
    /// Drawn on the terminal already.
    Animated,
}

/// Fills one template, writing its steps to the trace and, on a terminal, animating them.
fn fill_one(
    inf: &mut Engine,
    template: &str,
    opts: &SamplerOptions,
    trace: &mut Option<Trace>,
    json: bool,
    animate: bool,
) -> std::result::Result<Filled, Fail> {
    let parsed = inf.template(template)?;
    // holes of unknown length are filled once per length: no single canvas to animate
    let canvas = match parsed.ranges().is_empty() {
        true => Some(inf.canvas_of(&parsed)?),
        false => None,
    };
    let tok = inf.tokenizer().clone();
    let mut anim = canvas
        .as_ref()
        .filter(|_| animate)
        .map(|c| animate::Animation::new(c, &tok));
    let mut io_error = None;
    let mut on_event = |e: &TraceEvent| {
        if let Some(t) = trace.as_mut() {
            if let Err(err) = writeln!(t.file, "{}", e.to_json()) {
                io_error.get_or_insert(err);
            }
        }
        if let Some(a) = anim.as_mut() {
            a.event(e);
        }
    };
    let result = match &canvas {
        Some(c) => block_on(inf.run(c, opts, &mut on_event)),
        None => block_on(inf.infill(template, opts, &mut on_event)),
    };
    if let Some(err) = io_error {
        // the trace is not this template's fault: it ends the run, batch or not
        let path = trace.as_ref().expect("a trace file").path().display();
        return Err(Fail::Fatal(Error::io(path, err)));
    }
    let result = result?;
    Ok(match anim {
        Some(a) => {
            a.finish().map_err(out::write_error)?;
            Filled::Animated
        }
        None if json => Filled::Json(
            serde_json::to_string(&InfillReport {
                result: &result,
                strategy: opts.strategy,
                seed: opts.seed,
            })
            .expect("serialisable"),
        ),
        None => Filled::Text(result.text),
    })
}

/// `unmask infill TEMPLATE`: one template, its result on stdout.
fn infill(
    inf: &mut Engine,
    template: &str,
    opts: &SamplerOptions,
    trace: Option<PathBuf>,
    json: bool,
    out: &mut Out,
) -> std::result::Result<(), Fail> {
    let mut trace = Trace::create(trace)?;
    let animate = !json && std::io::stdout().is_terminal();
    match fill_one(inf, template, opts, &mut trace, json, animate)? {
        Filled::Text(t) | Filled::Json(t) => out.line(&t)?,
        Filled::Animated => {}
    }
    Ok(Trace::finish(trace)?)
}

/// `unmask infill -`: one template per line of stdin, one output line per input line, in
/// order. A blank line (empty or only whitespace) gives a blank line, or with `--json`
/// `{"line":N,"empty":true}`. A line that fails is reported on stderr as `error: line N: …`
/// and gives a blank line, or `{"line":N,"error":"…"}`; the batch goes on and the exit status
/// is 1. Each JSON result starts with its `"line":N`. In text output a line break inside a
/// result (one the model wrote into a fill) is printed as a space. Lines end at `\n` or
/// `\r\n`; a line that is not UTF-8 fails alone. What ends the batch at once: stdin unreadable, the trace file or
/// stdout unwritable.
fn batch(
    inf: &mut Engine,
    opts: &SamplerOptions,
    trace: Option<PathBuf>,
    json: bool,
    out: &mut Out,
) -> std::result::Result<(), Fail> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut stdin = std::io::stdin().lock();
    loop {
        let mut line = Vec::new();
        let n = stdin
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io("<stdin>", e))?;
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        lines.push(line);
    }
    let mut trace = Trace::create(trace)?;
    let animate = !json && std::io::stdout().is_terminal();
    // the live view already shows progress on a terminal's stdout
    let bar = if animate || lines.len() < 2 {
        Progress::hidden()
    } else {
        Progress::new("lines")
    };
    let mut failed = 0usize;
    for (i, bytes) in lines.iter().enumerate() {
        let n = i + 1;
        let outcome = match std::str::from_utf8(bytes) {
            Err(e) => Err(Fail::Error(Error::input(format!(
                "not UTF-8 (byte {} of the line)",
                e.valid_up_to() + 1
            )))),
            Ok(t) if t.trim().is_empty() => Ok(None),
            Ok(t) => fill_one(inf, t, opts, &mut trace, json, animate).map(Some),
        };
        match outcome {
            Ok(None) if json => out.line(&format!("{{\"line\":{n},\"empty\":true}}"))?,
            Ok(None) => out.line("")?,
            Ok(Some(Filled::Json(j))) => out.line(&with_line(n, &j))?,
            // a line break the model wrote into a fill would split the line in two
            Ok(Some(Filled::Text(t))) => out.line(&t.replace(['\n', '\r'], " "))?,
            Ok(Some(Filled::Animated)) => {}
            Err(Fail::Error(e)) => {
                failed += 1;
                let msg = bare(&e);
                bar.say(&format!("error: line {n}: {msg}"));
                if json {
                    let quoted = serde_json::Value::String(msg).to_string();
                    out.line(&format!("{{\"line\":{n},\"error\":{quoted}}}"))?;
                } else {
                    out.line("")?;
                }
            }
            Err(fatal) => return Err(fatal),
        }
        bar.set(n, lines.len());
    }
    bar.finish();
    Trace::finish(trace)?;
    if failed > 0 {
        return Err(Fail::Reported);
    }
    Ok(())
}

/// A batch result's JSON object with `"line":N` first.
fn with_line(n: usize, object: &str) -> String {
    match object.strip_prefix('{') {
        Some("}") => format!("{{\"line\":{n}}}"),
        Some(rest) => format!("{{\"line\":{n},{rest}"),
        None => object.to_string(),
    }
}
