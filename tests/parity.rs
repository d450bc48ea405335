//! CPU forward parity against the golden outputs of the reference implementations
//! (`tests/fixtures`, copied from `shared/fixtures`): logits within 1e-4 with equal argmax at
//! every real position, and every intermediate the fixture records, layer by layer.

mod common;

use common::*;
use unmask::engine::LoadOptions;
use unmask::model::Model;

const TOL: f32 = 1e-4;

fn check_hidden(name: &str, model: &Model, prefix: &str, count: usize) {
    let (batch, g) = golden(name);
    let out = cpu_forward(model, &batch, true).unwrap().out;
    assert_eq!(out.hidden_states.len(), count, "{name}: captured layers");
    for i in 0..count {
        let key = format!("{prefix}{i}");
        let d = max_diff(&out.hidden_states[i], &g[&key], &batch);
        assert!(d <= TOL, "{name} {key}: max |diff| {d}");
        eprintln!("{name} {key}: {d:.2e}");
    }
}

fn bert_family(name: &str, layers: usize) {
    let model = unmask::engine::load_model(&fixture(name)).unwrap();
    let (batch, g) = golden(name);
    let f = cpu_forward(&model, &batch, false).unwrap();
    assert!(f.log_probs.is_none(), "MLMs have no subs output");
    assert_logits_match(name, &f.out.logits, &g["logits"], &batch, TOL);
    check_hidden(name, &model, "hidden_states.", layers + 1);
}

#[test]
fn bert_matches_golden() {
    bert_family("bert", 2);
}

#[test]
fn distilbert_matches_golden() {
    bert_family("distilbert", 2);
}

#[test]
fn roberta_matches_golden() {
    bert_family("roberta", 2);
}

#[test]
fn modernbert_matches_golden() {
    bert_family("modernbert", 3);
}

/// LLaDA-style fixtures: logits, then `debug.embed`, `debug.block_out.i` and `debug.final_norm`.
fn llama_family(name: &str) -> Model {
    let model = unmask::engine::load_model(&fixture(name)).unwrap();
    let (batch, g) = golden(name);
    let f = cpu_forward(&model, &batch, true).unwrap();
    assert_logits_match(name, &f.out.logits, &g["logits"], &batch, TOL);
    let hs = &f.out.hidden_states;
    assert_eq!(hs.len(), 3);
    for (i, key) in ["debug.embed", "debug.block_out.0", "debug.block_out.1"]
        .iter()
        .enumerate()
    {
        let d = max_diff(&hs[i], &g[*key], &batch);
        assert!(d <= TOL, "{name} {key}: {d}");
    }
    let d = max_diff(
        f.out.final_norm.as_ref().unwrap(),
        &g["debug.final_norm"],
        &batch,
    );
    assert!(d <= TOL, "{name} debug.final_norm: {d}");
    model
}

#[test]
fn llada_matches_golden() {
    llama_family("llada");
}

#[test]
fn llada_with_grouped_query_attention_matches_golden() {
    let m = llama_family("llada_gqa");
    assert_eq!(
        (m.plan().unwrap().heads, m.plan().unwrap().kv_heads),
        (4, 2)
    );
}

/// `unmask forward` gives Dream's raw output rows (the golden `logits`); the rows the sampler
/// reads for each position, through the spec's shift, are the reference's own shifted reading
/// (`logits_shifted`, `cat([logits[:, :1], logits[:, :-1]], 1)`).
#[test]
fn dream_matches_golden_raw_and_shifted() {
    let m = llama_family("dream");
    assert_eq!(
        (m.plan().unwrap().heads, m.plan().unwrap().kv_heads),
        (6, 2)
    );
    let (batch, g) = golden("dream");
    let want = &g["logits_shifted"];
    let v = m.spec.vocab_size;
    let positions: Vec<usize> = (0..batch.len).collect();
    let rows = m.spec.logit_rows(&positions);
    assert_eq!(&rows[..3], &[0, 0, 1]);
    let mut d = unmask::backend::CpuDenoiser::new(m.plan().unwrap().clone());
    let mut got = Vec::new();
    for b in 0..batch.size {
        let row = unmask::batch::Row::plain(batch.row(b).ids, 0.0);
        got.extend(
            unmask::blocking::block_on(unmask::backend::Denoiser::logits(&mut d, &row, &rows))
                .unwrap(),
        );
    }
    let got = unmask::tensor::Tensor::new(vec![batch.size, batch.len, v], got);
    assert_logits_match("dream shifted", &got, want, &batch, TOL);
}

/// The DiT fixtures (MDLM, UDLM, Duo, SEDD), every σ the golden file has, folded (the default:
/// only a constant modulation folds) or unfolded: the raw output (`backbone_logits.K`), the
/// family's reading of it (MDLM's `subs_log_probs.K`, UDLM's and Duo's `log_probs.K`, SEDD's
/// `log_score.K`) and, for `sigma.0`, the embedding and each block's output.
fn dit(name: &str, sigmas: usize, fold: bool) {
    let model = unmask::engine::load_model_with(
        &fixture(name),
        LoadOptions {
            fold_adaln: fold,
            ..Default::default()
        },
    )
    .unwrap();
    let (mut batch, g) = golden(name);
    for k in 0..sigmas {
        batch.sigma = Some(g[&format!("sigma.{k}")].data.clone());
        let f = cpu_forward(&model, &batch, k == 0).unwrap();
        let what = format!("{name} fold={fold} sigma.{k}");
        assert_logits_match(
            &what,
            &f.out.logits,
            &g[&format!("backbone_logits.{k}")],
            &batch,
            TOL,
        );
        let reading = ["subs_log_probs", "log_probs", "log_score"]
            .into_iter()
            .find(|r| g.contains_key(&format!("{r}.{k}")))
            .expect("a reading in the golden file");
        let got = match reading {
            "log_score" => f.log_score.as_ref().expect("SEDD writes its log score"),
            _ => f
                .log_probs
                .as_ref()
                .expect("the DiT families write log-probs"),
        };
        assert!(
            f.log_probs.is_none() || f.log_score.is_none(),
            "{what}: one reading"
        );
        let want = &g[&format!("{reading}.{k}")];
        assert_subs_match(&format!("{what} {reading}"), got, want, TOL);
        if k == 0 {
            // debug.block_out.i were recorded for sigma.0
            let hs = &f.out.hidden_states;
            assert_eq!(hs.len(), 3, "embedding + 2 blocks");
            let d = max_diff(&hs[0], &g["debug.embed"], &batch);
            assert!(d <= TOL, "{what} debug.embed: {d}");
            for (i, h) in hs.iter().enumerate().skip(1) {
                let key = format!("debug.block_out.{}", i - 1);
                let d = max_diff(h, &g[&key], &batch);
                assert!(d <= TOL, "{what} {key}: {d}");
            }
        }
    }
}

#[test]
fn mdlm_matches_golden_folded() {
    dit("mdlm_dit", 2, true);
}

#[test]
fn mdlm_matches_golden_unfolded() {
    dit("mdlm_dit", 2, false);
}

#[test]
fn mdlm_timecond_matches_golden() {
    // time-conditioned: nothing may be folded, whatever the option says
    dit("mdlm_dit_timecond", 3, true);
    let m = unmask::engine::load_model(&fixture("mdlm_dit_timecond")).unwrap();
    assert!(
        m.plan().unwrap().conditioning.is_some()
            && m.plan()
                .unwrap()
                .blocks
                .iter()
                .all(|b| b.modulation.is_some())
    );
}

/// UDLM, Duo and SEDD are the same DiT as MDLM, always conditioned on σ (so never folded,
/// whatever the load options say), with their own reading of the output.
#[test]
fn uniform_and_score_families_match_golden() {
    for name in ["udlm", "duo", "sedd_absorb", "sedd_uniform"] {
        dit(name, 3, true);
        let m = unmask::engine::load_model(&fixture(name)).unwrap();
        let plan = m.plan().unwrap();
        assert!(m.spec.time_conditioning, "{name}");
        assert!(
            plan.conditioning.as_ref().is_some_and(|c| !c.zero_sigma)
                && plan.blocks.iter().all(|b| b.modulation.is_some()),
            "{name}: σ conditioning kept"
        );
    }
}

/// σ(t) and g(t) of the schedule each spec names, against the reference's noise classes
/// (`noise_lib.py` for SEDD, `noise_schedule.py` for UDLM) at t = 0, 0.25, 0.5, 0.9, 1, within
/// 1e-4 relative: the references compute in f32, and the log-linear rate 1/(1 − (1 − ε)t) at
/// t = 1 loses 1.3e-5 of it there.
#[test]
fn noise_schedules_match_golden() {
    for name in ["udlm", "sedd_absorb", "sedd_uniform"] {
        let m = unmask::engine::load_model(&fixture(name)).unwrap();
        let noise = m.spec.noise.expect("a noise schedule");
        let (_, g) = golden(name);
        for (i, &t) in g["noise.t"].data.iter().enumerate() {
            for (key, got) in [
                ("noise.total", noise.sigma(t as f64)),
                ("noise.rate", noise.rate(t as f64)),
            ] {
                let want = g[key].data[i] as f64;
                assert!(
                    (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                    "{name} {key} at t = {t}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn conditioning_vector_matches_golden() {
    use unmask::backend::cpu::modulate::conditioning;
    for (name, sigmas) in [
        ("mdlm_dit", 2),
        ("mdlm_dit_timecond", 3),
        ("udlm", 3),
        ("duo", 3),
        ("sedd_absorb", 3),
        ("sedd_uniform", 3),
    ] {
        let m = unmask::engine::load_model_with(
            &fixture(name),
            LoadOptions {
                fold_adaln: false,
                ..Default::default()
            },
        )
        .unwrap();
        let (_, g) = golden(name);
        let cond = m.plan().unwrap().conditioning.as_ref().unwrap();
        for k in 0..sigmas {
            let want = &g[&format!("debug.cond.{k}")];
            let sig = &g[&format!("sigma.{k}")];
            for b in 0..3 {
                let c = conditioning(cond, sig.data[b]);
                for (i, (x, y)) in c.iter().zip(want.row(b)).enumerate() {
                    assert!(
                        (x - y).abs() <= 1e-5,
                        "{name} cond.{k}[{b},{i}]: {x} vs {y}"
                    );
                }
            }
        }
    }
}

#[test]
fn folding_the_constant_modulation_changes_nothing() {
    let folded = unmask::engine::load_model(&fixture("mdlm_dit")).unwrap();
    let unfolded = unmask::engine::load_model_with(
        &fixture("mdlm_dit"),
        LoadOptions {
            fold_adaln: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        folded.plan().unwrap().conditioning.is_none()
            && folded
                .plan()
                .unwrap()
                .blocks
                .iter()
                .all(|b| b.modulation.is_none())
    );
    assert!(unfolded.plan().unwrap().conditioning.is_some());
    let (batch, _) = golden("mdlm_dit");
    let a = cpu_forward(&folded, &batch, false).unwrap().out.logits;
    let b = cpu_forward(&unfolded, &batch, false).unwrap().out.logits;
    let d = max_diff(&a, &b, &batch);
    assert!(d <= 1e-5, "folded vs unfolded: {d}");
    eprintln!("folded vs unfolded: {d:.2e}");
}

/// Qwen3 A2D (dllm's Tiny-A2D): q/k norms before RoPE, a head dim set apart from the width
/// (4 × 20 on 64), a tied head stored once. Bidirectional as loaded (the MDLM checkpoint), and
/// with BD3LM's block mask once set to blocks of 4 (`logits_block4`, dllm's
/// `_prepare_for_sampling`): the two readings differ by up to 30, so the mask is really applied.
#[test]
fn a2d_qwen3_matches_golden_bidirectional_and_block_causal() {
    let mut m = llama_family("a2d_qwen3");
    let p = m.plan().unwrap();
    assert_eq!((p.heads, p.kv_heads, p.head_dim, p.hidden), (4, 2, 20, 64));
    assert!(
        std::sync::Arc::ptr_eq(&p.embeddings.tokens, &p.head.decoder.weight),
        "tied"
    );
    assert_eq!(m.spec.attention_blocks, None);
    let (batch, g) = golden("a2d_qwen3");
    m.set_attention(Some(4)).unwrap();
    let f = cpu_forward(&m, &batch, false).unwrap();
    assert_logits_match(
        "a2d_qwen3 block 4",
        &f.out.logits,
        &g["logits_block4"],
        &batch,
        TOL,
    );
    let d = max_diff(&f.out.logits, &g["logits"], &batch);
    assert!(d > 1.0, "the block mask changed nothing: {d}");
    // the mask is the tokenizer's `<|mask|>`, as dllm adds it
    assert_eq!(m.mask_id().unwrap(), Some(305));
}
