//! Hostile and careless input to the sampler: every option out of its range is refused with an
//! input error that names the option and its range (through `InfillOptions::resolve`, as the
//! CLI and the JS bindings send them, and through `SamplerOptions` handed to the sampler
//! directly); a model whose weights hold NaN or +inf stops with `Error::NonFinite` naming the
//! step and the row, on the CPU and on the GPU, greedy and sampled, for a ranking strategy and
//! ancestral, without committing a token; and the proposal functions fed adversarial logits and
//! summaries return an error or an allowed token, never panic.
// options are set one field at a time after the defaults, as a user of the library would
#![allow(clippy::field_reassign_with_default)]

mod common;

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use unmask::backend::summarize;
use unmask::backend::{RowSummary, TOP_K};
use unmask::blocking::block_on;
use unmask::diffusion::options::{
    MAX_CFG, MAX_STEPS, MAX_STEPS_PER_HOLE, MAX_TEMPERATURE, MIN_TEMPERATURE,
};
use unmask::diffusion::proposal::{
    draw, finish_with_row, propose_from_summary, propose_row, propose_with_row, FromSummary,
};
use unmask::diffusion::{InfillOptions, SamplerOptions, Strategy, TokenChoice, TraceEvent};
use unmask::engine::Engine;
use unmask::model::Model;
use unmask::Error;

const TEMPLATE: &str = "the cat [MASK*3] on the [MASK] .";

/// The error of resolving `o` for the fixture `mdlm_dit`.
fn resolve_err(o: InfillOptions) -> Error {
    let model = common::model("mdlm_dit");
    o.resolve(&model)
        .expect_err(&format!("{o:?} should be refused"))
}

/// The error of a fill of `template` with `o` handed to the sampler directly.
fn run_err(inf: &mut Engine, template: &str, o: &SamplerOptions) -> Error {
    block_on(inf.infill(template, o, &mut |_| {})).expect_err(&format!("{o:?} should fail"))
}

fn assert_input(e: &Error, needles: &[&str]) {
    assert!(matches!(e, Error::Input(_)), "not an input error: {e:?}");
    let msg = e.to_string();
    for n in needles {
        assert!(msg.contains(n), "`{msg}` does not name `{n}`");
    }
    eprintln!("{msg}");
}

fn temperature_names() -> [String; 3] {
    [
        "temperature".into(),
        MIN_TEMPERATURE.to_string(),
        MAX_TEMPERATURE.to_string(),
    ]
}

#[test]
fn temperature_out_of_range_is_refused() {
    let mut inf = common::cpu_infiller("mdlm_dit");
    let names = temperature_names();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for t in [1e-310, -1.0, f64::NAN, f64::INFINITY, 1e9, 9e-4, 100.5] {
        let e = resolve_err(InfillOptions {
            temperature: Some(t),
            ..Default::default()
        });
        assert_input(&e, &names);
        let mut o = SamplerOptions::default();
        o.choice.temperature = t;
        assert_input(&run_err(&mut inf, TEMPLATE, &o), &names);
    }
}

#[test]
fn guidance_weight_out_of_range_is_refused() {
    let mut inf = common::cpu_infiller("llada");
    let max = MAX_CFG.to_string();
    for w in [1e308, -1.0, f64::NAN, f64::INFINITY, 100.01] {
        let e = resolve_err(InfillOptions {
            cfg: w,
            ..Default::default()
        });
        assert_input(&e, &["guidance weight (cfg)", &max]);
        let mut o = SamplerOptions::default();
        o.cfg_scale = w;
        assert_input(&run_err(&mut inf, TEMPLATE, &o), &["cfg", &max]);
    }
}

#[test]
fn top_p_out_of_range_is_refused() {
    let mut inf = common::cpu_infiller("mdlm_dit");
    for p in [0.0, 1.5, f64::NAN, -0.1, f64::INFINITY] {
        let e = resolve_err(InfillOptions {
            top_p: p,
            ..Default::default()
        });
        assert_input(&e, &["top-p", "(0, 1]"]);
        let mut o = SamplerOptions::default();
        o.choice.top_p = p;
        assert_input(&run_err(&mut inf, TEMPLATE, &o), &["top-p", "(0, 1]"]);
    }
}

#[test]
fn steps_out_of_range_are_refused_before_anything_is_allocated() {
    let cap = MAX_STEPS.to_string();
    for s in [0usize, 4_000_000_000, usize::MAX, MAX_STEPS + 1] {
        let e = resolve_err(InfillOptions {
            steps: Some(s),
            ..Default::default()
        });
        assert_input(&e, &["steps", "between 1 and", &cap]);
    }
    // with the template known, the cap is per hole: 4 holes take at most 4 × 64 steps
    let mut inf = common::cpu_infiller("mdlm_dit");
    let per_hole = (4 * MAX_STEPS_PER_HOLE).to_string();
    for strategy in [
        Strategy::Ancestral,
        Strategy::TopProb,
        Strategy::MaskPredict,
    ] {
        for s in [0, 4 * MAX_STEPS_PER_HOLE + 1, 4_000_000_000, usize::MAX] {
            let mut o = SamplerOptions::default();
            o.strategy = strategy;
            o.steps = Some(s);
            let t0 = std::time::Instant::now();
            let e = run_err(&mut inf, TEMPLATE, &o);
            assert_input(&e, &["steps", &per_hole, "64 per hole for 4 holes"]);
            assert!(t0.elapsed().as_secs_f64() < 5.0, "{s} steps took a while");
        }
        // the cap itself runs
        let mut o = SamplerOptions::default();
        o.strategy = strategy;
        o.steps = Some(4 * MAX_STEPS_PER_HOLE);
        let r = block_on(inf.infill(TEMPLATE, &o, &mut |_| {})).unwrap();
        assert_eq!(r.holes, 4);
    }
}

#[test]
fn block_length_zero_is_refused_and_huge_is_one_block() {
    let mut inf = common::cpu_infiller("llada");
    let mut o = SamplerOptions::default();
    o.strategy = Strategy::TopProb;
    o.block_len = Some(0);
    assert_input(
        &run_err(&mut inf, TEMPLATE, &o),
        &["block length", "at least 1"],
    );
    o.block_len = None;
    let one = block_on(inf.infill(TEMPLATE, &o, &mut |_| {})).unwrap();
    for b in [5, 1 << 40, usize::MAX] {
        o.block_len = Some(b);
        let r = block_on(inf.infill(TEMPLATE, &o, &mut |_| {})).unwrap();
        assert_eq!(
            (r.ids.clone(), r.steps),
            (one.ids.clone(), one.steps),
            "{b}"
        );
    }
    // through the options as well
    let model = common::model("llada");
    let o = InfillOptions {
        block_length: Some(usize::MAX),
        ..Default::default()
    };
    assert_eq!(o.resolve(&model).unwrap().block_len, Some(usize::MAX));
}

#[test]
fn top_k_at_or_past_the_vocabulary_keeps_every_token() {
    let mut inf = common::cpu_infiller("mdlm_dit");
    let v = inf.model.spec.vocab_size;
    let mut o = SamplerOptions::default();
    o.strategy = Strategy::Ancestral;
    o.choice.temperature = 1.0;
    o.seed = 5;
    let all = block_on(inf.infill(TEMPLATE, &o, &mut |_| {})).unwrap();
    for k in [v, v + 1, usize::MAX] {
        o.choice.top_k = k;
        let r = block_on(inf.infill(TEMPLATE, &o, &mut |_| {})).unwrap();
        assert_eq!(r.ids, all.ids, "top-k {k} is not 'all'");
    }
    let model = common::model("mdlm_dit");
    let o = InfillOptions {
        top_k: usize::MAX,
        ..Default::default()
    };
    assert!(o.resolve(&model).is_ok());
}

#[test]
fn the_boundaries_themselves_are_accepted() {
    let mut inf = common::cpu_infiller("llada");
    for (t, w) in [
        (MIN_TEMPERATURE, MAX_CFG),
        (MAX_TEMPERATURE, 0.0),
        (0.0, 0.0),
    ] {
        let mut o = SamplerOptions::default();
        o.choice.temperature = t;
        o.cfg_scale = w;
        o.choice.top_p = f64::MIN_POSITIVE;
        let r = block_on(inf.infill(TEMPLATE, &o, &mut |_| {}))
            .unwrap_or_else(|e| panic!("T {t}, cfg {w}: {e}"));
        let canvas = inf.canvas(TEMPLATE).unwrap();
        for &h in &canvas.holes {
            assert!(inf.allowed[r.ids[h] as usize]);
        }
    }
}

// ---- non-finite weights ----

#[derive(Clone, Copy, Debug)]
enum Poison {
    /// One weight of one ordinary token's decoder row is NaN: only that token's logit is NaN.
    NanInOneToken,
    /// One weight of one ordinary token's decoder row is +inf.
    InfInOneToken,
    /// Every weight of the first block's attention is NaN: every logit is NaN.
    NanEverywhere,
}

/// `name` loaded and prepared, with `poison` written into its weights.
fn poisoned(name: &str, poison: Poison) -> Model {
    // an ordinary token (allowed to be proposed) to poison
    let token = {
        let inf = common::cpu_infiller(name);
        inf.allowed.iter().rposition(|&a| a).unwrap()
    };
    let mut model = common::model(name);
    let plan = model.plan_mut().expect("a fresh plan is not shared");
    let h = plan.hidden;
    match poison {
        Poison::NanInOneToken | Poison::InfInOneToken => {
            let w = Arc::make_mut(&mut plan.head.decoder.weight);
            w.f32_mut()[token * h + h / 2] = match poison {
                Poison::NanInOneToken => f32::NAN,
                _ => f32::INFINITY,
            };
        }
        Poison::NanEverywhere => {
            let w = Arc::make_mut(&mut plan.blocks[0].qkv.weight);
            w.f32_mut().fill(f32::NAN);
        }
    }
    model
}

/// Fills with the poisoned `inf` and checks the error: `NonFinite` at step 1 on the first hole
/// the step proposes for, no token committed, and the message naming both.
fn assert_non_finite(inf: &mut Engine, what: &str) {
    let canvas = inf.canvas(TEMPLATE).unwrap();
    for strategy in [Strategy::TopProb, Strategy::Ancestral] {
        for temperature in [0.0, 1.0] {
            let mut o = SamplerOptions::default();
            o.strategy = strategy;
            o.choice.temperature = temperature;
            let mut committed = 0;
            let e = block_on(inf.infill(TEMPLATE, &o, &mut |e: &TraceEvent| {
                if let TraceEvent::Step(s) = e {
                    committed += s.committed.len();
                }
            }))
            .expect_err(&format!("{what}, {strategy}, T {temperature}: no error"));
            let case = format!("{what}, {strategy}, T {temperature}: {e:?}");
            let Error::NonFinite { step, row } = e else {
                panic!("{case}: not NonFinite");
            };
            assert_eq!((step, row), (1, canvas.holes[0]), "{case}");
            let msg = e.to_string();
            assert_eq!(
                msg,
                format!(
                    "the model produced non-finite scores at step 1, row {}",
                    canvas.holes[0]
                ),
                "{case}"
            );
            assert_eq!(committed, 0, "{case}: a token was committed");
        }
    }
    // guidance reduces on the host: the same error
    let mut o = SamplerOptions::default();
    o.cfg_scale = 1.5;
    let e = run_err(inf, TEMPLATE, &o);
    assert!(
        matches!(e, Error::NonFinite { step: 1, .. }),
        "{what}, cfg: {e:?}"
    );
}

#[test]
fn non_finite_weights_are_a_named_error_on_the_cpu() {
    for name in ["mdlm_dit", "llada"] {
        for poison in [
            Poison::NanInOneToken,
            Poison::InfInOneToken,
            Poison::NanEverywhere,
        ] {
            let mut inf = unmask::engine::cpu_infiller(poisoned(name, poison)).unwrap();
            assert_non_finite(&mut inf, &format!("{name} {poison:?} (CPU)"));
        }
    }
}

/// On the GPU the rows are reduced on the device, whose summaries carry the non-finite flag.
#[cfg(feature = "gpu")]
#[test]
fn non_finite_weights_are_a_named_error_on_the_gpu() {
    use unmask::engine::{AnyDenoiser, WeightFormat};
    let Some(g) = common::gpu_or_skip() else {
        return;
    };
    for name in ["mdlm_dit", "llada"] {
        for poison in [
            Poison::NanInOneToken,
            Poison::InfInOneToken,
            Poison::NanEverywhere,
        ] {
            let model = poisoned(name, poison);
            let d = block_on(AnyDenoiser::gpu(g.clone(), &model, WeightFormat::F32)).unwrap();
            let mut inf = Engine::new(model, d).unwrap();
            assert_non_finite(&mut inf, &format!("{name} {poison:?} (GPU)"));
        }
    }
}

// ---- the proposal functions on adversarial numbers ----

fn rows(v: usize, rng: &mut ChaCha8Rng) -> Vec<(String, Vec<f32>)> {
    let pick = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        -f32::MAX,
        1e-45,
        -1e-45,
        0.0,
        1e30,
        -1e30,
    ];
    let mut out = vec![
        ("all NaN".to_string(), vec![f32::NAN; v]),
        ("all -inf".into(), vec![f32::NEG_INFINITY; v]),
        ("all +inf".into(), vec![f32::INFINITY; v]),
        ("ties".into(), vec![1.5; v]),
        ("all +huge".into(), vec![f32::MAX; v]),
        ("all -huge".into(), vec![-f32::MAX; v]),
        ("tiny".into(), vec![1e-45; v]),
        (
            "huge and -huge".into(),
            (0..v)
                .map(|i| if i % 2 == 0 { f32::MAX } else { -f32::MAX })
                .collect(),
        ),
        (
            "one NaN".into(),
            (0..v)
                .map(|i| if i == v / 2 { f32::NAN } else { i as f32 * 0.1 })
                .collect(),
        ),
        (
            "one -inf".into(),
            (0..v)
                .map(|i| if i == 1 { f32::NEG_INFINITY } else { 0.5 })
                .collect(),
        ),
    ];
    for k in 0..30 {
        out.push((
            format!("mixed {k}"),
            (0..v)
                .map(|_| {
                    if rng.random_range(0..3) == 0 {
                        pick[rng.random_range(0..pick.len())]
                    } else {
                        rng.random_range(-5.0f32..5.0)
                    }
                })
                .collect(),
        ));
    }
    out
}

fn choices() -> Vec<TokenChoice> {
    let mut out = Vec::new();
    for temperature in [0.0, MIN_TEMPERATURE, 1.0, MAX_TEMPERATURE, 1e-310, 1e300] {
        for top_k in [0, 1, 3, TOP_K + 1, usize::MAX] {
            for top_p in [1.0, 0.5, 1e-12] {
                out.push(TokenChoice {
                    temperature,
                    top_k,
                    top_p,
                });
            }
        }
    }
    out
}

fn allowed_token(t: u32, allowed: &[bool]) -> bool {
    allowed.get(t as usize) == Some(&true)
}

#[test]
fn proposals_on_adversarial_logits_are_an_error_or_an_allowed_token() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (mut errors, mut tokens) = (0, 0);
    for v in [1usize, 2, 17, 40] {
        let allowed_sets: Vec<Vec<bool>> = vec![
            vec![true; v],
            (0..v).map(|i| i % 3 != 0).collect(),
            vec![false; v],
            (0..v).map(|i| i == v - 1).collect(),
        ];
        for (name, row) in rows(v, &mut rng) {
            for allowed in &allowed_sets {
                for choice in choices() {
                    let case = format!("v {v}, {name}, {choice:?}, allowed {allowed:?}");
                    let check = |r: unmask::Result<u32>, n: &mut (usize, usize)| match r {
                        Ok(t) => {
                            assert!(allowed_token(t, allowed), "{case}: token {t}");
                            n.1 += 1;
                        }
                        Err(_) => n.0 += 1,
                    };
                    let mut n = (0, 0);
                    check(
                        propose_row(&row, allowed, &choice, &mut rng).map(|p| p.token),
                        &mut n,
                    );
                    let s = summarize(&row, allowed, choice.temperature);
                    check(
                        propose_with_row(&s, &row, allowed, &choice, &mut rng).map(|p| p.token),
                        &mut n,
                    );
                    let via_summary = propose_from_summary(&s, &choice, &mut rng)
                        .and_then(|f| finish_with_row(&s, f, &row, allowed, &choice, &mut rng));
                    check(via_summary.map(|p| p.token), &mut n);
                    errors += n.0;
                    tokens += n.1;
                    // a row with a non-finite allowed logit is never drawn from a summary
                    if s.non_finite {
                        assert!(
                            propose_from_summary(&s, &choice, &mut rng).is_err(),
                            "{case}"
                        );
                    }
                }
            }
        }
    }
    eprintln!("{errors} errors, {tokens} allowed tokens");
    assert!(errors > 0 && tokens > 0);
}

#[test]
fn proposals_on_adversarial_summaries_never_panic() {
    let summary = |max: f64, lse: f64, lse_t: f64, ne: f64, top: Vec<(u32, f32)>| RowSummary {
        max,
        lse,
        lse_t,
        neg_entropy: ne,
        top,
        non_finite: false,
        tail: None,
        probed: Vec::new(),
    };
    let tops = [
        vec![],
        vec![(0, 1.0)],
        vec![(3, 1.0), (3, 1.0)],
        vec![(u32::MAX, 2.0), (1, 1.0)],
        (0..TOP_K as u32).map(|i| (i, 1.0)).collect(),
        vec![(1, f32::NAN), (2, f32::INFINITY)],
        vec![(1, f32::MAX), (2, -f32::MAX)],
        vec![(1, 1e-45), (0, 0.0)],
    ];
    let figures = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        1e308,
        -1e308,
        1.0,
    ];
    let row: Vec<f32> = (0..5).map(|i| i as f32).collect();
    let short_row = [0.5f32];
    let allowed = [true, true, false, true, true];
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (mut errors, mut tokens) = (0, 0);
    for top in &tops {
        for &a in &figures {
            for &b in &figures {
                for flag in [false, true] {
                    let mut s = summary(a, b, a, b, top.clone());
                    s.non_finite = flag;
                    for choice in choices() {
                        let case = format!("{s:?} {choice:?}");
                        match propose_from_summary(&s, &choice, &mut rng) {
                            Ok(FromSummary::Done(p)) => {
                                assert!(s.top.iter().any(|t| t.0 == p.token), "{case}");
                                tokens += 1;
                            }
                            Ok(need) => {
                                for r in [&row[..], &short_row[..]] {
                                    match finish_with_row(&s, need, r, &allowed, &choice, &mut rng)
                                    {
                                        Ok(p) => {
                                            assert!(allowed_token(p.token, &allowed), "{case}");
                                            tokens += 1;
                                        }
                                        Err(_) => errors += 1,
                                    }
                                }
                            }
                            Err(_) => errors += 1,
                        }
                        for r in [&row[..], &short_row[..]] {
                            match propose_with_row(&s, r, &allowed, &choice, &mut rng) {
                                Ok(p) => {
                                    assert!(allowed_token(p.token, &allowed), "{case}");
                                    tokens += 1;
                                }
                                Err(_) => errors += 1,
                            }
                        }
                    }
                }
            }
        }
    }
    eprintln!("{errors} errors, {tokens} tokens");
    assert!(draw(&[], &mut rng).is_err());
    assert_eq!(draw(&[(7, f64::NAN)], &mut rng).unwrap(), 7);
}
