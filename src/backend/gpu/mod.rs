//! The WGSL backend on wgpu: the same `Plan` as the CPU backend, one `.wgsl` file per op in
//! `shaders/` (joined with the shared snippets of `shaders/shared/` by `shader`), each with a
//! small dispatcher here and a GPU-vs-CPU test on odd shapes.

pub(crate) mod activation;
pub(crate) mod attention;
pub(crate) mod context;
mod denoiser;
pub(crate) mod embed;
pub(crate) mod estimate;
pub(crate) mod forward;
pub(crate) mod gather;
pub(crate) mod glu;
pub(crate) mod head_norm;
pub(crate) mod kv_cache;
pub(crate) mod matmul;
pub(crate) mod modulate;
pub(crate) mod norm;
pub(crate) mod reduce;
pub(crate) mod rope;
pub(crate) mod shader;
pub(crate) mod vector_update;
pub(crate) mod weights;

pub use context::Gpu;
pub(crate) use context::{Binding, Call};
pub use forward::GpuModel;
pub use reduce::summary_bytes;
pub use weights::{DeviceSink, Held};

/// Threads per workgroup of the element-wise kernels (embed, gather, glu, modulate, rope,
/// vector_update): handed to their WGSL as the override constant `WG` and used for their
/// dispatch counts, so the two cannot drift apart. (The reductions, estimate among them, keep
/// theirs in `shaders/shared/workgroup_reduce.wgsl` and attention in its own file: their
/// workgroup arrays and per-thread slices are sized by it.)
pub(crate) const WG: u32 = 64;

/// The `WG` override of an element-wise kernel, for [`Gpu::kernel`].
pub(crate) const WG_CONSTANT: (&str, f64) = ("WG", WG as f64);
pub use denoiser::GpuDenoiser;
pub(crate) use shader::Shader;

/// The adapter for GPU tests. Under `CI=true` a missing adapter fails the test; elsewhere the
/// test says why it did not run and passes.
#[cfg(test)]
pub(crate) fn test_gpu() -> Option<Gpu> {
    match crate::blocking::block_on(Gpu::new()) {
        Ok(g) => Some(g),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("CI=true but {e}"),
        Err(e) => {
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

#[cfg(test)]
impl Gpu {
    /// Reads buffers back, blocking (op tests only).
    pub(crate) fn read_blocking<T: bytemuck::Pod>(
        &self,
        parts: &[(&wgpu::Buffer, u64, u64)],
    ) -> crate::error::Result<Vec<T>> {
        crate::blocking::block_on(self.read(parts))
    }
}
