//! The `unmask` command line.

mod animate;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

use unmask::backend::gpu::Gpu;
use unmask::backend::Backend;
use unmask::batch::{write_safetensors, Batch};
use unmask::diffusion::eval::{evaluate, EvalOptions};
use unmask::diffusion::{Infiller, SamplerOptions, Schedule, Strategy, TraceEvent};
use unmask::{Error, Model, Result};

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

/// How the GPU stores weight matrices (arithmetic is f32 either way).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WeightsArg {
    /// Two halves per u32: half the memory and bandwidth.
    F16,
    /// Exact f32 weights (parity checks).
    F32,
}

/// Where a command runs.
#[derive(Clone, Copy, clap::Args)]
struct Device {
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendArg,
    /// GPU weight storage.
    #[arg(long, value_enum, default_value = "f16")]
    weights: WeightsArg,
}

/// The adapter to use for `arg`, or `None` for the CPU; says on stderr what it chose.
fn pick_gpu(arg: BackendArg) -> Result<Option<Arc<Gpu>>> {
    match arg {
        BackendArg::Cpu => Ok(None),
        BackendArg::Gpu => {
            let g = Gpu::new_blocking()?;
            eprintln!("unmask: GPU {}", g.describe());
            Ok(Some(Arc::new(g)))
        }
        BackendArg::Auto => match Gpu::new_blocking() {
            Ok(g) if g.info.device_type != wgpu::DeviceType::Cpu => {
                eprintln!("unmask: GPU {}", g.describe());
                Ok(Some(Arc::new(g)))
            }
            Ok(g) => {
                eprintln!("unmask: only a software adapter ({}); running on the CPU (--backend gpu uses it anyway)", g.describe());
                Ok(None)
            }
            Err(e) => {
                eprintln!("unmask: {e}; running on the CPU");
                Ok(None)
            }
        },
    }
}

/// Attaches the chosen GPU to the model and returns the backend to run.
fn select_backend(device: Device, model: &mut Model) -> Result<Backend> {
    match pick_gpu(device.backend)? {
        None => Ok(Backend::Cpu),
        Some(g) => {
            model.attach_gpu(g, device.weights == WeightsArg::F16)?;
            Ok(Backend::Gpu)
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
        #[command(flatten)]
        device: Device,
    },
    /// Fill the holes of a template by iterative unmasking: `[MASK]`, `[MASK*N]`,
    /// `[[words to rewrite]]`, `\[` for a literal bracket. `-` reads one template per line from stdin.
    Infill {
        template: String,
        /// Model folder in Hugging Face layout (default: the embedded default model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Denoising steps (default: one per hole; Mask-Predict: 10 iterations).
        #[arg(long)]
        steps: Option<usize>,
        /// ancestral, first-hitting, top-prob, margin, entropy, threshold[:TAU], mask-predict
        /// (default: ancestral for MDLM, top-prob otherwise).
        #[arg(long, value_parser = parse_strategy)]
        strategy: Option<Strategy>,
        /// Sampling temperature for the token choice; 0 = argmax (default: 1 for MDLM, 0 otherwise).
        #[arg(long)]
        temperature: Option<f64>,
        /// Keep only the k most likely tokens (0 = all).
        #[arg(long, default_value_t = 0)]
        top_k: usize,
        /// Nucleus sampling: keep the most likely tokens up to this mass.
        #[arg(long, default_value_t = 1.0)]
        top_p: f64,
        /// Noise schedule: loglinear, cosine or linear.
        #[arg(long, default_value = "loglinear", value_parser = parse_schedule)]
        schedule: Schedule,
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
        #[command(flatten)]
        device: Device,
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
        /// auto: the CPU, and the GPU beside it when any adapter exists; cpu or gpu: only that one.
        #[arg(long, value_enum, default_value = "auto")]
        backend: BackendArg,
        /// GPU weight storage.
        #[arg(long, value_enum, default_value = "f16")]
        weights: WeightsArg,
        /// Also time the GPU matmul kernel alone on a few shapes (GFLOP/s).
        #[arg(long)]
        matmul: bool,
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
            device,
        } => {
            let mut model = Model::load(&model)?;
            let batch = Batch::read_safetensors(&input)?;
            model.check(&batch)?;
            let backend = select_backend(device, &mut model)?;
            let f = model.forward(&batch, backend, false)?;
            let mut tensors = vec![("logits", &f.out.logits)];
            if let Some(lp) = &f.log_probs {
                tensors.push(("log_probs", lp));
            }
            write_safetensors(&output, &tensors)
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
            json,
            device,
        } => {
            let mut inf = load_infiller(model.as_deref())?;
            inf.backend = select_backend(device, &mut inf.model)?;
            let mut opts = SamplerOptions::for_model(&inf.model);
            if let Some(s) = strategy {
                opts.strategy = s;
                // ranking strategies are greedy by default, as in LLaDA
                if temperature.is_none()
                    && !matches!(s, Strategy::Ancestral | Strategy::FirstHitting)
                {
                    opts.choice.temperature = 0.0;
                }
            }
            if let Some(t) = temperature {
                opts.choice.temperature = t;
            }
            opts.choice.top_k = top_k;
            opts.choice.top_p = top_p;
            opts.steps = steps;
            opts.schedule = schedule;
            opts.block_len = block_length;
            opts.cfg_scale = cfg;
            opts.cache = !no_cache;
            opts.seed = seed;
            for f in &forced {
                opts.forced.push(parse_forced(&inf, f)?);
            }
            infill(&inf, &template, &opts, trace, json)
        }
        Command::Eval {
            model,
            text,
            mask_rate,
            seed,
            device,
        } => {
            let mut inf = load_infiller(model.as_deref())?;
            inf.backend = select_backend(device, &mut inf.model)?;
            let body = std::fs::read_to_string(&text).map_err(|e| Error::io(text.display(), e))?;
            let report = evaluate(&inf, &body, &EvalOptions { mask_rate, seed })?;
            println!("{}", serde_json::to_string(&report).expect("serialisable"));
            Ok(())
        }
        Command::Bench {
            lengths,
            iters,
            threads,
            json,
            backend,
            weights,
            matmul,
        } => bench(&lengths, iters, threads, json, backend, weights, matmul),
    }
}

fn bench(
    lengths: &[usize],
    iters: usize,
    threads: Option<usize>,
    json: bool,
    backend: BackendArg,
    weights: WeightsArg,
    matmul: bool,
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
        return Err(Error::input(format!(
            "--lengths: {bad} is outside 1..={} (the model's maximum)",
            shape.max_len
        )));
    }
    // auto benchmarks the GPU beside the CPU on any adapter, software ones included
    let gpu = match backend {
        BackendArg::Cpu => None,
        BackendArg::Gpu => Some(Arc::new(Gpu::new_blocking()?)),
        BackendArg::Auto => Gpu::new_blocking().ok().map(Arc::new),
    };
    eprintln!("building an MDLM-OWT-shaped model with random weights …");
    let mut model = random_mdlm(&shape, 0)?;
    let mut backends = Vec::new();
    if backend != BackendArg::Gpu {
        backends.push(Backend::Cpu);
    }
    if let Some(g) = &gpu {
        model.attach_gpu(g.clone(), weights == WeightsArg::F16)?;
        backends.push(Backend::Gpu);
    }
    let threads = rayon::current_num_threads();
    if !json {
        println!("model: MDLM-OWT shape (12 x 768, 12 heads, V 50258), random weights, head over all rows");
        println!("cpu: f32, {threads} threads");
        if let Some(g) = &gpu {
            let w = if weights == WeightsArg::F16 {
                "f16 weights"
            } else {
                "f32 weights"
            };
            println!("gpu: {}, {w}, f32 arithmetic", g.describe());
        }
        println!(
            "{:>7} {:>6} {:>12} {:>12} {:>10} {:>10}",
            "backend", "L", "ms/forward", "min ms", "GFLOP", "GFLOP/s"
        );
    }
    for &len in lengths {
        for &b in &backends {
            let m = measure(&model, "mdlm-owt-shape", b, len, iters, 1)?;
            if json {
                println!("{}", serde_json::to_string(&m).expect("serialisable"));
            } else {
                println!(
                    "{:>7} {:>6} {:>12.1} {:>12.1} {:>10.2} {:>10.1}",
                    b.name(),
                    m.len,
                    m.ms_median,
                    m.ms_min,
                    m.gflop,
                    m.gflops_per_s
                );
            }
        }
    }
    if matmul {
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
                let r = unmask::bench::matmul_gflops(g, m, k, n, f16, iters)?;
                if json {
                    println!("{}", serde_json::to_string(&r).expect("serialisable"));
                } else {
                    println!(
                        "matmul {m}x{k}x{n} {}: {:.2} ms, {:.1} GFLOP/s",
                        if f16 { "f16" } else { "f32" },
                        r.ms_median,
                        r.gflops_per_s
                    );
                }
            }
        }
    }
    Ok(())
}

/// The model folder given, or the embedded default model.
fn load_infiller(dir: Option<&std::path::Path>) -> Result<Infiller> {
    match dir {
        Some(d) => Infiller::load(d),
        #[cfg(feature = "default-model")]
        None => Infiller::default_model(),
        #[cfg(not(feature = "default-model"))]
        None => Err(Error::input("no --model given, and this build has no embedded default model (feature `default-model`)")),
    }
}

fn parse_strategy(s: &str) -> std::result::Result<Strategy, String> {
    s.parse()
}

fn parse_schedule(s: &str) -> std::result::Result<Schedule, String> {
    Schedule::parse(s)
        .ok_or_else(|| format!("unknown schedule `{s}`; one of: loglinear, cosine, linear"))
}

/// `HOLE=TEXT` → (hole index, token id); TEXT must be exactly one token.
fn parse_forced(inf: &Infiller, spec: &str) -> Result<(usize, u32)> {
    let bad = |why: String| Error::input(format!("--force {spec}: {why}"));
    let (hole, text) = spec
        .split_once('=')
        .ok_or_else(|| bad("expected HOLE=TEXT".into()))?;
    let hole: usize = hole
        .trim()
        .parse()
        .map_err(|_| bad(format!("`{hole}` is not a hole number")))?;
    let ids = inf.tokenizer().encode(text, false)?;
    match ids.as_slice() {
        [id] => Ok((hole, *id)),
        _ => Err(bad(format!("`{text}` is {} tokens, not one", ids.len()))),
    }
}

fn infill(
    inf: &Infiller,
    template: &str,
    opts: &SamplerOptions,
    trace: Option<PathBuf>,
    json: bool,
) -> Result<()> {
    let templates: Vec<String> = if template == "-" {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| Error::io("<stdin>", e))?
            .into_iter()
            .filter(|l| !l.trim().is_empty())
            .collect()
    } else {
        vec![template.to_string()]
    };
    let mut trace_file = match &trace {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| Error::io(p.display(), e))?,
        )),
        None => None,
    };
    let animate = !json && std::io::stdout().is_terminal();
    for (line, t) in templates.iter().enumerate() {
        let canvas = inf.canvas(t).map_err(|e| match (&e, templates.len()) {
            (Error::Input(msg), n) if n > 1 => Error::input(format!("line {}: {msg}", line + 1)),
            _ => e,
        })?;
        let mut anim = animate.then(|| animate::Animation::new(&canvas, inf.tokenizer()));
        let mut io_error = None;
        let result = inf.run(&canvas, opts, &mut |e: &TraceEvent| {
            if let Some(f) = trace_file.as_mut() {
                if let Err(err) = writeln!(f, "{}", e.to_json()) {
                    io_error.get_or_insert(err);
                }
            }
            if let Some(a) = anim.as_mut() {
                a.event(e);
            }
        })?;
        if let Some(err) = io_error {
            return Err(Error::io(
                trace.as_ref().expect("a trace file").display(),
                err,
            ));
        }
        match anim {
            Some(a) => a.finish(),
            None if json => println!(
                "{}",
                serde_json::json!({
                    "text": result.text, "holes": result.holes, "steps": result.steps,
                    "nfe": result.nfe, "ms": result.ms, "strategy": opts.strategy.to_string(), "seed": opts.seed,
                })
            ),
            None => println!("{}", result.text),
        }
    }
    if let Some(mut f) = trace_file {
        f.flush()
            .map_err(|e| Error::io(trace.as_ref().expect("a trace file").display(), e))?;
    }
    Ok(())
}
