//! Backend selection, the same on every surface: `auto` takes a hardware GPU adapter and falls
//! back to the CPU otherwise, skipping software adapters (lavapipe, SwiftShader), which run
//! the shaders slower than the CPU path runs the plan. The outcome and its reason are data
//! ([`Selection`]), for the CLI's notice line and the JS bindings alike.

use serde::{Deserialize, Serialize};

#[cfg(feature = "gpu")]
use crate::backend::gpu::Gpu;
use crate::backend::Backend;
#[cfg(not(feature = "gpu"))]
use crate::error::Error;
use crate::error::Result;

/// Which backend a caller asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// A hardware GPU when there is one, else the CPU.
    #[default]
    Auto,
    /// The GPU on any adapter, software ones included; an error when there is none.
    Gpu,
    /// The CPU.
    Cpu,
}

/// How the GPU stores weight matrices; arithmetic is f32 either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightFormat {
    /// Two halves per u32: half the memory and bandwidth.
    #[default]
    F16,
    /// Exact f32 weights (parity checks).
    F32,
}

/// Where a model runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DeviceOptions {
    pub backend: BackendChoice,
    pub weights: WeightFormat,
}

/// Why the backend was chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// The caller asked for this backend.
    Requested,
    /// `auto` found a hardware adapter.
    HardwareAdapter,
    /// `auto` found only a software adapter and ran on the CPU instead.
    SoftwareAdapterSkipped,
    /// `auto` found no usable adapter.
    NoAdapter { error: String },
    /// This build has no GPU backend (feature `gpu` off).
    NotBuilt,
}

/// The backend chosen, the adapter it runs on (or the one it passed over) and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Selection {
    pub backend: Backend,
    /// `name (driver API)` of the adapter used or skipped.
    pub adapter: Option<String>,
    pub reason: Reason,
}

impl Selection {
    /// One line for a user, or `None` when the CPU was asked for and used. `flag` is the
    /// caller's name for the backend option (the CLI's `--backend`), which the line names where
    /// it says how to get the GPU anyway.
    pub fn notice(&self, flag: &str) -> Option<String> {
        let adapter = self.adapter.as_deref().unwrap_or("unknown adapter");
        match &self.reason {
            Reason::Requested if self.backend == Backend::Cpu => None,
            Reason::Requested | Reason::HardwareAdapter => Some(format!("GPU {adapter}")),
            Reason::SoftwareAdapterSkipped => Some(format!(
                "only a software adapter ({adapter}); running on the CPU ({flag} gpu uses it anyway)"
            )),
            Reason::NoAdapter { error } => Some(format!("{error}; running on the CPU")),
            Reason::NotBuilt => Some(String::from(
                "this build has no GPU backend (feature `gpu`); running on the CPU",
            )),
        }
    }
}

#[cfg(feature = "gpu")]
pub(super) type GpuHandle = std::sync::Arc<Gpu>;
#[cfg(not(feature = "gpu"))]
pub(super) type GpuHandle = std::convert::Infallible;

/// The adapter to use for `choice` (`None`: the CPU) and why.
// On wasm32 wgpu's handles are neither Send nor Sync (the web is single-threaded); one `Arc`
// type serves both targets.
#[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
pub(super) async fn choose(choice: BackendChoice) -> Result<(Option<GpuHandle>, Selection)> {
    let cpu = |reason, adapter| Selection {
        backend: Backend::Cpu,
        adapter,
        reason,
    };
    match choice {
        BackendChoice::Cpu => Ok((None, cpu(Reason::Requested, None))),
        #[cfg(feature = "gpu")]
        BackendChoice::Gpu | BackendChoice::Auto => match Gpu::new().await {
            Ok(g) => {
                let adapter = Some(g.describe());
                let hardware = g.info.device_type != wgpu::DeviceType::Cpu;
                match (choice, hardware) {
                    (BackendChoice::Auto, false) => {
                        Ok((None, cpu(Reason::SoftwareAdapterSkipped, adapter)))
                    }
                    _ => {
                        let reason = if choice == BackendChoice::Gpu {
                            Reason::Requested
                        } else {
                            Reason::HardwareAdapter
                        };
                        let sel = Selection {
                            backend: Backend::Gpu,
                            adapter,
                            reason,
                        };
                        Ok((Some(std::sync::Arc::new(g)), sel))
                    }
                }
            }
            Err(e) if choice == BackendChoice::Auto => Ok((
                None,
                cpu(
                    Reason::NoAdapter {
                        error: e.to_string(),
                    },
                    None,
                ),
            )),
            Err(e) => Err(e),
        },
        #[cfg(not(feature = "gpu"))]
        BackendChoice::Auto => Ok((None, cpu(Reason::NotBuilt, None))),
        #[cfg(not(feature = "gpu"))]
        BackendChoice::Gpu => Err(Error::gpu(
            crate::error::GpuFault::Unavailable,
            "this build has no GPU backend (feature `gpu`)",
        )),
    }
}
