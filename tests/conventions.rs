//! The parity tests would catch a wrong convention: each test here loads a fixture, changes one
//! convention in the plan (GELU flavour, RoPE base or layout, position ids, norm placement,
//! LayerNorm bias, sliding window, σ handling, subs mask id) and shows that the output then
//! misses the golden file by at least five times the 1e-4 parity tolerance.

mod common;

use std::sync::Arc;

use unmask::model::matrix::Matrix;

use common::*;
use unmask::diffusion::subs;
use unmask::engine::LoadOptions;
use unmask::model::plan::{Activation, Ffn, NormPlacement, PositionIds, Rope};
use unmask::model::Model;

/// Max |Δ| against the golden logits after `mutate`; asserts the unmutated model passes first.
fn diff_after(
    name: &str,
    opts: LoadOptions,
    key: &str,
    sigma: Option<&str>,
    mutate: impl FnOnce(&mut Model),
) -> f32 {
    let mut model = unmask::engine::load_model_with(&fixture(name), opts).unwrap();
    let (mut batch, g) = golden(name);
    if let Some(s) = sigma {
        batch.sigma = Some(g[s].data.clone());
    }
    let base = cpu_forward(&model, &batch, false).unwrap().out.logits;
    assert!(
        max_diff(&base, &g[key], &batch) <= 1e-4,
        "{name}: unmutated model must pass"
    );
    mutate(&mut model);
    let got = cpu_forward(&model, &batch, false).unwrap().out.logits;
    max_diff(&got, &g[key], &batch)
}

fn set_activation(model: &mut Model, act: Activation) {
    for b in &mut model.plan_mut().unwrap().blocks {
        match &mut b.ffn {
            Ffn::Plain { act: a, .. } | Ffn::Gated { act: a, .. } => *a = act,
        }
    }
}

fn assert_caught(what: &str, d: f32) {
    eprintln!("{what}: max |diff| {d:.3e}");
    assert!(d > 5e-4, "{what} was not caught: max |diff| {d}");
}

#[test]
fn gelu_flavour_is_caught() {
    let d = diff_after("bert", LoadOptions::default(), "logits", None, |m| {
        set_activation(m, Activation::GeluTanh)
    });
    assert_caught("BERT with tanh GELU", d);
    let d = diff_after(
        "mdlm_dit",
        LoadOptions::default(),
        "backbone_logits.0",
        None,
        |m| set_activation(m, Activation::GeluErf),
    );
    assert_caught("MDLM with erf GELU", d);
}

#[test]
fn rope_base_is_caught() {
    let d = diff_after("llada", LoadOptions::default(), "logits", None, |m| {
        let hd = m.plan().unwrap().head_dim;
        for b in &mut m.plan_mut().unwrap().blocks {
            b.rope = Some(Rope::new(10000.0, hd));
        }
    });
    assert_caught("LLaDA with θ = 10000 instead of 500000", d);
}

/// Interleaved RoPE (pairs 2j, 2j+1) equals rotate-half applied after permuting each q and k
/// head's dimensions, since the permutation cancels in q·k. Doing that permutation on the
/// weights therefore runs the model with the interleaved convention.
#[test]
fn rope_layout_is_caught() {
    let d = diff_after("llada", LoadOptions::default(), "logits", None, |m| {
        let (h, hd) = (m.plan().unwrap().hidden, m.plan().unwrap().head_dim);
        for b in &mut m.plan_mut().unwrap().blocks {
            let k = b.qkv.weight.cols;
            let old = b.qkv.weight.to_f32();
            let mut data = old.clone();
            for head_row0 in (0..2 * h).step_by(hd) {
                for j in 0..hd / 2 {
                    for (new, src) in [(j, 2 * j), (j + hd / 2, 2 * j + 1)] {
                        let (dst, from) = ((head_row0 + new) * k, (head_row0 + src) * k);
                        data[dst..dst + k].copy_from_slice(&old[from..from + k]);
                    }
                }
            }
            b.qkv.weight = Arc::new(Matrix::f32(b.qkv.weight.rows, k, data));
        }
    });
    assert_caught("LLaDA with interleaved RoPE", d);
}

#[test]
fn roberta_position_offset_is_caught() {
    let d = diff_after("roberta", LoadOptions::default(), "logits", None, |m| {
        m.plan_mut()
            .unwrap()
            .embeddings
            .positions
            .as_mut()
            .unwrap()
            .1 = PositionIds::FromZero;
    });
    assert_caught("RoBERTa with positions from 0", d);
}

#[test]
fn norm_placement_is_caught() {
    let d = diff_after("distilbert", LoadOptions::default(), "logits", None, |m| {
        for b in &mut m.plan_mut().unwrap().blocks {
            b.placement = NormPlacement::Pre;
        }
    });
    assert_caught("DistilBERT as pre-LN", d);
}

#[test]
fn layer_norm_bias_is_caught() {
    let d = diff_after("bert", LoadOptions::default(), "logits", None, |m| {
        m.plan_mut().unwrap().embeddings.norm.as_mut().unwrap().bias = None;
    });
    assert_caught("BERT embedding LayerNorm without bias", d);
}

#[test]
fn sliding_window_is_caught() {
    let d = diff_after("modernbert", LoadOptions::default(), "logits", None, |m| {
        for b in &mut m.plan_mut().unwrap().blocks {
            b.keys = unmask::model::plan::Keys::All;
        }
    });
    assert_caught("ModernBERT with global attention everywhere", d);
}

#[test]
fn qwen3_head_norms_are_caught() {
    let d = diff_after("a2d_qwen3", LoadOptions::default(), "logits", None, |m| {
        for b in &mut m.plan_mut().unwrap().blocks {
            b.head_norms = None;
        }
    });
    assert_caught("Qwen3 A2D without q_norm/k_norm", d);
}

#[test]
fn ignoring_sigma_zeroing_is_caught() {
    // mdlm_dit has time_conditioning false: the reference zeroes σ = 2.0 before embedding it
    let opts = LoadOptions {
        fold_adaln: false,
        ..Default::default()
    };
    let d = diff_after(
        "mdlm_dit",
        opts,
        "backbone_logits.1",
        Some("sigma.1"),
        |m| {
            m.plan_mut()
                .unwrap()
                .conditioning
                .as_mut()
                .unwrap()
                .zero_sigma = false;
        },
    );
    assert_caught("MDLM feeding σ although time_conditioning is false", d);
}

#[test]
fn subs_mask_id_is_caught() {
    let model = unmask::engine::load_model(&fixture("mdlm_dit")).unwrap();
    let (batch, g) = golden("mdlm_dit");
    let logits = cpu_forward(&model, &batch, false).unwrap().out.logits;
    let wrong = subs::log_probs(&logits, &batch.ids, 96); // <|endoftext|>, not the mask (97)
    let want = &g["subs_log_probs.0"];
    let bad = wrong
        .data
        .iter()
        .zip(&want.data)
        .filter(|(a, b)| (**a - **b).abs() > 1e-3)
        .count();
    eprintln!("subs with mask id 96: {bad} elements off");
    assert!(bad > 100, "a wrong mask id must change the subs output");
}
