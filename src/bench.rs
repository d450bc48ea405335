//! `unmask bench`: forward latency of an MDLM-OWT-shaped model (12 blocks × 768, 12 heads,
//! 50258-token vocabulary) with random weights made in memory, so no download is needed.
//! Reports ms per forward and GFLOP/s; `bench/torch_mdlm.py` runs the same shapes in PyTorch.

use std::collections::HashMap;
use web_time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::backend::Denoiser;
use crate::batch::Batch;
use crate::engine::{forward, prepare, LoadOptions};
use crate::error::Result;
use crate::model::config::Config;
use crate::model::{Model, Weights};
use crate::tensor::Tensor;

/// The shape of a benchmark model.
#[derive(Clone, Debug)]
pub struct Shape {
    pub vocab: usize,
    pub hidden: usize,
    pub blocks: usize,
    pub heads: usize,
    pub cond: usize,
    pub max_len: usize,
}

impl Shape {
    /// `kuleshov-group/mdlm-owt`.
    pub fn mdlm_owt() -> Shape {
        Shape {
            vocab: 50258,
            hidden: 768,
            blocks: 12,
            heads: 12,
            cond: 128,
            max_len: 1024,
        }
    }
}

/// An MDLM model of this shape with seeded random weights, loaded through the real loader.
pub fn random_mdlm(shape: &Shape, seed: u64) -> Result<Model> {
    let cfg = Config::parse(
        "<bench config>",
        &serde_json::json!({
            "model_type": "mdlm",
            "vocab_size": shape.vocab,
            "hidden_dim": shape.hidden,
            "n_blocks": shape.blocks,
            "n_heads": shape.heads,
            "cond_dim": shape.cond,
            "model_length": shape.max_len,
            "time_conditioning": false,
        })
        .to_string(),
    )?;
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut t = HashMap::new();
    let mut add = |name: String, dims: &[usize], scale: f32| {
        let n = dims.iter().product();
        let data: Vec<f32> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
        t.insert(name, Tensor::new(dims.to_vec(), data));
    };
    let (h, c, v) = (shape.hidden, shape.cond, shape.vocab);
    let s = 0.04;
    add("backbone.vocab_embed.embedding".into(), &[v, h], s);
    add("backbone.sigma_map.mlp.0.weight".into(), &[c, 256], s);
    add("backbone.sigma_map.mlp.0.bias".into(), &[c], s);
    add("backbone.sigma_map.mlp.2.weight".into(), &[c, c], s);
    add("backbone.sigma_map.mlp.2.bias".into(), &[c], s);
    for i in 0..shape.blocks {
        let b = format!("backbone.blocks.{i}");
        add(format!("{b}.norm1.weight"), &[h], 1.0);
        add(format!("{b}.norm2.weight"), &[h], 1.0);
        add(format!("{b}.attn_qkv.weight"), &[3 * h, h], s);
        add(format!("{b}.attn_out.weight"), &[h, h], s);
        add(format!("{b}.mlp.0.weight"), &[4 * h, h], s);
        add(format!("{b}.mlp.0.bias"), &[4 * h], s);
        add(format!("{b}.mlp.2.weight"), &[h, 4 * h], s);
        add(format!("{b}.mlp.2.bias"), &[h], s);
        add(format!("{b}.adaLN_modulation.weight"), &[6 * h, c], s);
        add(format!("{b}.adaLN_modulation.bias"), &[6 * h], s);
    }
    add("backbone.output_layer.norm_final.weight".into(), &[h], 1.0);
    add("backbone.output_layer.linear.weight".into(), &[v, h], s);
    add("backbone.output_layer.linear.bias".into(), &[v], s);
    add(
        "backbone.output_layer.adaLN_modulation.weight".into(),
        &[2 * h, c],
        s,
    );
    add(
        "backbone.output_layer.adaLN_modulation.bias".into(),
        &[2 * h],
        s,
    );
    let model = Model::from_parts(&cfg, &Weights::from_tensors(t), None)?;
    prepare(model, LoadOptions::default())
}

/// One measured configuration.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Measurement {
    pub model: String,
    pub backend: String,
    pub len: usize,
    pub iters: usize,
    /// Median over `iters` runs.
    pub ms_median: f64,
    pub ms_min: f64,
    pub gflop: f64,
    pub gflops_per_s: f64,
}

/// The most timed runs `measure` and `matmul_gflops` take (`unmask bench --iters`): enough
/// for a steady median, and a bound on how long a benchmark and its list of times can grow.
pub const MAX_ITERS: usize = 10_000;

/// Refuses an `iters` outside `1..=MAX_ITERS`.
pub fn check_iters(iters: usize) -> Result<()> {
    if iters == 0 || iters > MAX_ITERS {
        return Err(crate::Error::input(format!(
            "iters: {iters} timed runs is outside 1..={MAX_ITERS}"
        )));
    }
    Ok(())
}

/// Times `iters` forward passes (after one warm-up) of one canvas of `len` random tokens,
/// with the head over every row: the logits `[len, vocab]`, as the peers' graphs output them.
pub async fn measure(
    model: &Model,
    denoiser: &mut impl Denoiser,
    name: &str,
    len: usize,
    iters: usize,
    seed: u64,
) -> Result<Measurement> {
    check_iters(iters)?;
    let mut rng = SmallRng::seed_from_u64(seed);
    let ids: Vec<u32> = (0..len)
        .map(|_| rng.random_range(0..model.spec.vocab_size as u32))
        .collect();
    let batch = Batch::single(ids);
    forward(model, denoiser, &batch, false).await?; // warm-up: page in weights, spin up threads
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        // the logits alone, as the peers' graphs compute them (SUBS' log-softmax after them,
        // which `unmask forward` adds, is the sampler's and not part of the model)
        let t0 = Instant::now();
        let out = denoiser.forward(&batch, false).await?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(out);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let ms_median = times[times.len() / 2];
    let gflop = model.plan()?.flops(len, len) / 1e9;
    Ok(Measurement {
        model: name.to_string(),
        backend: denoiser.backend().name().into(),
        len,
        iters: times.len(),
        ms_median,
        ms_min: times[0],
        gflop,
        gflops_per_s: gflop / (ms_median / 1e3),
    })
}

/// GPU matmul micro-benchmark result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MatmulMeasurement {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub f16: bool,
    pub iters: usize,
    pub ms_median: f64,
    pub gflops_per_s: f64,
    pub adapter: String,
}

/// Times `iters` dispatches of the matmul kernel on `[m, k] × [n, k]ᵀ` (after one warm-up),
/// each submitted and waited for on its own.
#[cfg(feature = "gpu")]
pub async fn matmul_gflops(
    gpu: &crate::backend::gpu::Gpu,
    m: usize,
    k: usize,
    n: usize,
    f16: bool,
    iters: usize,
) -> Result<MatmulMeasurement> {
    use crate::backend::gpu::matmul::{matmul, Epilogue};
    use crate::backend::gpu::weights::GpuMatrix;
    check_iters(iters)?;
    let mut rng = SmallRng::seed_from_u64(3);
    let x: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
    let w = crate::model::matrix::Matrix::f32(
        n,
        k,
        (0..n * k).map(|_| rng.random_range(-0.05..0.05)).collect(),
    );
    let wm = GpuMatrix::upload(gpu, "w", &w, f16, false, &Default::default())?;
    let xb = gpu.upload("x", &x);
    let yb = gpu.storage("y", (m * n * 4) as u64);
    let calls = matmul(gpu, &xb, m, &wm, &Epilogue::plain(), &yb, n, 0);
    let refs: Vec<_> = calls.iter().collect();
    let mut times = Vec::new();
    for i in 0..=iters {
        let t0 = Instant::now();
        gpu.run(&refs);
        gpu.read::<f32>(&[(&yb, 0, 1)]).await?; // waits for the dispatch
        if i > 0 {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let ms = times[times.len() / 2];
    Ok(MatmulMeasurement {
        m,
        k,
        n,
        f16,
        iters: times.len(),
        ms_median: ms,
        gflops_per_s: 2.0 * (m * k * n) as f64 / 1e9 / (ms / 1e3),
        adapter: gpu.describe(),
    })
}
