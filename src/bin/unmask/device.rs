//! Where a command runs: the `--backend` and `--weights` flags every command that runs a model
//! shares ([`Device`]), the model load those flags shape, and the one way a command attaches a
//! model to the backend the engine chooses ([`attach`]).

use std::path::Path;

use clap::ValueEnum;

use unmask::blocking::block_on;
use unmask::engine::{
    self, Attention, BackendChoice, DeviceOptions, Engine, LoadOptions, WeightFormat,
};
use unmask::model::matrix::Precision;
use unmask::model::Model;
#[cfg(not(feature = "default-model"))]
use unmask::Error;
use unmask::Result;

use crate::adapter;
use crate::out::say;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// The GPU when a hardware adapter exists, else the CPU (a line on stderr says which).
    Auto,
    /// WGSL compute shaders through wgpu, on any adapter (software Vulkan included).
    Gpu,
    /// Plain Rust on the CPU (the reference; multi-threaded).
    Cpu,
}

/// How weight matrices are held (arithmetic is f32 either way).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WeightsArg {
    /// As the checkpoint stores them on the host (f16/bf16 used in place); f16 on the GPU.
    F16,
    /// Every matrix widened to f32, on the host and the GPU (parity checks).
    F32,
    /// Quantised at load to q8_0 (blocks of 32 int8 with an f16 scale), on the host and the
    /// GPU: about half the memory of f16.
    #[value(alias = "q8_0")]
    Q8,
    /// Quantised at load to q4_0 (blocks of 32 4-bit values with an f16 scale, as llama.cpp's
    /// Q4_0), on the host and the GPU: about a quarter of the memory of f16, and less accurate
    /// than q8.
    #[value(alias = "q4_0")]
    Q4,
    /// Rounded to bf16 on the host at load (f16 on the GPU): for benchmarks of f32 checkpoints.
    Bf16,
}

/// Where a command runs.
#[derive(Clone, Copy, clap::Args)]
pub struct Device {
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendArg,
    /// Weight storage.
    #[arg(long, value_enum, default_value = "f16")]
    pub weights: WeightsArg,
    /// Which attention a Qwen3 A2D checkpoint was trained with, which its files do not say:
    /// `full` (the MDLM checkpoint), `block:N` (BD3LM: block-causal, N = 32), or `auto` (a
    /// folder whose path names `bd3lm` is block:32, else full).
    #[arg(long, default_value = "auto", value_parser = parse_attention)]
    pub attention: Attention,
}

fn parse_attention(s: &str) -> std::result::Result<Attention, String> {
    s.parse().map_err(|e: unmask::Error| e.to_string())
}

impl WeightsArg {
    /// How the host holds the matrices.
    pub fn precision(self) -> Precision {
        match self {
            WeightsArg::Q8 => Precision::Q8,
            WeightsArg::Q4 => Precision::Q4,
            WeightsArg::Bf16 => Precision::Bf16,
            WeightsArg::F32 => Precision::F32,
            WeightsArg::F16 => Precision::Stored,
        }
    }

    /// How the GPU holds the matrices.
    pub fn format(self) -> WeightFormat {
        match self {
            WeightsArg::F16 | WeightsArg::Q8 | WeightsArg::Q4 | WeightsArg::Bf16 => {
                WeightFormat::F16
            }
            WeightsArg::F32 => WeightFormat::F32,
        }
    }
}

impl BackendArg {
    pub fn choice(self) -> BackendChoice {
        match self {
            BackendArg::Auto => BackendChoice::Auto,
            BackendArg::Gpu => BackendChoice::Gpu,
            BackendArg::Cpu => BackendChoice::Cpu,
        }
    }
}

impl Device {
    pub fn precision(self) -> Precision {
        self.weights.precision()
    }

    pub fn options(self) -> DeviceOptions {
        DeviceOptions {
            backend: self.backend.choice(),
            weights: self.weights.format(),
        }
    }
}

/// The model `--model` names: a bundled model by name (`default`, `uniform`), or a folder; the
/// embedded default model without it.
pub fn load_model(dir: Option<&Path>, device: Device) -> Result<Model> {
    let opts = LoadOptions {
        attention: device.attention,
        ..LoadOptions::precision(device.precision())
    };
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
        // a bundled model's name (no path separator) names it; `./NAME` is a folder of that name
        #[cfg(feature = "default-model")]
        Some(d) if bundled_name(d).is_some() => {
            engine::bundled_model_with(bundled_name(d).unwrap_or_default(), opts)
        }
        Some(d) => engine::load_model_with(d, opts).map(warned),
        #[cfg(feature = "default-model")]
        None => engine::default_model_with(opts),
        #[cfg(not(feature = "default-model"))]
        None => Err(Error::input("no --model given, and this build has no embedded default model (feature `default-model`)")),
    }
}

/// The bundled model `--model` names, if it names one: exactly `default` or `uniform`.
#[cfg(feature = "default-model")]
fn bundled_name(d: &Path) -> Option<&'static str> {
    let s = d.to_str()?;
    unmask::model::embedded::names()
        .into_iter()
        .find(|&n| n == s)
}

/// What the load tolerated but the user should know (unused tensors), on stderr.
fn warned(model: Model) -> Model {
    for w in &model.warnings {
        say(&format!("warning: {w}"));
    }
    model
}

/// Says on stderr which backend runs and why, where that is news.
pub fn tell(selection: &unmask::engine::Selection) {
    if let Some(l) = selection.notice("--backend") {
        say(&format!("unmask: {l}"));
    }
}

/// The model on the backend `device` asks for, warmed up.
pub fn attach(model: Model, device: Device) -> Result<Engine> {
    let (inf, selection) =
        adapter::quietly(|| block_on(engine::infiller(model, device.options())))?;
    tell(&selection);
    Ok(inf)
}
