//! A backend chosen before the model is read. A caller that streams a checkpoint (the
//! browser) picks the backend first, checks the checkpoint's header against the memory and
//! limits of where it will run, and only then reads the weights: a model that cannot fit fails
//! before its download, not after.

use super::denoiser::AnyDenoiser;
use super::select::{choose, DeviceOptions, GpuHandle, Selection, WeightFormat};
use super::Engine;
use crate::diffusion::Infiller;
use crate::error::{Error, Result};
use crate::model::matrix::{Matrix, Precision, Quant, PANEL};
use crate::model::stream::{DeviceRule, DeviceUse, Header, MatrixSink};
use crate::model::{arch, Architecture, Model};

/// Where a model will run, not yet attached to one.
pub struct Target {
    gpu: Option<GpuHandle>,
    pub selection: Selection,
    weights: WeightFormat,
    /// Matrices a streamed load has already sent to the GPU ([`Target::sink`]).
    #[cfg(feature = "gpu")]
    held: std::sync::Arc<std::sync::Mutex<crate::backend::gpu::Held>>,
}

/// Chooses the backend `device` asks for (see [`Selection`]).
pub async fn target(device: DeviceOptions) -> Result<Target> {
    let (gpu, selection) = choose(device.backend).await?;
    Ok(Target {
        gpu,
        selection,
        weights: device.weights,
        #[cfg(feature = "gpu")]
        held: Default::default(),
    })
}

/// The memory a checkpoint will take where it runs, from its header alone: what the page and
/// the package state before the download, and what [`Target::check_fits`] holds against the
/// limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Need {
    /// Bytes of weights this process keeps (wasm memory in the browser).
    pub host: u64,
    /// Bytes of the largest tensor held whole on its way to the device (0 when none goes).
    pub in_flight: u64,
    /// Bytes of weights in device buffers (0 on the CPU).
    pub device: u64,
    /// Bytes of the q8_0/q4_0 copies of the matrices this process keeps, made after the load
    /// while the f32 ones still exist (`engine::prepare`).
    pub converted: u64,
    /// Bytes of the largest matrix's copy in the panel kernel's layout, made on the CPU while
    /// its rows still exist (`engine::for_cpu` packs one matrix at a time; 0 where the kernel
    /// does not run, on a GPU, or for quantised matrices, which are not repacked).
    pub packed: u64,
}

impl Need {
    /// Host bytes at the peak of the load: the model's own, one tensor on its way to the
    /// device, and working memory.
    pub fn host_peak(&self) -> u64 {
        self.host + self.in_flight + self.converted + self.packed + headroom(self.host)
    }
}

impl Target {
    /// The largest storage binding of the chosen adapter, `None` on the CPU.
    pub fn max_binding(&self) -> Option<u64> {
        #[cfg(feature = "gpu")]
        if let Some(g) = &self.gpu {
            return Some(g.max_binding());
        }
        None
    }

    /// Whether a checkpoint with this header can run here, and what it will take: its weights
    /// as this process keeps them (widened to f32, or, for the matrices a streamed load sends
    /// to the GPU, one of them at a time) within `memory` bytes (the address space of a wasm32
    /// module; `None`: no bound), and, on a GPU, every weight row in the device's format
    /// (f16 pairs, f32, q8_0 or q4_0 blocks) within one storage binding.
    pub fn check_fits(
        &self,
        path: &str,
        header: &Header,
        memory: Option<u64>,
        streaming: Option<Architecture>,
        precision: Precision,
    ) -> Result<Need> {
        let device = self.gpu.is_some().then(|| DeviceFormat {
            f16: self.weights == WeightFormat::F16,
            quant: precision.quant(),
            binding: self.max_binding(),
            rule: streaming.and_then(arch::device_rule),
        });
        fits(path, header, memory, device, precision.quant())
    }

    /// What [`Target::check_fits`] counts, with no limit held against it.
    pub fn need(
        &self,
        header: &Header,
        streaming: Option<Architecture>,
        precision: Precision,
    ) -> Need {
        let device = self.gpu.is_some().then(|| DeviceFormat {
            f16: self.weights == WeightFormat::F16,
            quant: precision.quant(),
            binding: None,
            rule: streaming.and_then(arch::device_rule),
        });
        // without limits nothing is refused
        fits("", header, None, device, precision.quant()).unwrap_or_default()
    }

    /// Whether a streamed load of an `arch` checkpoint sends its matrices to the device here.
    pub fn streams(&self, arch: Architecture) -> bool {
        self.gpu.is_some() && arch::device_rule(arch).is_some()
    }

    /// Where a streamed load of an `arch` checkpoint sends its matrices, when this target is
    /// a GPU and the architecture allows it ([`arch::device_rule`]): each goes up as it
    /// arrives, in `precision` (q8/q4 quantised on the way), and the model built from the
    /// stream holds them as device rows that [`Target::attach`] takes.
    pub fn sink(
        &self,
        arch: Architecture,
        precision: Precision,
    ) -> Option<(Box<dyn MatrixSink>, DeviceRule)> {
        let rule = arch::device_rule(arch)?;
        #[cfg(feature = "gpu")]
        if let Some(g) = &self.gpu {
            let sink = crate::backend::gpu::DeviceSink {
                gpu: g.clone(),
                held: self.held.clone(),
                f16: self.weights == WeightFormat::F16,
                quant: precision.quant(),
            };
            return Some((Box::new(sink), rule));
        }
        let _ = (rule, precision);
        None
    }

    /// A denoiser for `model` on the chosen backend, the model kept whole: a GPU uploads the
    /// plan as prepared, the CPU packs the model's panels in place first ([`super::for_cpu`]).
    /// For callers that need the model's plan beside the denoiser or no engine around it: the
    /// forward contract, which needs no tokenizer, and a benchmark that times several backends
    /// on one model (the GPUs first, so that they upload the plan before the CPU packs it).
    pub async fn denoiser(&self, model: &mut Model) -> Result<AnyDenoiser> {
        #[cfg(feature = "gpu")]
        if let Some(g) = &self.gpu {
            let held = std::mem::take(&mut *self.held.lock().map_err(|_| {
                Error::gpu(
                    crate::error::GpuFault::Failed,
                    "the device's matrices were poisoned",
                )
            })?);
            return AnyDenoiser::upload_held(g.clone(), model, self.weights, &held).await;
        }
        #[cfg(not(feature = "gpu"))]
        let _ = &self.gpu;
        super::for_cpu(model)?;
        AnyDenoiser::cpu(model)
    }

    /// Attaches `model` (prepared for any backend by [`super::prepare`]) and lets the backend
    /// finish it ([`Target::denoiser`]): a GPU uploads the weights as they are, the CPU packs
    /// its panels. The shaders are not warmed up yet (`engine.denoiser.warm_up()`), so a caller
    /// can report that phase apart.
    pub async fn attach(self, model: Model) -> Result<Engine> {
        let mut model = model;
        let d = self.denoiser(&mut model).await?;
        // The GPU holds the weights now: natively the host's plan (often the memory map of the
        // checkpoint) is dropped, and the model keeps its spec and tokenizer. A wasm module's
        // memory never shrinks, so dropping it there would free nothing, and the demo's
        // teaching views read the embeddings.
        #[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
        if self.gpu.is_some() {
            model.drop_plan();
        }
        Infiller::new(model, d)
    }
}

/// The working memory a forward pass needs beside the weights, as a share of them plus a
/// floor: activations at a few hundred tokens are small next to any model that could come
/// near the bound.
fn headroom(weights: u64) -> u64 {
    weights / 8 + (64 << 20)
}

/// What a GPU target keeps of a checkpoint: f16 pairs or f32, `quant` blocks for products,
/// its largest binding, and which tensors a streamed load sends to it (`rule`).
#[derive(Clone, Copy)]
pub struct DeviceFormat {
    pub f16: bool,
    pub quant: Option<Quant>,
    pub binding: Option<u64>,
    pub rule: Option<DeviceRule>,
}

impl DeviceFormat {
    /// Bytes of one row of a `cols`-wide matrix on the device, used as `used`.
    fn row_bytes(&self, cols: usize, used: DeviceUse) -> u64 {
        use crate::backend::gpu_words;
        let words = match (used, self.quant) {
            (DeviceUse::Product, Some(Quant::Q8)) => Matrix::q8_blocks(cols) * gpu_words::Q8,
            (DeviceUse::Product, Some(Quant::Q4)) => Matrix::q4_blocks(cols) * gpu_words::Q4,
            _ if self.f16 => cols.div_ceil(2),
            _ => cols,
        };
        words as u64 * 4
    }
}

/// See [`Target::check_fits`]; `device`: the GPU's format, `None` on the CPU; `quant`: the
/// block format the host's matrices are converted to after the load.
pub fn fits(
    path: &str,
    header: &Header,
    memory: Option<u64>,
    device: Option<DeviceFormat>,
    quant: Option<Quant>,
) -> Result<Need> {
    let mut need = Need::default();
    for e in header.entries.iter().filter(|e| e.is_float()) {
        let sent = match (device.and_then(|d| d.rule), e.shape.as_slice()) {
            (Some(rule), [_, _]) => rule(&e.name, &e.shape),
            _ => None,
        };
        if sent.is_some() {
            need.in_flight = need.in_flight.max(e.end - e.start);
        } else {
            need.host = need.host.saturating_add(e.elements().saturating_mul(4));
            if let (None, None, [rows, cols]) = (device, quant, e.shape.as_slice()) {
                if crate::backend::cpu::panels::available() {
                    // in u64: a hostile header's row count must not wrap a 32-bit usize
                    let padded = (*rows as u64).div_ceil(PANEL as u64) * PANEL as u64;
                    let panels = padded.saturating_mul(*cols as u64).saturating_mul(4);
                    need.packed = need.packed.max(panels);
                }
            }
            if let (Some(q), [rows, cols]) = (quant, e.shape.as_slice()) {
                let row = Matrix::q8_blocks(*cols) as u64 * q.block_bytes() as u64;
                need.converted = need
                    .converted
                    .saturating_add(row.saturating_mul(*rows as u64));
            }
        }
        let Some(d) = device else { continue };
        // matrices are split by rows over buffers; vectors and tables go up whole, as f32
        let (bytes, total, what) = match e.shape.as_slice() {
            [rows, cols] => {
                // the lookup reads f16/f32; without a rule the lookup is not told apart, and
                // the product's format is the bound
                let row = d.row_bytes(*cols, sent.unwrap_or(DeviceUse::Product));
                (row, row.saturating_mul(*rows as u64), "one row")
            }
            _ => {
                let b = e.elements().saturating_mul(4);
                (b, b, "the whole tensor")
            }
        };
        need.device = need.device.saturating_add(total);
        if let Some(limit) = d.binding {
            if bytes > limit {
                return Err(Error::TooLarge(format!(
                    "{path}: tensor `{}`: {what} takes {}, more than the adapter's storage binding limit of {}",
                    e.name,
                    human(bytes),
                    human(limit)
                )));
            }
        }
    }
    if let Some(limit) = memory {
        let peak = need.host_peak();
        if peak > limit {
            let converted = if need.converted > 0 {
                format!(", plus {} quantised from them", human(need.converted))
            } else if need.packed > 0 {
                format!(
                    ", plus {} while its largest matrix is repacked for the CPU",
                    human(need.packed)
                )
            } else {
                String::new()
            };
            let kept = if need.in_flight > 0 {
                format!(
                    "its weights kept here take {} as f32, plus {} for the largest tensor on its way to the GPU",
                    human(need.host),
                    human(need.in_flight)
                )
            } else {
                format!("its weights take {} as f32", human(need.host))
            };
            return Err(Error::TooLarge(format!(
                "{path}: {kept}{converted} (about {} with working memory), more than the {} this module can address",
                human(peak),
                human(limit)
            )));
        }
    }
    Ok(need)
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::stream::Entry;
    use safetensors::Dtype;

    fn header(shape: Vec<usize>) -> Header {
        let n: usize = shape.iter().product();
        Header {
            data_start: 8,
            data_len: n as u64 * 2,
            entries: vec![Entry {
                name: "lm_head.weight".into(),
                dtype: Dtype::BF16,
                shape,
                start: 0,
                end: n as u64 * 2,
            }],
        }
    }

    fn gpu(f16: bool, quant: Option<Quant>, binding: Option<u64>) -> Option<DeviceFormat> {
        Some(DeviceFormat {
            f16,
            quant,
            binding,
            rule: None,
        })
    }

    #[test]
    fn memory_bound_counts_f32_weights_and_headroom() {
        // a 126464 x 4096 bf16 head is 0.96 GiB on disk and 1.93 GiB as f32
        let h = header(vec![126464, 4096]);
        let f32_bytes = 126464 * 4096 * 4;
        if crate::backend::cpu::panels::available() {
            // the panel copy made on attaching to the CPU is counted while the rows exist:
            // 3.86 GiB plus headroom no longer fits in 4 GiB
            let need = fits("m", &h, Some(5 << 30), None, None).unwrap();
            assert_eq!((need.host, need.packed), (f32_bytes, f32_bytes));
            let msg = fits("m", &h, Some(4 << 30), None, None)
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains("1.93 GiB while its largest matrix is repacked"),
                "{msg}"
            );
            // quantised matrices are not repacked
            let q8 = fits("m", &h, Some(5 << 30), None, Some(Quant::Q8)).unwrap();
            assert_eq!(q8.packed, 0);
        } else {
            assert_eq!(fits("m", &h, None, None, None).unwrap().packed, 0);
            assert!(fits("m", &h, Some(4 << 30), None, None).is_ok());
        }
        let e = fits("m", &h, Some(2 << 30), None, None).unwrap_err();
        assert!(matches!(e, Error::TooLarge(_)));
        let msg = e.to_string();
        assert!(
            msg.contains("1.93 GiB")
                && msg.contains("2.00 GiB")
                && msg.starts_with("model too large: m:"),
            "{msg}"
        );
    }

    #[test]
    fn binding_bound_is_per_row_in_the_device_format() {
        let h = header(vec![50000, 1000]);
        // f16 rows are 2000 bytes, f32 rows 4000, q8_0 32 blocks x 36, q4_0 32 x 20
        assert!(fits("m", &h, None, gpu(true, None, Some(2000)), None).is_ok());
        let msg = fits("m", &h, None, gpu(false, None, Some(2000)), None)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("`lm_head.weight`") && msg.contains("one row"),
            "{msg}"
        );
        assert!(fits("m", &h, None, gpu(false, Some(Quant::Q8), Some(1152)), None).is_ok());
        assert!(fits("m", &h, None, gpu(false, Some(Quant::Q8), Some(1151)), None).is_err());
        assert!(fits("m", &h, None, gpu(false, Some(Quant::Q4), Some(640)), None).is_ok());
        assert!(fits("m", &h, None, gpu(false, Some(Quant::Q4), Some(639)), None).is_err());
        let v = header(vec![3000]);
        let msg = fits("m", &v, None, gpu(true, None, Some(4000)), None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("the whole tensor"), "{msg}");
    }

    #[test]
    fn device_bytes_count_halves_and_blocks() {
        let h = header(vec![1000, 64]);
        let need = |f16, quant| fits("m", &h, None, gpu(f16, quant, None), None).unwrap();
        assert_eq!(need(false, None).device, 1000 * 64 * 4);
        assert_eq!(need(true, None).device, 1000 * 64 * 2);
        assert_eq!(need(true, Some(Quant::Q8)).device, 1000 * 2 * 36);
        assert_eq!(need(true, Some(Quant::Q4)).device, 1000 * 2 * 20);
        // nothing streams without a rule: the host keeps all of it as f32
        assert_eq!(need(true, Some(Quant::Q4)).host, 1000 * 64 * 4);
        assert_eq!(fits("m", &h, None, None, None).unwrap().device, 0);
        // kept on the host and quantised after the load: both copies at the peak
        let q8 = fits("m", &h, None, None, Some(Quant::Q8)).unwrap();
        assert_eq!(q8.converted, 1000 * 2 * 34);
        assert_eq!(q8.host_peak(), q8.host + 1000 * 2 * 34 + headroom(q8.host));
        assert_eq!(
            fits("m", &h, None, None, Some(Quant::Q4))
                .unwrap()
                .converted,
            1000 * 2 * 18
        );
    }

    #[test]
    fn a_streamed_load_keeps_one_matrix_on_the_host() {
        // a Qwen3-0.6B-sized table (151936 x 1024 bf16: 297 MiB) and a norm
        let n: u64 = 151936 * 1024;
        let h = Header {
            data_start: 8,
            data_len: n * 2 + 4096,
            entries: vec![
                Entry {
                    name: "model.embed_tokens.weight".into(),
                    dtype: Dtype::BF16,
                    shape: vec![151936, 1024],
                    start: 0,
                    end: n * 2,
                },
                Entry {
                    name: "model.norm.weight".into(),
                    dtype: Dtype::F32,
                    shape: vec![1024],
                    start: n * 2,
                    end: n * 2 + 4096,
                },
            ],
        };
        let rule = arch::device_rule(Architecture::A2dQwen3);
        let device = DeviceFormat {
            f16: true,
            quant: Some(Quant::Q8),
            binding: None,
            rule,
        };
        let need = fits("m", &h, Some(1 << 30), Some(device), None).unwrap();
        assert_eq!(need.host, 4096);
        assert_eq!(need.in_flight, n * 2);
        // the lookup's table stays f16 when products are q8
        assert_eq!(need.device, n * 2 + 4096);
        // the same checkpoint kept on the host is 594 MiB as f32: past a 512 MiB bound
        assert!(fits("m", &h, Some(512 << 20), gpu(true, None, None), None).is_err());
        assert!(fits("m", &h, Some(512 << 20), Some(device), None).is_ok());
    }
}
