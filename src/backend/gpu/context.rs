//! The wgpu device: adapter and device setup (with the adapter's own limits), a pipeline cache,
//! buffer helpers and readback. Everything that waits on the device is async; only the native
//! edges (`src/bin`, tests) block on it, through `crate::blocking`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use super::shader::Shader;
use crate::error::{Error, GpuFault, Result};

/// How a kernel uses one of its bindings, in binding order. ("Slot" is only the canvas's: a
/// piece of a template laid out in `text::canvas`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binding {
    Read,
    Write,
    Uniform,
}

pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    kernels: Mutex<HashMap<String, Kernel>>,
    /// A 16-byte buffer bound where a kernel's optional input is not used.
    pub dummy: wgpu::Buffer,
    /// Why the device was lost, once it is.
    lost: Arc<Mutex<Option<String>>>,
    /// Bytes read back from the device since it was opened (what a step costs the bus).
    readback: std::sync::atomic::AtomicU64,
    /// The first error raised outside an error scope since the last check.
    uncaptured: Arc<Mutex<Option<(GpuFault, String)>>>,
}

#[derive(Clone)]
pub struct Kernel {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// One recorded dispatch: created once per model and canvas size, recorded every step.
pub struct Call {
    pub kernel: Kernel,
    pub bind_group: wgpu::BindGroup,
    pub groups: [u32; 3],
    /// Keeps the uniform buffer alive with the bind group.
    _params: Option<wgpu::Buffer>,
}

fn gpu_err(msg: impl Into<String>) -> Error {
    Error::gpu(GpuFault::Failed, msg)
}

impl Gpu {
    /// The first adapter wgpu offers (honouring `WGPU_BACKEND` and friends), with its limits.
    pub async fn new() -> Result<Gpu> {
        // Without WebGPU (Node, an old browser, a page without the flag) wgpu would panic
        // creating its instance; ask first, so that this is an error value like any other.
        #[cfg(target_arch = "wasm32")]
        if !wgpu::util::is_browser_webgpu_supported().await {
            return Err(Error::gpu(
                GpuFault::Unavailable,
                "no adapter found (WebGPU is unavailable here: no navigator.gpu, or it offers no adapter)",
            ));
        }
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::gpu(GpuFault::Unavailable, format!("no adapter found ({e})")))?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("unmask"),
                required_features: wgpu::Features::empty(),
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| {
                Error::gpu(
                    GpuFault::Unavailable,
                    format!("cannot open a device on {} ({e})", info.name),
                )
            })?;
        // Errors outside an error scope (a bug, or a driver fault) are kept and returned by
        // the next check, so they surface as `Error::Gpu` on every target.
        let uncaptured = Arc::new(Mutex::new(None));
        let slot = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e| {
            if let Ok(mut u) = slot.lock() {
                let fault = match e {
                    wgpu::Error::OutOfMemory { .. } => GpuFault::OutOfMemory,
                    _ => GpuFault::Failed,
                };
                u.get_or_insert_with(|| (fault, e.to_string()));
            }
        }));
        let lost = Arc::new(Mutex::new(None));
        let flag = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut l) = flag.lock() {
                *l = Some(format!("{reason:?}: {msg}"));
            }
        });
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dummy"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::UNIFORM,
            mapped_at_creation: false,
        });
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            kernels: Mutex::new(HashMap::new()),
            dummy,
            lost,
            readback: std::sync::atomic::AtomicU64::new(0),
            uncaptured,
        })
    }

    /// An error if the device has been lost, or raised an error outside any error scope.
    pub fn check_alive(&self) -> Result<()> {
        if let Some(why) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(Error::gpu(
                GpuFault::DeviceLost,
                format!("the device {} was lost ({why})", self.info.name),
            ));
        }
        if let Some((fault, e)) = self.uncaptured.lock().ok().and_then(|mut u| u.take()) {
            return Err(Error::gpu(
                fault,
                format!("{} reported: {e}", self.info.name),
            ));
        }
        Ok(())
    }

    /// Runs `f` inside error scopes, turning an out-of-memory or validation error raised by
    /// what it creates (buffers, pipelines) into an error value naming `what`. The scopes are
    /// awaited, which in the browser is the only way to learn of such an error.
    pub async fn guard<T>(&self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let invalid = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let invalid = invalid.pop().await;
        let oom = oom.pop().await;
        self.check_alive()?;
        if let Some(e) = oom {
            return Err(Error::gpu(
                GpuFault::OutOfMemory,
                format!(
                    "out of device memory while {what} on {} ({e})",
                    self.info.name
                ),
            ));
        }
        if let Some(e) = invalid {
            return Err(gpu_err(format!("{what} failed on {}: {e}", self.info.name)));
        }
        out
    }

    /// Bytes read back from the device so far.
    pub fn readback_bytes(&self) -> u64 {
        self.readback.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `name (backend)` for messages.
    pub fn describe(&self) -> String {
        // browsers may withhold the adapter's name
        let name = match self.info.name.as_str() {
            "" => "unnamed adapter",
            n => n,
        };
        format!("{name} ({:?})", self.info.backend)
    }

    /// Largest storage binding in bytes.
    pub fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// A compiled kernel, cached by shader and override constants; its source is composed
    /// (`Shader::source`) only on the first request.
    pub fn kernel(
        &self,
        shader: Shader,
        bindings: &[Binding],
        constants: &[(&str, f64)],
    ) -> Kernel {
        let name = shader.name();
        let key = format!("{name}{constants:?}");
        if let Some(k) = self.kernels.lock().expect("kernel cache").get(&key) {
            return k.clone();
        }
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(shader.source().into()),
            });
        let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
            .iter()
            .enumerate()
            .map(|(i, s)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match s {
                        Binding::Read => wgpu::BufferBindingType::Storage { read_only: true },
                        Binding::Write => wgpu::BufferBindingType::Storage { read_only: false },
                        Binding::Uniform => wgpu::BufferBindingType::Uniform,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(name),
                entries: &entries,
            });
        let pl = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(name),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: Some(&pl),
                module: &module,
                entry_point: Some("main"),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    zero_initialize_workgroup_memory: true,
                },
                cache: None,
            });
        let k = Kernel { pipeline, layout };
        self.kernels
            .lock()
            .expect("kernel cache")
            .insert(key, k.clone());
        k
    }

    /// A dispatch of `kernel` over `buffers` (in binding order) and, bound after them as the
    /// kernel's last slot, the uniform `params`: the kernel's `#[repr(C)]` mirror of its WGSL
    /// `struct Params`. A kernel without a uniform passes `&()`.
    pub fn call<P: bytemuck::Pod>(
        &self,
        kernel: &Kernel,
        buffers: &[&wgpu::Buffer],
        params: &P,
        groups: [u32; 3],
    ) -> Call {
        // a uniform binding is read in 16-byte rows; the structs carry their own padding
        const { assert!(std::mem::size_of::<P>().is_multiple_of(16)) };
        let bytes = bytemuck::bytes_of(params);
        let uniform = (!bytes.is_empty()).then(|| {
            self.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("params"),
                    contents: bytes,
                    usage: wgpu::BufferUsages::UNIFORM,
                })
        });
        let mut entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        if let Some(u) = &uniform {
            entries.push(wgpu::BindGroupEntry {
                binding: buffers.len() as u32,
                resource: u.as_entire_binding(),
            });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &kernel.layout,
            entries: &entries,
        });
        Call {
            kernel: kernel.clone(),
            bind_group,
            groups,
            _params: uniform,
        }
    }

    pub fn storage(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).div_ceil(4) * 4,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    pub fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        if bytes.len() < 16 {
            let mut padded = bytes.to_vec();
            padded.resize(16, 0);
            return self.upload(label, &padded);
        }
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytes,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            })
    }

    pub fn write<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer, data: &[T]) {
        self.queue
            .write_buffer(buffer, 0, bytemuck::cast_slice(data));
    }

    /// Records the calls into one compute pass of a new encoder and submits it.
    pub fn run(&self, calls: &[&Call]) {
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        record(&mut enc, calls);
        self.queue.submit([enc.finish()]);
    }

    /// Copies `words` f32/u32 words from each `(buffer, offset_words)` and reads them back.
    pub async fn read<T: bytemuck::Pod>(
        &self,
        parts: &[(&wgpu::Buffer, u64, u64)],
    ) -> Result<Vec<T>> {
        let total: u64 = parts.iter().map(|p| p.2 * 4).sum();
        self.readback
            .fetch_add(total, std::sync::atomic::Ordering::Relaxed);
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: total.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        let mut at = 0;
        for (buf, off, words) in parts {
            enc.copy_buffer_to_buffer(buf, off * 4, &staging, at, words * 4);
            at += words * 4;
        }
        self.queue.submit([enc.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
        let mapped = rx.await.map_err(|_| {
            Error::gpu(
                GpuFault::DeviceLost,
                "the device was lost while reading back",
            )
        });
        self.check_alive()?;
        mapped?.map_err(|e| gpu_err(format!("readback failed: {e}")))?;
        let out = {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| gpu_err(format!("readback failed: {e}")))?;
            bytemuck::cast_slice::<u8, T>(&view[..total as usize]).to_vec()
        };
        staging.unmap();
        Ok(out)
    }
}

pub fn record(enc: &mut wgpu::CommandEncoder, calls: &[&Call]) {
    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: None,
        timestamp_writes: None,
    });
    for c in calls {
        pass.set_pipeline(&c.kernel.pipeline);
        pass.set_bind_group(0, &c.bind_group, &[]);
        pass.dispatch_workgroups(c.groups[0], c.groups[1], c.groups[2]);
    }
}

/// Workgroups to cover `n` items with `per` each, split over y when x would pass 65535.
/// A dispatcher's shape check of one binding: `buf` must hold at least `values` 4-byte values
/// (f32 or u32) for the call's shape. A shader reading past a binding's end gets clamped or zero
/// values, never an error, so a wrong size would be a silent wrong answer; this makes it a
/// named failure when the call is recorded (a few comparisons per call, recorded once per
/// session). Web-rwkv and ratchet check every op's shapes the same way.
pub(crate) fn expect_values(buf: &wgpu::Buffer, binding: &str, values: usize) {
    let need = values as u64 * 4;
    assert!(
        buf.size() >= need,
        "{binding}: the binding holds {} bytes, the call's shape reads {need}",
        buf.size()
    );
}

pub fn groups_1d(n: u32, per: u32) -> [u32; 3] {
    let g = n.div_ceil(per).max(1);
    if g <= 65535 {
        [g, 1, 1]
    } else {
        [65535, g.div_ceil(65535), 1]
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_gpu;
    use crate::blocking::block_on;

    #[test]
    fn a_failed_allocation_is_an_error_value() {
        let Some(gpu) = test_gpu() else { return };
        let too_big = gpu.limits.max_buffer_size + 4;
        let e = block_on(gpu.guard("allocating a test buffer", || {
            let _b = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("too big"),
                size: too_big,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            Ok(())
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("allocating a test buffer"), "{e}");
        // the device is still usable afterwards
        let b = gpu.upload("ok", &[1.0f32, 2.0, 3.0, 4.0]);
        assert_eq!(
            block_on(gpu.read::<f32>(&[(&b, 0, 4)])).unwrap(),
            vec![1.0, 2.0, 3.0, 4.0]
        );
    }
}
