//! The WGSL backend against the golden files and the CPU path: every fixture's logits on the
//! GPU (f32 weights) within atol/rtol 1e-3 with equal argmax; the f16 weight path against the
//! CPU run on the same f16-rounded weights; the device reductions against the CPU ones. Under
//! CI=true a missing adapter fails; elsewhere these tests say why they did not run.
// options are set one field at a time after the defaults, as a user of the library would
#![allow(clippy::field_reassign_with_default)]
#![cfg(feature = "gpu")]

mod common;

use std::sync::Arc;

use common::*;
use unmask::backend::gpu::Gpu;
use unmask::backend::gpu::GpuModel;
use unmask::backend::summarize;
use unmask::backend::{CpuDenoiser, RowSummary};
use unmask::batch::Row;
use unmask::blocking::block_on;
use unmask::engine::{AnyDenoiser, Engine, WeightFormat};
use unmask::model::Model;
use unmask::tensor::Tensor;

/// GPU logits `[B, L, V]` for a golden batch.
fn gpu_logits(g: &Arc<Gpu>, model: &Model, batch: &unmask::batch::Batch, f16: bool) -> Tensor {
    let gm = block_on(GpuModel::upload(g.clone(), model.plan().unwrap(), f16)).unwrap();
    let mut s = block_on(gm.session(batch.len, batch.len)).unwrap();
    let rows: Vec<usize> = (0..batch.len).collect();
    let mut out = Vec::new();
    for b in 0..batch.size {
        out.extend(block_on(s.logits(&gm, &batch.row(b), &rows)).unwrap());
    }
    Tensor::new(vec![batch.size, batch.len, gm.vocab], out)
}

#[test]
fn gpu_forward_matches_golden_on_every_fixture() {
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    for (name, key, sigma) in [
        ("bert", "logits", None),
        ("distilbert", "logits", None),
        ("roberta", "logits", None),
        ("modernbert", "logits", None),
        ("llada", "logits", None),
        ("llada_gqa", "logits", None),
        ("dream", "logits", None),
        ("a2d_qwen3", "logits", None),
        ("mdlm_dit", "backbone_logits.0", Some("sigma.0")),
        ("mdlm_dit_timecond", "backbone_logits.2", Some("sigma.2")),
        ("udlm", "backbone_logits.2", Some("sigma.2")),
        ("duo", "backbone_logits.2", Some("sigma.2")),
        ("sedd_absorb", "backbone_logits.2", Some("sigma.2")),
        ("sedd_uniform", "backbone_logits.2", Some("sigma.2")),
    ] {
        let model = unmask::engine::load_model(&fixture(name)).unwrap();
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

/// The forward contract through the GPU denoiser for the uniform and score families: at every
/// σ of the golden file, the raw output and the family's reading of it (UDLM's and Duo's
/// `log_probs`, SEDD's `log_score`) within atol/rtol 1e-3.
#[test]
fn uniform_and_score_family_readings_on_the_gpu() {
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    for (name, reading) in [
        ("udlm", "log_probs"),
        ("duo", "log_probs"),
        ("sedd_absorb", "log_score"),
        ("sedd_uniform", "log_score"),
    ] {
        let model = unmask::engine::load_model(&fixture(name)).unwrap();
        let (mut batch, gold) = golden(name);
        let mut d = block_on(AnyDenoiser::gpu(g.clone(), &model, WeightFormat::F32)).unwrap();
        for k in 0..3 {
            batch.sigma = Some(gold[&format!("sigma.{k}")].data.clone());
            let f = block_on(unmask::engine::forward(&model, &mut d, &batch, false)).unwrap();
            let got = match reading {
                "log_score" => f.log_score.unwrap(),
                _ => f.log_probs.unwrap(),
            };
            for (what, got, want) in [
                (
                    "logits",
                    &f.out.logits,
                    &gold[&format!("backbone_logits.{k}")],
                ),
                (reading, &got, &gold[&format!("{reading}.{k}")]),
            ] {
                let e = scaled_err(got, want, &batch);
                eprintln!(
                    "gpu {name} sigma.{k} {what}: max |diff| = {:.2e}, scaled {e:.3}",
                    max_diff(got, want, &batch)
                );
                assert!(e <= 1.0, "gpu {name} sigma.{k} {what}: {e}");
            }
        }
    }
}

#[test]
fn unfolded_mdlm_runs_its_modulation_on_the_gpu() {
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    // Model::load keeps the checkpoint's modulation; the engine's loader would fold it
    let model = Model::load(&fixture("mdlm_dit")).unwrap();
    assert!(model.plan().unwrap().conditioning.is_some());
    let (mut batch, gold) = golden("mdlm_dit");
    batch.sigma = Some(gold["sigma.1"].data.clone());
    let got = gpu_logits(&g, &model, &batch, false);
    assert!(scaled_err(&got, &gold["backbone_logits.1"], &batch) <= 1.0);
}

#[test]
fn f16_weights_match_the_cpu_on_the_same_rounded_weights() {
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    for name in [
        "bert",
        "llada",
        "llada_gqa",
        "dream",
        "mdlm_dit",
        "modernbert",
    ] {
        let mut model = unmask::engine::load_model(&fixture(name)).unwrap();
        round_plan_to_f16(&mut model);
        let (batch, _) = golden(name);
        let want = cpu_forward(&model, &batch, false).unwrap().out.logits;
        let got = gpu_logits(&g, &model, &batch, true);
        let e = scaled_err(&got, &want, &batch);
        eprintln!("{name} f16: {e:.3}");
        assert!(e <= 1.0, "{name} f16 weights: {e}");
    }
}

/// q8_0 matrices run through the matmul kernel's q8 path and match the CPU's q8 run (the same
/// dequantised weights; only the summation order differs). Embeddings go up as f32 here, so
/// nothing else differs.
#[test]
fn q8_weights_match_the_cpu_q8_run() {
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    for name in [
        "bert",
        "llada",
        "mdlm_dit",
        "modernbert",
        "dream",
        "llada_gqa",
    ] {
        let model = unmask::engine::load_model_with(
            &fixture(name),
            unmask::engine::LoadOptions::precision(unmask::model::matrix::Precision::Q8),
        )
        .unwrap();
        let (batch, _) = golden(name);
        let want = cpu_forward(&model, &batch, false).unwrap().out.logits;
        let got = gpu_logits(&g, &model, &batch, false);
        let e = scaled_err(&got, &want, &batch);
        eprintln!("{name} q8: {e:.3}");
        assert!(e <= 1.0, "{name} q8 weights: {e}");
    }
}

/// q4_0 matrices run through the matmul kernel's q4 path and match the CPU's q4 run: the
/// kernel unpacks the same nibbles and scales the host widens, so only the summation order
/// differs. The fixtures' ragged rows (widths not a multiple of 32) exercise the padded last
/// block.
#[test]
fn q4_weights_match_the_cpu_q4_run() {
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    for name in [
        "bert",
        "llada",
        "mdlm_dit",
        "modernbert",
        "dream",
        "llada_gqa",
    ] {
        let model = unmask::engine::load_model_with(
            &fixture(name),
            unmask::engine::LoadOptions::precision(unmask::model::matrix::Precision::Q4),
        )
        .unwrap();
        assert!(model
            .plan()
            .unwrap()
            .matrices()
            .iter()
            .all(|m| m.dtype() == "q4_0"));
        let (batch, _) = golden(name);
        let want = cpu_forward(&model, &batch, false).unwrap().out.logits;
        let got = gpu_logits(&g, &model, &batch, false);
        let e = scaled_err(&got, &want, &batch);
        eprintln!("{name} q4: {e:.3}");
        assert!(e <= 1.0, "{name} q4 weights: {e}");
    }
}

/// A bf16 checkpoint used in place on the host uploads as f16 and runs as the f16 path does.
#[test]
fn bf16_in_place_runs_on_the_gpu() {
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    let mut bf = unmask::engine::load_model(&fixture("llada")).unwrap();
    {
        use unmask::model::matrix::{half_bytes, Bytes, Half, Matrix};
        let p = bf.plan_mut().unwrap();
        let to_bf16 = |m: &Arc<Matrix>| {
            Arc::new(Matrix::half(
                m.rows,
                m.cols,
                Half::Bf16,
                Bytes::owned(half_bytes(Half::Bf16, &m.to_f32())),
            ))
        };
        p.embeddings.tokens = to_bf16(&p.embeddings.tokens);
        for b in &mut p.blocks {
            b.qkv.weight = to_bf16(&b.qkv.weight);
            b.attn_out.weight = to_bf16(&b.attn_out.weight);
            if let unmask::model::plan::Ffn::Gated { up, down, .. } = &mut b.ffn {
                up.weight = to_bf16(&up.weight);
                down.weight = to_bf16(&down.weight);
            }
        }
        p.head.decoder.weight = to_bf16(&p.head.decoder.weight);
        let d: Vec<_> = p.matrices().iter().map(|m| m.dtype()).collect();
        assert!(d.iter().all(|m| *m == "bf16"), "{d:?}");
    }
    let (batch, _) = golden("llada");
    let want = cpu_forward(&bf, &batch, false).unwrap().out.logits;
    // bf16 values are exact in f16 unless tiny or huge; these weights are neither
    let got = gpu_logits(&g, &bf, &batch, true);
    let e = scaled_err(&got, &want, &batch);
    eprintln!("llada bf16 in place: {e:.3}");
    assert!(e <= 1.0, "bf16: {e}");
}

/// Rounds every weight matrix of the plan (the ones the GPU stores as f16) to f16.
fn round_plan_to_f16(model: &mut Model) {
    use unmask::model::plan::Ffn;
    let r = |t: &mut Arc<unmask::model::matrix::Matrix>| {
        let mut data = t.to_f32();
        data.iter_mut()
            .for_each(|v| *v = half::f16::from_f32(*v).to_f32());
        *t = Arc::new(unmask::model::matrix::Matrix::f32(t.rows, t.cols, data));
    };
    let p = model.plan_mut().expect("no backend shares the plan yet");
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
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    let model = unmask::engine::load_model(&fixture("bert")).unwrap();
    let (batch, _) = golden("bert");
    let gm = block_on(GpuModel::upload(g.clone(), model.plan().unwrap(), false)).unwrap();
    let mut s = block_on(gm.session(batch.len, 8)).unwrap();
    let rows = [1usize, 6, 7, 20];
    // the sampler's canvases carry no padding mask or token types
    let row = Row::plain(batch.row(0).ids, 0.0);
    let v = gm.vocab;
    let cpu = CpuDenoiser::new(model.plan().unwrap().clone())
        .logits_now(&row, &rows)
        .unwrap();
    let logits = block_on(s.logits(&gm, &row, &rows)).unwrap();
    let d = logits
        .iter()
        .zip(&cpu)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(d < 1e-3, "masked-row head: {d}");
    let allowed: Vec<bool> = (0..v).map(|i| i > 4).collect();
    let sums = block_on(s.summaries(&gm, &row, &rows, &Default::default(), &allowed, 0.8)).unwrap();
    for (k, got) in sums.iter().enumerate() {
        let want = summarize(&cpu[k * v..(k + 1) * v], &allowed, 0.8);
        assert!((got.lse - want.lse).abs() < 1e-3 && (got.lse_t - want.lse_t).abs() < 1e-3);
        assert!((got.neg_entropy - want.neg_entropy).abs() < 1e-3);
        let ids = |s: &RowSummary| s.top.iter().map(|t| t.0).collect::<Vec<_>>();
        assert_eq!(
            ids(got)[..4],
            ids(&want)[..4],
            "row {k}: leading candidates"
        );
    }
    let full = block_on(s.logits_row(&gm, 2)).unwrap();
    assert!(full
        .iter()
        .zip(&cpu[2 * v..3 * v])
        .all(|(a, b)| (a - b).abs() < 1e-3));
}

fn gpu_infiller(g: &Arc<Gpu>, name: &str) -> Engine {
    let model = unmask::engine::load_model(&fixture(name)).unwrap();
    let d = block_on(AnyDenoiser::gpu(g.clone(), &model, WeightFormat::F32)).unwrap();
    Engine::new(model, d).unwrap()
}

#[test]
fn greedy_infill_agrees_between_cpu_and_gpu() {
    use unmask::diffusion::{SamplerOptions, Strategy};
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    for (name, template) in [
        ("bert", "the [MASK*4] river [MASK] ."),
        ("llada", "the cat [MASK*5] on the mat"),
        ("llada_gqa", "the cat [MASK*5] on the mat"),
        (
            "dream",
            "The cat [MASK*4] the mat, and <|mask|><|mask|> was quiet.",
        ),
        ("mdlm_dit", "the [MASK*6] sat ."),
    ] {
        let mut cpu = cpu_infiller(name);
        let mut gpu_inf = gpu_infiller(&g, name);
        for strategy in [
            Strategy::TopProb,
            Strategy::Margin,
            Strategy::Threshold(0.3),
        ] {
            let mut o = SamplerOptions::default();
            o.strategy = strategy;
            o.choice.temperature = 0.0;
            let a = block_on(cpu.infill(template, &o, &mut |_| {})).unwrap();
            let b = block_on(gpu_inf.infill(template, &o, &mut |_| {})).unwrap();
            assert_eq!(
                a.ids, b.ids,
                "{name} {strategy}: CPU {:?} vs GPU {:?}",
                a.text, b.text
            );
            assert_eq!(a.nfe, b.nfe);
        }
    }
}

/// Holes that grow and shrink change the canvas length between passes: the GPU's per-length
/// sessions must give the CPU's fill, events and lengths (DreamOn fixture, and the bundled
/// DreamOn-trained model, greedy).
#[test]
fn growing_holes_agree_between_cpu_and_gpu() {
    use unmask::diffusion::{SamplerOptions, Strategy, TraceEvent};
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    let bundled = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/dreamon");
    for (dir, template) in [
        (
            fixture("dreamon"),
            "The cat [MASK*?] the mat, and [MASK*1-3] was quiet.",
        ),
        (
            bundled,
            "The little girl [MASK*?] to the park with her [MASK*1-4].",
        ),
    ] {
        let model = |_| unmask::engine::load_model(&dir).unwrap();
        let mut cpu = unmask::engine::cpu_infiller(model(())).unwrap();
        let m = model(());
        let d = block_on(AnyDenoiser::gpu(g.clone(), &m, WeightFormat::F32)).unwrap();
        let mut gpu_inf = Engine::new(m, d).unwrap();
        for strategy in [Strategy::TopProb, Strategy::Entropy] {
            let mut o = SamplerOptions::default();
            o.strategy = strategy;
            o.choice.temperature = 0.0;
            let mut ea = Vec::new();
            let mut eb = Vec::new();
            let a = block_on(cpu.infill(template, &o, &mut |e: &TraceEvent| {
                if !matches!(e, TraceEvent::Step(_) | TraceEvent::Done(_)) {
                    ea.push(e.to_json())
                }
            }))
            .unwrap();
            let b = block_on(gpu_inf.infill(template, &o, &mut |e: &TraceEvent| {
                if !matches!(e, TraceEvent::Step(_) | TraceEvent::Done(_)) {
                    eb.push(e.to_json())
                }
            }))
            .unwrap();
            assert_eq!(
                a.ids,
                b.ids,
                "{} {strategy}: CPU {:?} vs GPU {:?}",
                dir.display(),
                a.text,
                b.text
            );
            assert_eq!((a.hole_lengths, a.nfe), (b.hole_lengths, b.nfe));
            assert_eq!(ea, eb);
        }
    }
}

#[test]
fn sampled_infill_on_the_gpu_keeps_the_known_text_and_its_seed() {
    use unmask::diffusion::{SamplerOptions, Strategy, TraceEvent};
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    let mut inf = gpu_infiller(&g, "mdlm_dit");
    let template = "the cat [MASK*5] on the [MASK*2] .";
    let canvas = inf.canvas(template).unwrap();
    let mut o = SamplerOptions::default();
    o.strategy = Strategy::Ancestral;
    o.choice.temperature = 1.0;
    o.steps = Some(40);
    o.seed = 5;
    let mut commits = 0;
    let a = block_on(inf.infill(template, &o, &mut |e| {
        if let TraceEvent::Step(s) = e {
            commits += s.committed.len();
        }
    }))
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
    let b = block_on(inf.infill(template, &o, &mut |_| {})).unwrap();
    assert_eq!(a.ids, b.ids, "same seed, same backend, same output");
}

#[test]
fn auto_selection_skips_software_adapters_and_says_why() {
    use unmask::backend::{Backend, Denoiser};
    use unmask::engine::{BackendChoice, DeviceOptions, Reason};
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    let software = g.info.device_type == wgpu::DeviceType::Cpu;
    let pick = |backend| {
        let model = unmask::engine::load_model(&fixture("bert")).unwrap();
        let device = DeviceOptions {
            backend,
            ..DeviceOptions::default()
        };
        block_on(unmask::engine::infiller(model, device)).unwrap()
    };
    let (inf, sel) = pick(BackendChoice::Auto);
    assert_eq!(inf.denoiser.backend(), sel.backend);
    assert_eq!(sel.adapter.as_deref(), Some(g.describe().as_str()));
    if software {
        assert_eq!(
            (sel.backend, &sel.reason),
            (Backend::Cpu, &Reason::SoftwareAdapterSkipped)
        );
        let notice = sel.notice("--backend").unwrap();
        assert!(
            notice.contains("only a software adapter")
                && notice.ends_with("(--backend gpu uses it anyway)"),
            "{notice}"
        );
    } else {
        assert_eq!(
            (sel.backend, &sel.reason),
            (Backend::Gpu, &Reason::HardwareAdapter)
        );
    }
    let json = serde_json::to_value(&sel).unwrap();
    assert_eq!(json["backend"], sel.backend.name());
    let (inf, sel) = pick(BackendChoice::Gpu);
    assert_eq!(
        (inf.denoiser.backend(), &sel.reason),
        (Backend::Gpu, &Reason::Requested)
    );
    let (inf, sel) = pick(BackendChoice::Cpu);
    assert_eq!(inf.denoiser.backend(), Backend::Cpu);
    assert_eq!(
        sel.notice("--backend"),
        None,
        "asking for the CPU is not news"
    );
}

/// Once the weights are on the GPU the host's plan is dropped: the model keeps its spec and
/// tokenizer, the GPU engine still fills, and whatever asks for the plan (a CPU denoiser, the
/// forward process's embeddings) gets an error saying why instead of reading nothing.
#[test]
fn the_host_copy_is_released_after_the_upload() {
    use unmask::engine::{BackendChoice, DeviceOptions};
    let Some(_g) = common::gpu_or_skip() else {
        return;
    };
    let model = unmask::engine::load_model(&fixture("llada")).unwrap();
    assert!(model.plan().unwrap().matrix_bytes() > 0);
    let device = DeviceOptions {
        backend: BackendChoice::Gpu,
        ..DeviceOptions::default()
    };
    let (mut inf, _) = block_on(unmask::engine::infiller(model, device)).unwrap();
    let o = unmask::diffusion::SamplerOptions::default();
    let r = block_on(inf.infill("the [MASK*3] sat", &o, &mut |_| {})).unwrap();
    assert!(
        r.text.starts_with("the ") && r.text.ends_with(" sat"),
        "{}",
        r.text
    );
    let e = inf.model.plan().expect_err("the plan is gone").to_string();
    assert!(
        e.contains("live on the GPU") && e.contains("load it again"),
        "{e}"
    );
    let e = match unmask::engine::AnyDenoiser::cpu(&inf.model) {
        Ok(_) => panic!("a CPU denoiser without a plan"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("live on the GPU"), "{e}");
    let e = match unmask::diffusion::noising::NoisingContext::from_model(&inf.model) {
        Ok(_) => panic!("embeddings without a plan"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("live on the GPU"), "{e}");
}

/// An f16 checkpoint used in place goes up to the GPU as the very bits the widened model would
/// (f16 → f32 → f16 is exact), so the GPU logits are identical either way.
#[test]
fn f16_in_place_uploads_the_same_bits_as_widened() {
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    let model = unmask::engine::default_model().unwrap();
    assert!(model.plan().unwrap().embeddings.tokens.dtype() == "f16");
    let widened = unmask::engine::default_model_with(unmask::engine::LoadOptions::precision(
        unmask::model::matrix::Precision::F32,
    ))
    .unwrap();
    let batch = unmask::batch::Batch::single((1..40).collect());
    let a = gpu_logits(&g, &model, &batch, true);
    let b = gpu_logits(&g, &widened, &batch, true);
    let d = max_diff(&a, &b, &batch);
    assert!(
        d == 0.0,
        "f16 in place vs widened on the GPU: max |diff| {d:e}"
    );
}

/// Through the GPU denoiser, the rows the sampler reads for Dream's positions (the spec's
/// shift) are the reference's shifted reading, `logits_shifted`.
#[test]
fn dream_reads_shifted_rows_on_the_gpu() {
    use unmask::backend::Denoiser;
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    let model = unmask::engine::load_model(&fixture("dream")).unwrap();
    let (batch, gold) = golden("dream");
    let mut d = block_on(AnyDenoiser::gpu(g.clone(), &model, WeightFormat::F32)).unwrap();
    let positions: Vec<usize> = (0..batch.len).collect();
    let rows = model.spec.logit_rows(&positions);
    let mut out = Vec::new();
    for b in 0..batch.size {
        let row = Row::plain(batch.row(b).ids, 0.0);
        out.extend(block_on(d.logits(&row, &rows)).unwrap());
    }
    let got = Tensor::new(vec![batch.size, batch.len, model.spec.vocab_size], out);
    let e = scaled_err(&got, &gold["logits_shifted"], &batch);
    assert!(e <= 1.0, "dream shifted rows on the GPU: {e}");
    assert_logits_match(
        "gpu dream shifted",
        &got,
        &gold["logits_shifted"],
        &batch,
        1e-2,
    );
}

/// Item 6 of the families issue: a uniform-state fill (ancestral posterior and Ψ) runs from the
/// device's summaries. Each pass reads back the hole rows' summaries, the logits of two probed
/// tokens per hole (the one it holds and the prior's draw) and, when sampling, one device draw
/// from each row's tail; never a whole row. Greedy fills are the CPU's, token for token (sampled
/// ones draw the tail on the device, so they differ from the CPU's whole-row inversion).
#[test]
fn uniform_fills_read_back_summaries_only() {
    use unmask::backend::gpu::summary_bytes;
    use unmask::backend::{PROBES, TOP_K};
    use unmask::diffusion::{SamplerOptions, Strategy};
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    let template = "the cat [MASK*5] on the [MASK*3] .";
    for (name, strategy) in [("udlm", Strategy::Uniform), ("duo", Strategy::Psi(0.5))] {
        let mut cpu = cpu_infiller(name);
        let mut gpu_inf = gpu_infiller(&g, name);
        let holes = gpu_inf.canvas(template).unwrap().holes.len();
        let vocab = gpu_inf.model.spec.vocab_size;
        for temperature in [0.0, 1.0] {
            let mut o = SamplerOptions::default();
            o.strategy = strategy;
            o.choice.temperature = temperature;
            o.steps = Some(12);
            o.seed = 3;
            let before = g.readback_bytes();
            let b = block_on(gpu_inf.infill(template, &o, &mut |_| {})).unwrap();
            let read = (g.readback_bytes() - before) as usize;
            if temperature == 0.0 {
                let a = block_on(cpu.infill(template, &o, &mut |_| {})).unwrap();
                assert_eq!(
                    a.ids, b.ids,
                    "{name} {strategy}: {:?} vs {:?}",
                    a.text, b.text
                );
                assert_eq!(a.nfe, b.nfe);
            }
            // every pass: at most the holes' summaries, probes and tail draws; one whole row
            // would add V × 4 bytes, more than a pass's probes and tails together
            let per_pass = summary_bytes(holes, holes * PROBES, temperature > 0.0);
            assert!(vocab * 4 > per_pass - summary_bytes(holes, 0, false));
            assert!(
                read <= b.nfe * per_pass,
                "{name} T={temperature}: {read} bytes over {} passes, {per_pass} per pass at most",
                b.nfe
            );
            eprintln!(
                "{name} {strategy} T={temperature}: {holes} holes, {} passes, {read} bytes \
                 read back, {} per pass (at most {} B per hole row: stats, top {TOP_K}, \
                 {PROBES} probes, a tail draw)",
                b.nfe,
                read / b.nfe.max(1),
                per_pass / holes
            );
        }
    }
}

/// The continuous families on the GPU (issue 24): on the trained `models/gaussian` and
/// `models/bits` and the canvas of `tests/fixtures/continuous/`, the GPU's logits of a vector
/// row (all rows, and a few with the output prior gathered) and one DDPM step (backbone, head
/// on every position, estimate, update: one submission) against the CPU's; x̂0 and z within
/// 1e-4, the readout equal except at near-ties, also with Diffusion-LM's rounding. A raw
/// forward pass over ids is refused with the CPU's message.
#[test]
fn continuous_step_on_the_gpu_matches_the_cpu() {
    use unmask::backend::{Denoiser, GpuDenoiser, VectorStep};
    use unmask::batch::{read_f32_tensors, Batch, VectorInput};
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    let max_abs = |a: &[f32], b: &[f32]| {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    };
    for kind in ["gaussian", "bits"] {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(kind);
        let model = unmask::engine::load_model(&dir).unwrap();
        let plan = model.plan().unwrap();
        let io = plan.vectors.as_ref().expect("a continuous model");
        let (w, out) = (io.width, plan.vocab);
        let softmax = matches!(io.readout, unmask::model::plan::Readout::Softmax);

        // the fixture: canvas, known positions, levels at t and s, the step's noise
        let path = fixture(&format!("continuous/{kind}.safetensors"));
        let bytes = std::fs::read(&path).unwrap();
        let f = read_f32_tensors(&path.display().to_string(), &bytes).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let known: Vec<bool> = st
            .tensor("known")
            .unwrap()
            .data()
            .iter()
            .map(|&b| b == 1)
            .collect();
        let len = known.len();
        let t = |name: &str| f[name].data.as_slice();
        let s = |name: &str| f[name].data[0] as f64;
        let (z, input) = (t("z"), t("input"));
        let prior: Vec<f32> = if softmax {
            let c = s("alpha_t") / (s("sigma_t") * s("sigma_t"));
            z.iter().map(|&v| (v as f64 * c) as f32).collect()
        } else {
            Vec::new()
        };
        let ids = vec![0u32; len];
        let row = Row {
            ids: &ids,
            key_mask: None,
            token_types: None,
            sigma: s("g_t") as f32,
            vectors: Some(VectorInput {
                input,
                prior: &prior,
            }),
        };
        let mut cpu = CpuDenoiser::new(plan.clone());
        let mut gpu = block_on(GpuDenoiser::upload(g.clone(), plan, false)).unwrap();
        block_on(gpu.warm_up()).unwrap();

        // logits of a vector row: every row, and a few rows (the prior gathered like them)
        let all: Vec<usize> = (0..len).collect();
        let want = block_on(cpu.logits(&row, &all)).unwrap();
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for rows in [all.clone(), vec![36, 0, 17, 5]] {
            let got = block_on(gpu.logits(&row, &rows)).unwrap();
            let want: Vec<f32> = rows
                .iter()
                .flat_map(|&r| want[r * out..(r + 1) * out].to_vec())
                .collect();
            let e = max_abs(&got, &want);
            eprintln!(
                "{kind}: logits of {} rows max |diff| {e:.2e} (max |logit| {scale:.1})",
                rows.len()
            );
            assert!(e <= 1e-4 * scale, "{kind} logits: {e}");
        }
        // where the CPU's readout is a near-tie, the GPU may read the other token
        let near_tie = |p: usize| -> bool {
            let l = &want[p * out..(p + 1) * out];
            if softmax {
                let mut v = l.to_vec();
                v.sort_by(|a, b| b.total_cmp(a));
                v[0] - v[1] < 1e-3
            } else {
                l.iter().any(|a| a.abs() < 1e-3)
            }
        };

        // one DDPM step from t to s: c = −expm1(g_s − g_t)
        let c = -(s("g_s") - s("g_t")).exp_m1();
        let coefs = (
            (1.0 - c) * s("alpha_s") / s("alpha_t"),
            c * s("alpha_s"),
            c.sqrt() * s("sigma_s"),
        );
        // every id of the table but the mask
        let mut allowed = vec![true; plan.embeddings.tokens.rows];
        allowed[4095] = false;
        for round in [false, true] {
            let step = VectorStep {
                row,
                z,
                noise: t("noise"),
                known: &known,
                clean: t("clean"),
                z_coef: coefs.0 as f32,
                x0_coef: coefs.1 as f32,
                noise_coef: coefs.2 as f32,
                round,
                allowed: &allowed,
            };
            let a = block_on(cpu.vector_step(&step)).unwrap();
            let b = block_on(gpu.vector_step(&step)).unwrap();
            let same: Vec<bool> = (0..len).map(|p| a.tokens[p] == b.tokens[p]).collect();
            let agree = same.iter().filter(|&&x| x).count();
            for p in (0..len).filter(|&p| !same[p]) {
                eprintln!(
                    "{kind} round={round}: position {p} reads {} on the CPU, {} on the GPU",
                    a.tokens[p], b.tokens[p]
                );
                assert!(
                    near_tie(p),
                    "{kind}: position {p} differs and is no near-tie"
                );
            }
            assert!(agree + 2 >= len, "{kind}: {agree}/{len} tokens agree");
            // with rounding a different token is a different vector: compare where they agree
            let pick = |v: &[f32]| -> Vec<f32> {
                (0..len)
                    .filter(|&p| !round || same[p])
                    .flat_map(|p| v[p * w..(p + 1) * w].to_vec())
                    .collect()
            };
            let ex = max_abs(&pick(&b.x0), &pick(&a.x0));
            let ez = max_abs(&pick(&b.z), &pick(&a.z));
            let ep = (0..len)
                .filter(|&p| same[p])
                .map(|p| (b.p[p] - a.p[p]).abs() / a.p[p].max(1e-30))
                .fold(0.0f32, f32::max);
            let golden = if round {
                String::new()
            } else {
                format!(", GPU vs PyTorch's ddpm {:.2e}", max_abs(&b.z, t("ddpm")))
            };
            eprintln!(
                "{kind} round={round}: {agree}/{len} tokens agree, max |Δx0| {ex:.2e}, \
                 max |Δz| {ez:.2e}, max rel Δp {ep:.2e}{golden}"
            );
            assert!(ex <= 1e-4, "{kind} round={round} x0: {ex}");
            assert!(ez <= 1e-4, "{kind} round={round} z: {ez}");
            assert!(ep <= 1e-3, "{kind} round={round} p: {ep}");
            for p in (0..len).filter(|&p| known[p]) {
                assert_eq!(&b.z[p * w..(p + 1) * w], &t("clean")[p * w..(p + 1) * w]);
            }
        }

        // a batch of ids is not this model's input: the CPU's message, on the GPU too
        let batch = Batch::single(vec![1; len]);
        let ec = block_on(cpu.forward(&batch, false))
            .err()
            .unwrap()
            .to_string();
        let eg = block_on(gpu.forward(&batch, false))
            .err()
            .unwrap()
            .to_string();
        assert_eq!(eg, ec);
        assert!(eg.contains("continuous model"), "{eg}");
    }
}

/// Qwen3 A2D set to BD3LM's blocks of 4: the block-causal mask in WGSL gives the golden
/// `logits_block4` (the q/k norm kernel and the head dim apart from the width run here too).
#[test]
fn a2d_qwen3_block_causal_on_the_gpu() {
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    let mut model = unmask::engine::load_model(&fixture("a2d_qwen3")).unwrap();
    model.set_attention(Some(4)).unwrap();
    let (batch, gold) = golden("a2d_qwen3");
    let got = gpu_logits(&g, &model, &batch, false);
    let e = scaled_err(&got, &gold["logits_block4"], &batch);
    assert!(e <= 1.0, "a2d_qwen3 block 4 on the GPU: {e}");
    assert_logits_match(
        "gpu a2d_qwen3 block 4",
        &got,
        &gold["logits_block4"],
        &batch,
        1e-2,
    );
}

/// A streamed load with WebGPU's path: each matrix of a LLaDA, Dream or Qwen3 A2D checkpoint
/// goes to the GPU as it arrives (`Target::sink`), the host keeps only the norms, and the
/// logits are the bits of the model loaded whole and uploaded, in f16, q8 and q4.
#[test]
fn streamed_matrices_go_straight_to_the_gpu() {
    use unmask::backend::Denoiser;
    use unmask::engine::{BackendChoice, DeviceOptions, LoadOptions};
    use unmask::model::config::Config;
    use unmask::model::matrix::Precision;
    use unmask::model::stream::WeightStream;
    use unmask::model::Architecture;

    if common::gpu_or_skip().is_none() {
        return;
    }
    let device = DeviceOptions {
        backend: BackendChoice::Gpu,
        weights: WeightFormat::F16,
    };
    for name in ["a2d_qwen3", "llada", "dream"] {
        let dir = fixture(name);
        let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let cfg = Config::parse("config.json", &text).unwrap();
        let arch = Architecture::from_model_type(&cfg).unwrap();
        let (batch, _) = golden(name);
        for precision in [Precision::Stored, Precision::Q8, Precision::Q4] {
            let target = block_on(unmask::engine::target(device)).unwrap();
            let (sink, rule) = target.sink(arch, precision).expect("a GPU and a rule");
            let mut stream = WeightStream::new("model.safetensors");
            stream.send_to(sink, rule);
            let mut need = None;
            // chunks that split tensors and elements
            for chunk in bytes.chunks(997) {
                stream.push(chunk).unwrap();
                if need.is_none() {
                    if let Some(h) = stream.header() {
                        need = Some(
                            target
                                .check_fits("m", h, Some(1 << 32), Some(arch), precision)
                                .unwrap(),
                        );
                    }
                }
            }
            let need = need.unwrap();
            let largest = stream.largest_sent();
            let weights = stream.finish().unwrap();
            let model = Model::from_parts(&cfg, &weights, None).unwrap();
            let plan = model.plan().unwrap();
            assert!(
                plan.matrices().iter().all(|m| m.on_device()),
                "{name}: every matrix on the device"
            );
            let host: usize = plan.matrices().iter().map(|m| m.bytes()).sum();
            assert_eq!(host, 0, "{name}: no matrix bytes on the host");
            assert_eq!(
                need.in_flight, largest,
                "{name}: the largest tensor in flight"
            );
            let opts = LoadOptions {
                precision,
                ..LoadOptions::default()
            };
            let mut model = unmask::engine::prepare(model, opts).unwrap();
            let mut streamed = block_on(target.denoiser(&mut model)).unwrap();
            // the same checkpoint loaded whole, converted on the host, uploaded; as on the
            // stream, the lookup's table (and a head tied to it) keeps the stored precision
            let mut whole = unmask::engine::load_model(&dir).unwrap();
            let p = whole.plan_mut().unwrap();
            let table = p.embeddings.tokens.clone();
            let tied = Arc::ptr_eq(&table, &p.head.decoder.weight);
            *p = p.converted(precision).unwrap();
            p.embeddings.tokens = table.clone();
            if tied {
                p.head.decoder.weight = table;
            }
            let target = block_on(unmask::engine::target(device)).unwrap();
            let mut uploaded = block_on(target.denoiser(&mut whole)).unwrap();
            let a = block_on(streamed.forward(&batch, false)).unwrap().logits;
            let b = block_on(uploaded.forward(&batch, false)).unwrap().logits;
            assert_eq!(a.shape, b.shape);
            let same = a
                .data
                .iter()
                .zip(&b.data)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(
                same,
                "{name} {precision:?}: streamed logits differ from uploaded ones"
            );
            // the CPU cannot take device rows
            let e = unmask::engine::for_cpu(&mut model).unwrap_err().to_string();
            assert!(e.contains("streamed to the GPU"), "{e}");
            eprintln!(
                "{name} {}: device {} B (need said {}), largest tensor in flight {largest} B",
                precision.name(),
                match &streamed {
                    AnyDenoiser::Gpu(d) => d.model().weight_bytes,
                    _ => 0,
                },
                need.device
            );
        }
    }
}

/// `a` and `b` (`[rows, V]`) within atol/rtol 1e-3, each row's argmax the same.
fn assert_rows_match(what: &str, a: &[f32], b: &[f32], v: usize) {
    assert_eq!(a.len(), b.len(), "{what}: sizes");
    for (r, (x, y)) in a.chunks_exact(v).zip(b.chunks_exact(v)).enumerate() {
        let e = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs() / (1e-3 + 1e-3 * q.abs()))
            .fold(0.0, f32::max);
        assert!(e <= 1.0, "{what}: row {r} outside atol/rtol 1e-3 ({e})");
        let arg = |s: &[f32]| {
            (0..v)
                .max_by(|&i, &j| s[i].total_cmp(&s[j]))
                .expect("a row")
        };
        assert_eq!(arg(x), arg(y), "{what}: row {r} argmax");
    }
}

/// The key/value cache on the GPU against the CPU's (`cpu::kv_cache`): a refresh, then span
/// passes over positions 3..10 (no tile size divides it) after the canvas changed inside the
/// span, the second reading the keys and values the first replaced. Logits of the span's rows
/// (asked out of order) within atol/rtol 1e-3 with equal argmax, through the session and
/// through the denoisers' summaries; on Qwen3 A2D with every key and with BD3LM's blocks of 4,
/// on LLaDA with a padding mask, and on Dream.
#[test]
fn cached_passes_match_the_cpu() {
    use unmask::backend::gpu::GpuDenoiser;
    use unmask::backend::{Ask, CachePass, Denoiser};
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    for (name, blocks, padded) in [
        ("a2d_qwen3", None, false),
        ("a2d_qwen3", Some(4), false),
        ("llada", None, true),
        ("dream", None, false),
    ] {
        let mut model = unmask::engine::load_model(&fixture(name)).unwrap();
        if blocks.is_some() {
            model.set_attention(blocks).unwrap();
        }
        let what = format!("{name} blocks {blocks:?}");
        let plan = model.plan().unwrap().clone();
        let v = plan.vocab;
        let len = 19;
        let mut ids: Vec<u32> = (0..len).map(|i| (i * 37 % 300 + 5) as u32).collect();
        let mask: Vec<bool> = (0..len).map(|j| j < len - 2).collect();
        let gm = block_on(GpuModel::upload(g.clone(), &plan, false)).unwrap();
        let mut s = block_on(gm.session(len, len)).unwrap();
        let mut cpu = CpuDenoiser::new(plan.clone());
        let mut gpu = block_on(GpuDenoiser::upload(g.clone(), &plan, false)).unwrap();
        let allowed = vec![true; v];
        let key_mask = padded.then_some(&mask[..]);
        fn row_of<'a>(ids: &'a [u32], key_mask: Option<&'a [bool]>) -> Row<'a> {
            Row {
                key_mask,
                ..Row::plain(ids, 0.0)
            }
        }
        let all: Vec<usize> = (0..len).collect();
        let span = [9usize, 3, 5, 4, 8];
        let passes = [
            (CachePass::Refresh, &all[..]),
            (CachePass::Span { start: 3, end: 10 }, &span[..]),
            (CachePass::Span { start: 3, end: 10 }, &span[..]),
        ];
        for (k, &(pass, rows)) in passes.iter().enumerate() {
            if k > 0 {
                // a step commits inside the span
                ids[3 + k] = (40 + k) as u32;
                ids[9] = (70 + k) as u32;
            }
            let row = row_of(&ids, key_mask);
            let ask = Ask {
                cache: Some(pass),
                ..Default::default()
            };
            let want = block_on(cpu.summaries(&row, rows, &ask, &allowed, 1.0)).unwrap();
            let want_logits = want.logits.clone().expect("the CPU keeps its logits");
            let got = block_on(s.logits_pass(&gm, &row, rows, Some(pass))).unwrap();
            assert_rows_match(&format!("{what} pass {k}"), &got, &want_logits, v);
            // how far the cached pass is from the whole canvas's: 0 for a refresh; a span reads
            // the keys outside it as of the refresh, so the comparison above is not vacuous
            let plain = block_on(s.logits(&gm, &row, rows)).unwrap();
            let max = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f32::max)
            };
            eprintln!(
                "{what} pass {k}: max |GPU − CPU| {:.1e}, cached v uncached {:.1e}",
                max(&got, &want_logits),
                max(&got, &plain)
            );
            let sums = block_on(gpu.summaries(&row, rows, &ask, &allowed, 1.0)).unwrap();
            for (r, (a, b)) in sums.rows.iter().zip(&want.rows).enumerate() {
                assert!(
                    (a.lse - b.lse).abs() < 1e-3 && a.top[0].0 == b.top[0].0,
                    "{what} pass {k} row {r}: lse {} v {}, top {} v {}",
                    a.lse,
                    b.lse,
                    a.top[0].0,
                    b.top[0].0
                );
            }
        }
        // what both refuse: a row outside the span, a span outside the canvas
        let row = row_of(&ids, key_mask);
        let bad = Ask {
            cache: Some(CachePass::Span { start: 3, end: 10 }),
            ..Default::default()
        };
        for d in [
            block_on(gpu.summaries(&row, &[2], &bad, &allowed, 1.0)).unwrap_err(),
            block_on(cpu.summaries(&row, &[2], &bad, &allowed, 1.0)).unwrap_err(),
        ] {
            assert!(d.to_string().contains("outside the span 3..10"), "{d}");
        }
        let e = block_on(s.logits_pass(
            &gm,
            &row,
            &[18],
            Some(CachePass::Span { start: 12, end: 20 }),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("not inside the canvas"), "{e}");
        // a span at a length with no refresh of its own refreshes, as on the CPU
        let short = &ids[..12];
        let ask = Ask {
            cache: Some(CachePass::Span { start: 3, end: 10 }),
            ..Default::default()
        };
        let short = Row::plain(short, 0.0);
        let want = block_on(cpu.summaries(&short, &[4], &ask, &allowed, 1.0)).unwrap();
        let sums = block_on(gpu.summaries(&short, &[4], &ask, &allowed, 1.0)).unwrap();
        assert!(
            (sums.rows[0].lse - want.rows[0].lse).abs() < 1e-3,
            "{what}: short canvas"
        );
    }
}

/// An engine on the GPU (f32 weights) for `model`.
fn gpu_engine(g: &Arc<Gpu>, model: Model) -> Engine {
    let d = block_on(AnyDenoiser::gpu(g.clone(), &model, WeightFormat::F32)).unwrap();
    Engine::new(model, d).unwrap()
}

/// Greedy infills through the key/value cache: with DualCache (blocks of 4 holes) the GPU
/// gives the CPU's fill, steps and NFE on Qwen3 A2D, LLaDA and Dream; under BD3LM's blocks
/// (which cache by default) the GPU's fill with the cache is its fill without it, and the
/// CPU's.
#[test]
fn cached_infill_agrees_between_cpu_and_gpu() {
    use unmask::diffusion::{InfillOptions, SamplerOptions, Strategy};
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    let t = "The cat sat on the [MASK*8] and then it was quiet again.";
    for name in ["a2d_qwen3", "llada", "dream"] {
        let mut cpu = cpu_infiller(name);
        let mut gpu = gpu_infiller(&g, name);
        for strategy in [Strategy::TopProb, Strategy::Threshold(0.3)] {
            let mut o = InfillOptions {
                strategy: Some(strategy),
                ..InfillOptions::default()
            }
            .resolve(&cpu.model)
            .unwrap();
            o.choice.temperature = 0.0;
            o.block_len = Some(4);
            o.dual_cache = true;
            let flops = |e: &Engine| e.denoiser.flops();
            let (cpu0, gpu0) = (flops(&cpu), flops(&gpu));
            let a = block_on(cpu.infill(t, &o, &mut |_| {})).unwrap();
            let b = block_on(gpu.infill(t, &o, &mut |_| {})).unwrap();
            // the same passes, counted from the same shapes: the GPU counts what the CPU does
            let (cpu1, gpu1) = (flops(&cpu) - cpu0, flops(&gpu) - gpu0);
            assert!(
                cpu1 > 0.0 && cpu1 == gpu1,
                "{name} {strategy}: {cpu1} vs {gpu1} FLOPs"
            );
            let uncached = SamplerOptions {
                dual_cache: false,
                ..o.clone()
            };
            let c = block_on(gpu.infill(t, &uncached, &mut |_| {})).unwrap();
            // the span passes cost less than whole-canvas ones
            assert!(
                gpu1 < flops(&gpu) - gpu0 - gpu1,
                "{name} {strategy}: spans counted as cheaper"
            );
            // where the cache changes the fill, agreeing with the CPU shows the spans ran
            eprintln!(
                "{name} {strategy} dual cache: {:?}, {} NFE; without: {:?}",
                b.text, b.nfe, c.text
            );
            assert_eq!(
                a.ids, b.ids,
                "{name} {strategy}: CPU {:?} vs GPU {:?}",
                a.text, b.text
            );
            assert_eq!((a.steps, a.nfe), (b.steps, b.nfe), "{name} {strategy}");
        }
    }
    let blocks_of_4 = || {
        let mut model = unmask::engine::load_model(&fixture("a2d_qwen3")).unwrap();
        model.set_attention(Some(4)).unwrap();
        model
    };
    let mut cpu = unmask::engine::cpu_infiller(blocks_of_4()).unwrap();
    let mut gpu = gpu_engine(&g, blocks_of_4());
    let t = "The cat[MASK*3] on the mat,[MASK*6] quiet.";
    let o = InfillOptions {
        strategy: Some(Strategy::TopProb),
        ..InfillOptions::default()
    }
    .resolve(&gpu.model)
    .unwrap();
    assert!(o.dual_cache, "block diffusion caches by default");
    let mut plain = o.clone();
    plain.dual_cache = false;
    let cached = block_on(gpu.infill(t, &o, &mut |_| {})).unwrap();
    let full = block_on(gpu.infill(t, &plain, &mut |_| {})).unwrap();
    let on_cpu = block_on(cpu.infill(t, &o, &mut |_| {})).unwrap();
    eprintln!("BD3LM blocks of 4 on the GPU: {:?}", cached.text);
    assert_eq!(
        cached.ids, full.ids,
        "BD3LM: the cache changed the GPU's fill"
    );
    assert_eq!(cached.nfe, full.nfe);
    assert_eq!(cached.ids, on_cpu.ids, "BD3LM: GPU v CPU with the cache");
}
