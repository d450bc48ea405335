//! A backend chosen before the model is read. A caller that streams a checkpoint (the
//! browser) picks the backend first, checks the checkpoint's header against the memory and
//! limits of where it will run, and only then reads the weights: a model that cannot fit fails
//! before its download, not after.

use super::denoiser::AnyDenoiser;
use super::select::{choose, DeviceOptions, GpuHandle, Selection, WeightFormat};
use super::Engine;
use crate::diffusion::Infiller;
use crate::error::{Error, Result};
use crate::model::stream::Header;
use crate::model::Model;

/// Where a model will run, not yet attached to one.
pub struct Target {
    gpu: Option<GpuHandle>,
    pub selection: Selection,
    weights: WeightFormat,
}

/// Chooses the backend `device` asks for (see [`Selection`]).
pub async fn target(device: DeviceOptions) -> Result<Target> {
    let (gpu, selection) = choose(device.backend).await?;
    Ok(Target {
        gpu,
        selection,
        weights: device.weights,
    })
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

    /// Whether a checkpoint with this header can run here: its weights, widened to f32 as the
    /// model keeps them, within `memory` bytes (the address space of a wasm32 module; `None`:
    /// no bound), and, on a GPU, every weight row within one storage binding.
    pub fn check_fits(&self, path: &str, header: &Header, memory: Option<u64>) -> Result<()> {
        fits(
            path,
            header,
            memory,
            self.max_binding(),
            self.weights == WeightFormat::F16,
        )
    }

    /// A denoiser for `model` on the chosen backend, the model kept whole: a GPU uploads the
    /// plan as prepared, the CPU packs the model's panels in place first ([`super::for_cpu`]).
    /// For callers that need the model's plan beside the denoiser or no engine around it: the
    /// forward contract, which needs no tokenizer, and a benchmark that times several backends
    /// on one model (the GPUs first, so that they upload the plan before the CPU packs it).
    pub async fn denoiser(&self, model: &mut Model) -> Result<AnyDenoiser> {
        #[cfg(feature = "gpu")]
        if let Some(g) = &self.gpu {
            return AnyDenoiser::upload(g.clone(), model, self.weights).await;
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

/// See [`Target::check_fits`]; `f16`: the GPU stores weight matrices as f16 pairs.
pub fn fits(
    path: &str,
    header: &Header,
    memory: Option<u64>,
    binding: Option<u64>,
    f16: bool,
) -> Result<()> {
    let weights = header.f32_bytes();
    if let Some(limit) = memory {
        let need = weights + headroom(weights);
        if need > limit {
            return Err(Error::TooLarge(format!(
                "{path}: its weights take {} as f32 (about {} with working memory), more than the {} this module can address",
                human(weights),
                human(need),
                human(limit)
            )));
        }
    }
    if let Some(limit) = binding {
        for e in &header.entries {
            // matrices are split by rows over buffers; vectors and tables go up whole, as f32
            let (bytes, what) = match e.shape.as_slice() {
                [_, cols] => {
                    let words = if f16 { cols.div_ceil(2) } else { *cols };
                    ((words * 4) as u64, "one row")
                }
                _ => (e.elements().saturating_mul(4), "the whole tensor"),
            };
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
    Ok(())
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

    #[test]
    fn memory_bound_counts_f32_weights_and_headroom() {
        // a 126464 x 4096 bf16 head is 0.96 GiB on disk and 1.93 GiB as f32
        let h = header(vec![126464, 4096]);
        assert!(fits("m", &h, Some(4 << 30), None, true).is_ok());
        let e = fits("m", &h, Some(2 << 30), None, true).unwrap_err();
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
    fn binding_bound_is_per_row_for_matrices() {
        let h = header(vec![50000, 1000]);
        // f16 rows are 2000 bytes, f32 rows 4000
        assert!(fits("m", &h, None, Some(2000), true).is_ok());
        let msg = fits("m", &h, None, Some(2000), false)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("`lm_head.weight`") && msg.contains("one row"),
            "{msg}"
        );
        let v = header(vec![3000]);
        let msg = fits("m", &v, None, Some(4000), true)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("the whole tensor"), "{msg}");
    }
}
