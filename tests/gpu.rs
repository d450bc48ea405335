//! The WGSL backend against the golden files and the CPU path: every fixture's logits on the
//! GPU (f32 weights) within atol/rtol 1e-3 with equal argmax; the f16 weight path against the
//! CPU run on the same f16-rounded weights; the device reductions against the CPU ones. Under
//! CI=true a missing adapter fails; elsewhere these tests say why they did not run.

mod common;

use std::sync::Arc;

use common::*;
use unmask::backend::gpu::forward::GpuModel;
use unmask::backend::gpu::reduce::summarize;
use unmask::backend::gpu::Gpu;
use unmask::backend::Backend;
use unmask::model::{LoadOptions, Model};
use unmask::tensor::Tensor;

fn gpu() -> Option<Arc<Gpu>> {
    match Gpu::new_blocking() {
        Ok(g) => {
            eprintln!("adapter: {}", g.describe());
            Some(Arc::new(g))
        }
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("CI=true but {e}"),
        Err(e) => {
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

/// GPU logits `[B, L, V]` for a golden batch.
fn gpu_logits(g: &Arc<Gpu>, model: &Model, batch: &unmask::batch::Batch, f16: bool) -> Tensor {
    let gm = GpuModel::upload(g.clone(), &model.plan, f16).unwrap();
    let mut s = gm.session(batch.len, batch.len).unwrap();
    let rows: Vec<usize> = (0..batch.len).collect();
    let mut out = Vec::new();
    for b in 0..batch.size {
        out.extend(pollster::block_on(s.logits(&gm, &batch.row(b), &rows)).unwrap());
    }
    Tensor::new(vec![batch.size, batch.len, gm.vocab], out)
}

#[test]
fn gpu_forward_matches_golden_on_every_fixture() {
    let Some(g) = gpu() else { return };
    for (name, key, sigma) in [
        ("bert", "logits", None),
        ("distilbert", "logits", None),
        ("roberta", "logits", None),
        ("modernbert", "logits", None),
        ("llada", "logits", None),
        ("mdlm_dit", "backbone_logits.0", Some("sigma.0")),
        ("mdlm_dit_timecond", "backbone_logits.2", Some("sigma.2")),
    ] {
        let model = Model::load(&fixture(name)).unwrap();
        let (mut batch, gold) = golden(name);
        if let Some(s) = sigma {
            batch.sigma = Some(gold[s].data.clone());
        }
        let got = gpu_logits(&g, &model, &batch, false);
        let e = scaled_err(&got, &gold[key], &batch);
        eprintln!(
            "{name}: max |diff| / (1e-3 + 1e-3|x|) = {e:.3}, max |diff| = {:.2e}",
            max_diff(&got, &gold[key], &batch)
        );
        assert!(e <= 1.0, "{name}: outside atol/rtol 1e-3 ({e})");
        assert_logits_match(&format!("gpu {name}"), &got, &gold[key], &batch, 1e-2);
    }
}

#[test]
fn unfolded_mdlm_runs_its_modulation_on_the_gpu() {
    let Some(g) = gpu() else { return };
    let model = Model::load_with(&fixture("mdlm_dit"), LoadOptions { fold_adaln: false }).unwrap();
    let (mut batch, gold) = golden("mdlm_dit");
    batch.sigma = Some(gold["sigma.1"].data.clone());
    let got = gpu_logits(&g, &model, &batch, false);
    assert!(scaled_err(&got, &gold["backbone_logits.1"], &batch) <= 1.0);
}

#[test]
fn f16_weights_match_the_cpu_on_the_same_rounded_weights() {
    let Some(g) = gpu() else { return };
    for name in ["bert", "llada", "mdlm_dit", "modernbert"] {
        let mut model = Model::load(&fixture(name)).unwrap();
        round_plan_to_f16(&mut model);
        let (batch, _) = golden(name);
        let want = model
            .forward(&batch, Backend::Cpu, false)
            .unwrap()
            .out
            .logits;
        let got = gpu_logits(&g, &model, &batch, true);
        let e = scaled_err(&got, &want, &batch);
        eprintln!("{name} f16: {e:.3}");
        assert!(e <= 1.0, "{name} f16 weights: {e}");
    }
}

/// Rounds every weight matrix of the plan (the ones the GPU stores as f16) to f16.
fn round_plan_to_f16(model: &mut Model) {
    use unmask::model::plan::Ffn;
    let r = |t: &mut Arc<Tensor>| {
        let t = Arc::make_mut(t);
        t.data
            .iter_mut()
            .for_each(|v| *v = half::f16::from_f32(*v).to_f32());
    };
    let p = &mut model.plan;
    r(&mut p.embeddings.tokens);
    for b in &mut p.blocks {
        r(&mut b.qkv.weight);
        r(&mut b.attn_out.weight);
        match &mut b.ffn {
            Ffn::Plain { up, down, .. } | Ffn::Gated { up, down, .. } => {
                r(&mut up.weight);
                r(&mut down.weight);
            }
        }
    }
    if let Some((d, _, _)) = &mut p.head.transform {
        r(&mut d.weight);
    }
    r(&mut p.head.decoder.weight);
}

#[test]
fn masked_row_head_and_reductions_match_the_cpu() {
    let Some(g) = gpu() else { return };
    let model = Model::load(&fixture("bert")).unwrap();
    let (batch, _) = golden("bert");
    let gm = GpuModel::upload(g.clone(), &model.plan, false).unwrap();
    let mut s = gm.session(batch.len, 8).unwrap();
    let rows = [1usize, 6, 7, 20];
    // the sampler's canvases carry no padding mask or token types
    let row = unmask::backend::cpu::Row {
        ids: batch.row(0).ids,
        key_mask: None,
        token_types: None,
        sigma: 0.0,
    };
    let v = gm.vocab;
    let cpu = model.denoise(row.ids, &rows, 0.0, Backend::Cpu).unwrap();
    let logits = pollster::block_on(s.logits(&gm, &row, &rows)).unwrap();
    let d = logits
        .iter()
        .zip(&cpu)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(d < 1e-3, "masked-row head: {d}");
    let allowed: Vec<bool> = (0..v).map(|i| i > 4).collect();
    let sums = pollster::block_on(s.summaries(&gm, &row, &rows, &allowed, 0.8)).unwrap();
    for (k, got) in sums.iter().enumerate() {
        let want = summarize(&cpu[k * v..(k + 1) * v], &allowed, 0.8);
        assert!((got.lse - want.lse).abs() < 1e-3 && (got.lse_t - want.lse_t).abs() < 1e-3);
        assert!((got.neg_entropy - want.neg_entropy).abs() < 1e-3);
        let ids = |s: &unmask::backend::gpu::reduce::RowSummary| {
            s.top.iter().map(|t| t.0).collect::<Vec<_>>()
        };
        assert_eq!(
            ids(got)[..4],
            ids(&want)[..4],
            "row {k}: leading candidates"
        );
    }
    let full = pollster::block_on(s.logits_row(&gm, 2)).unwrap();
    assert!(full
        .iter()
        .zip(&cpu[2 * v..3 * v])
        .all(|(a, b)| (a - b).abs() < 1e-3));
}

fn gpu_infiller(g: &Arc<Gpu>, name: &str) -> unmask::diffusion::Infiller {
    let mut inf = unmask::diffusion::Infiller::load(&fixture(name)).unwrap();
    inf.model.attach_gpu(g.clone(), false).unwrap();
    inf.backend = Backend::Gpu;
    inf
}

#[test]
fn greedy_infill_agrees_between_cpu_and_gpu() {
    use unmask::diffusion::{Infiller, SamplerOptions, Strategy};
    let Some(g) = gpu() else { return };
    for (name, template) in [
        ("bert", "the [MASK*4] river [MASK] ."),
        ("llada", "the cat [MASK*5] on the mat"),
        ("mdlm_dit", "the [MASK*6] sat ."),
    ] {
        let cpu = Infiller::load(&fixture(name)).unwrap();
        let gpu_inf = gpu_infiller(&g, name);
        for strategy in [
            Strategy::TopProb,
            Strategy::Margin,
            Strategy::Threshold(0.3),
        ] {
            let mut o = SamplerOptions::for_model(&cpu.model);
            o.strategy = strategy;
            o.choice.temperature = 0.0;
            let a = cpu.infill(template, &o, &mut |_| {}).unwrap();
            let b = gpu_inf.infill(template, &o, &mut |_| {}).unwrap();
            assert_eq!(
                a.ids, b.ids,
                "{name} {strategy}: CPU {:?} vs GPU {:?}",
                a.text, b.text
            );
            assert_eq!(a.nfe, b.nfe);
        }
    }
}

#[test]
fn sampled_infill_on_the_gpu_keeps_the_known_text_and_its_seed() {
    use unmask::diffusion::{SamplerOptions, Strategy, TraceEvent};
    let Some(g) = gpu() else { return };
    let inf = gpu_infiller(&g, "mdlm_dit");
    let template = "the cat [MASK*5] on the [MASK*2] .";
    let canvas = inf.canvas(template).unwrap();
    let mut o = SamplerOptions::for_model(&inf.model);
    o.strategy = Strategy::Ancestral;
    o.steps = Some(40);
    o.seed = 5;
    let mut commits = 0;
    let a = inf
        .infill(template, &o, &mut |e| {
            if let TraceEvent::Step(s) = e {
                commits += s.committed.len();
            }
        })
        .unwrap();
    assert_eq!(commits, canvas.holes.len());
    assert!(
        a.nfe <= canvas.holes.len(),
        "the forward-skip cache works on the GPU path too: {} NFE",
        a.nfe
    );
    for (i, (&x, &y)) in a.ids.iter().zip(&canvas.ids).enumerate() {
        if canvas.holes.contains(&i) {
            assert!(inf.allowed[x as usize]);
        } else {
            assert_eq!(x, y);
        }
    }
    assert!(a.text.starts_with("the cat ") && a.text.ends_with(" ."));
    let b = inf.infill(template, &o, &mut |_| {}).unwrap();
    assert_eq!(a.ids, b.ids, "same seed, same backend, same output");
}
