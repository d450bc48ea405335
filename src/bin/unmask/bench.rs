//! `unmask bench`: the forward pass timed on an MDLM-OWT-shaped model with random weights (or
//! on `--model`), on the CPU and the GPU, as a table or JSON lines; with `--matmul`, the GPU's
//! matmul kernel alone.

use std::path::{Path, PathBuf};

use unmask::backend::Denoiser;
use unmask::bench::{measure, random_mdlm, Shape};
use unmask::blocking::block_on;
use unmask::engine::{self, AnyDenoiser, BackendChoice, DeviceOptions, LoadOptions, Target};
use unmask::model::Model;
use unmask::{Error, Result};

use crate::adapter;
use crate::device::{load_model, BackendArg, Device, WeightsArg};
use crate::out::{say, Fail, Out};

// The doc comment of `Command::Bench` (main.rs) is this command's help. `--backend` keeps the
// shared flag's values with a meaning of its own (auto times the GPU beside the CPU), so its
// help is replaced here and the per-value help, written for the other commands, hidden.
#[derive(clap::Args)]
#[command(mut_arg("backend", |a| a
    .help("auto: the CPU, and the GPU beside it when any adapter exists; cpu or gpu: only that one")
    .hide_possible_values(true)))]
#[command(mut_arg("weights", |a| a.help(
    "Weight storage: f16 (the GPU's f16; the host keeps what is stored), f32, bf16, q8 or q4 \
     (the host's matrices rounded or quantised)")))]
pub struct Args {
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
    #[command(flatten)]
    device: Device,
    /// Also time the GPU matmul kernel alone on a few shapes (GFLOP/s).
    #[arg(long)]
    matmul: bool,
}

pub fn run(a: Args, out: &mut Out) -> std::result::Result<(), Fail> {
    check_flags(&a)?;
    let (mut model, name, load_s) = model(a.model.as_deref(), a.device)?;
    let max_len = model.spec.max_len;
    if let Some(&bad) = a.lengths.iter().find(|&&l| l == 0 || l > max_len) {
        return Err(Error::input(format!(
            "--lengths: {bad} is outside 1..={max_len} (the model's maximum)"
        ))
        .into());
    }
    let (cpu, gpu) = targets(a.device)?;
    // the header first: an unwritable stdout is found before minutes of work
    if !a.json {
        header(&model, &name, load_s, gpu.as_ref(), a.device.weights, out)?;
    }
    // the GPU uploads the plan as prepared, then the CPU packs its panels in place
    let mut denoisers: Vec<AnyDenoiser> = Vec::new();
    if let Some(t) = &gpu {
        let mut d = block_on(t.denoiser(&mut model))?;
        block_on(d.warm_up())?;
        denoisers.push(d);
    }
    if let Some(t) = &cpu {
        denoisers.insert(0, block_on(t.denoiser(&mut model))?);
    }
    for &len in &a.lengths {
        for d in &mut denoisers {
            let m = block_on(measure(&model, d, &name, len, a.iters, 1))?;
            if a.json {
                out.json(&m)?;
            } else {
                out.line(&format!(
                    "{:>7} {:>6} {:>12.1} {:>12.1} {:>10.2} {:>10.1}",
                    m.backend, m.len, m.ms_median, m.ms_min, m.gflop, m.gflops_per_s
                ))?;
            }
        }
    }
    if a.matmul {
        matmul(&denoisers, a.iters, a.json, out)?;
    }
    Ok(())
}

/// The most worker threads `bench --threads` takes: 4 × the logical cores, at most 256 (and
/// never fewer than the cores).
fn max_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    (4 * cores).min(256).max(cores)
}

/// Refuses `--iters` and `--threads` out of range, and starts the threads asked for.
fn check_flags(a: &Args) -> Result<()> {
    let iters = a.iters;
    if iters == 0 || iters > unmask::bench::MAX_ITERS {
        return Err(Error::input(format!(
            "--iters: {iters} is outside 1..={}",
            unmask::bench::MAX_ITERS
        )));
    }
    if let Some(n) = a.threads {
        let max = max_threads();
        if n == 0 || n > max {
            return Err(Error::input(format!(
                "--threads: {n} is outside 1..={max} (4 × this machine's logical cores, at most 256)"
            )));
        }
        // fails if the threads cannot be spawned (a pool cannot exist this early)
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| Error::input(format!("--threads {n}: cannot start the threads: {e}")))?;
    }
    Ok(())
}

/// The model timed, its name and load time: the model first, since its maximum length bounds
/// `--lengths`, and a model that does not fit is refused before anything else.
fn model(dir: Option<&Path>, device: Device) -> Result<(Model, String, Option<f64>)> {
    Ok(match dir {
        Some(d) => {
            let t0 = std::time::Instant::now();
            let m = load_model(Some(d), device)?;
            (m, d.display().to_string(), Some(t0.elapsed().as_secs_f64()))
        }
        None => {
            say("building an MDLM-OWT-shaped model with random weights …");
            let opts = LoadOptions::precision(device.precision());
            let m = engine::prepare(random_mdlm(&Shape::mdlm_owt(), 0)?, opts)?;
            (m, "mdlm-owt-shape".to_string(), None)
        }
    })
}

/// The backends timed, through the engine's choice: the CPU unless `--backend gpu`; the GPU
/// for `--backend gpu` (an error without one, as for `infill`), and for `auto` on any adapter
/// there is. Unlike the engine's `auto`, which runs a model on one backend, this one times a
/// software adapter too, beside the CPU.
fn targets(device: Device) -> Result<(Option<Target>, Option<Target>)> {
    let on = |backend| DeviceOptions {
        backend,
        weights: device.weights.format(),
    };
    let cpu = || block_on(engine::target(on(BackendChoice::Cpu)));
    let gpu = || adapter::quietly(|| block_on(engine::target(on(BackendChoice::Gpu))));
    Ok(match device.backend {
        BackendArg::Cpu => (Some(cpu()?), None),
        BackendArg::Gpu => (None, Some(gpu()?)),
        BackendArg::Auto => (Some(cpu()?), gpu().ok()),
    })
}

/// The table's header: the model, what each backend holds, and the columns.
fn header(
    model: &Model,
    name: &str,
    load_s: Option<f64>,
    gpu: Option<&Target>,
    weights: WeightsArg,
    out: &mut Out,
) -> std::result::Result<(), Fail> {
    let plan = model.plan()?;
    let threads = rayon::current_num_threads();
    let mut held: Vec<&str> = plan.matrices().iter().map(|m| m.dtype()).collect();
    held.sort();
    held.dedup();
    match load_s {
        Some(s) => out.line(&format!(
            "model: {name} ({} x {}, V {}), loaded in {s:.2} s, head over all rows",
            plan.blocks.len(),
            plan.hidden,
            plan.vocab
        ))?,
        None => out.line("model: MDLM-OWT shape (12 x 768, 12 heads, V 50258), random weights, head over all rows")?,
    }
    out.line(&format!(
        "cpu: {} weights ({:.1} MB), f32 arithmetic, {threads} threads",
        held.join("+"),
        plan.matrix_bytes() as f64 / 1e6
    ))?;
    if let Some(t) = gpu {
        let w = match weights {
            WeightsArg::F32 => "f32 weights",
            WeightsArg::Q8 => "q8_0 weights (embeddings f16)",
            WeightsArg::Q4 => "q4_0 weights (embeddings f16)",
            WeightsArg::F16 | WeightsArg::Bf16 => "f16 weights",
        };
        let adapter = t.selection.adapter.as_deref().unwrap_or("unknown adapter");
        out.line(&format!("gpu: {adapter}, {w}, f32 arithmetic"))?;
    }
    out.line(&format!(
        "{:>7} {:>6} {:>12} {:>12} {:>10} {:>10}",
        "backend", "L", "ms/forward", "min ms", "GFLOP", "GFLOP/s"
    ))
}

/// `--matmul`: the GPU's matmul kernel alone, on the shapes of MDLM-OWT's layers.
#[cfg(feature = "gpu")]
fn matmul(
    denoisers: &[AnyDenoiser],
    iters: usize,
    json: bool,
    out: &mut Out,
) -> std::result::Result<(), Fail> {
    let g = denoisers
        .iter()
        .find_map(|d| d.device())
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
    Ok(())
}

#[cfg(not(feature = "gpu"))]
fn matmul(_: &[AnyDenoiser], _: usize, _: bool, _: &mut Out) -> std::result::Result<(), Fail> {
    Err(Error::input("--matmul needs the GPU backend (feature `gpu`)").into())
}
