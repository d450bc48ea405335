//! `unmask bench`: the forward pass timed on an MDLM-OWT-shaped model with random weights (or
//! on `--model`), on the CPU and the GPU, as a table or JSON lines; with `--matmul`, the GPU's
//! matmul kernel alone.

use std::path::PathBuf;

use unmask::blocking::block_on;
use unmask::engine::{self, AnyDenoiser, LoadOptions};
use unmask::Error;

#[cfg(feature = "gpu")]
use crate::adapter;
use crate::device::{load_model, BackendArg, Device, WeightsArg};
use crate::out::{say, Fail, Out};

// The doc comment of `Command::Bench` (main.rs) is this command's help.
#[derive(clap::Args)]
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
}

/// The most worker threads `bench --threads` takes: 4 × the logical cores, at most 256 (and
/// never fewer than the cores).
fn max_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    (4 * cores).min(256).max(cores)
}

pub fn run(a: Args, out: &mut Out) -> std::result::Result<(), Fail> {
    let Args {
        model: dir,
        lengths,
        iters,
        threads,
        json,
        backend,
        weights,
        matmul,
    } = a;
    let dir = dir.as_deref();
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
    for &len in &lengths {
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
