//! The continuous families (Gaussian on embeddings, Analog Bits) against PyTorch: the trained
//! models' schedule, input scaling, forward pass, estimate and one DDIM and one DDPM step on the
//! fixed inputs of `tests/fixtures/continuous/` (made by its `make.py` from `train/continuous.py`);
//! then the sampler: reproducible for a seed, the known text never changes, every step reports
//! the holes whose readout changed.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use unmask::backend::{CpuDenoiser, Denoiser, VectorStep};
use unmask::batch::{read_f32_tensors, Row, VectorInput};
use unmask::blocking::block_on;
use unmask::diffusion::continuous::{ddim, ddpm, input_scales, prior_coef};
use unmask::diffusion::trace::StepEvent;
use unmask::diffusion::{SamplerOptions, Strategy, TraceEvent};
use unmask::tensor::Tensor;

fn model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name)
}

struct Fixture {
    f: HashMap<String, Tensor>,
    ids: Vec<u32>,
    known: Vec<bool>,
}

impl Fixture {
    fn load(kind: &str) -> Fixture {
        let path = common::fixture(&format!("continuous/{kind}.safetensors"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let f = read_f32_tensors(&path.display().to_string(), &bytes).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let ids = st
            .tensor("ids")
            .unwrap()
            .data()
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u32)
            .collect();
        let known = st
            .tensor("known")
            .unwrap()
            .data()
            .iter()
            .map(|&b| b == 1)
            .collect();
        Fixture { f, ids, known }
    }
    fn t(&self, name: &str) -> &[f32] {
        &self.f[name].data
    }
    fn s(&self, name: &str) -> f64 {
        self.f[name].data[0] as f64
    }
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Schedule, input, forward, estimate and both updates against PyTorch.
fn parity(kind: &str) {
    let model = unmask::Model::load(&model_dir(kind)).unwrap();
    let spec = &model.spec;
    let vs = spec.vectors.clone().expect("a continuous model");
    let fx = Fixture::load(kind);
    let (len, w) = (fx.ids.len(), vs.width);

    // the schedule: the engine's levels at the fixture's t and s
    let noise = spec.noise.unwrap();
    let (lt, ls) = (noise.levels(fx.s("t")), noise.levels(fx.s("s")));
    for (got, want) in [
        (lt.alpha, "alpha_t"),
        (lt.sigma, "sigma_t"),
        (lt.gamma, "g_t"),
        (ls.alpha, "alpha_s"),
        (ls.sigma, "sigma_s"),
        (ls.gamma, "g_s"),
    ] {
        assert!(
            (got - fx.s(want)).abs() < 2e-6 * (1.0 + got.abs()),
            "{kind} {want}: {got} vs {}",
            fx.s(want)
        );
    }

    // the input the engine builds from z and x_sc
    let (kz, ksc) = input_scales(spec.family, w, lt);
    let (z, x_sc) = (fx.t("z"), fx.t("x_sc"));
    let mut input = vec![0.0f32; len * 2 * w];
    for p in 0..len {
        for d in 0..w {
            input[p * 2 * w + d] = (z[p * w + d] as f64 * kz) as f32;
            input[p * 2 * w + w + d] = (x_sc[p * w + d] as f64 * ksc) as f32;
        }
    }
    let e = max_abs(&input, fx.t("input"));
    assert!(e < 1e-5, "{kind} input: {e}");
    let prior: Vec<f32> = match prior_coef(spec.family, lt) {
        Some(c) => z.iter().map(|&v| (v as f64 * c) as f32).collect(),
        None => Vec::new(),
    };

    // clean vectors of the known ids
    let mut clean = vec![0.0f32; len * w];
    for (p, c) in clean.chunks_mut(w).enumerate() {
        vs.clean(fx.ids[p], c);
    }
    let e = max_abs(&clean, fx.t("clean"));
    assert!(e < 1e-6, "{kind} clean vectors: {e}");

    let mut d = CpuDenoiser::new(model.plan().unwrap().clone());
    let row = Row {
        ids: &fx.ids,
        key_mask: None,
        token_types: None,
        sigma: lt.gamma as f32,
        vectors: Some(VectorInput {
            input: &input,
            prior: &prior,
        }),
    };
    let all: Vec<usize> = (0..len).collect();
    let logits = block_on(d.logits(&row, &all)).unwrap();
    let want = fx.t("logits");
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let e = max_abs(&logits, want);
    eprintln!("{kind}: logits max |diff| {e:.2e} (max |logit| {scale:.2})");
    assert!(e < 2e-4 * scale.max(1.0), "{kind} logits: {e}");

    let allowed = vec![true; spec.vocab_size];
    for (name, coefs) in [("ddim", ddim(lt, ls)), ("ddpm", ddpm(lt, ls))] {
        let step = VectorStep {
            row,
            z,
            noise: fx.t("noise"),
            known: &fx.known,
            clean: fx.t("clean"),
            z_coef: coefs.z as f32,
            x0_coef: coefs.x0 as f32,
            noise_coef: coefs.noise as f32,
            round: false,
            allowed: &allowed,
        };
        let out = block_on(d.vector_step(&step)).unwrap();
        let e = max_abs(&out.x0, fx.t("x0"));
        assert!(e < 1e-4, "{kind} x0: {e}");
        let e = max_abs(&out.z, fx.t(name));
        eprintln!("{kind}: {name} step max |diff| {e:.2e}");
        assert!(e < 1e-4, "{kind} {name}: {e}");
        let st = safetensors::SafeTensors::deserialize(
            &std::fs::read(common::fixture(&format!("continuous/{kind}.safetensors"))).unwrap(),
        )
        .unwrap()
        .tensor("tokens")
        .unwrap()
        .data()
        .to_vec();
        let want: Vec<u32> = st
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u32)
            .collect();
        let same = out.tokens.iter().zip(&want).filter(|(a, b)| a == b).count();
        // the fixture's README names one near-tie per model (a margin of 0.015, a bit logit of
        // 3.5e-4): allow one disagreement
        assert!(same + 1 >= len, "{kind} tokens: {same}/{len} agree");
    }
}

#[test]
fn gaussian_model_matches_pytorch() {
    parity("gaussian");
}

#[test]
fn bits_model_matches_pytorch() {
    parity("bits");
}

fn fill(
    kind: &str,
    strategy: Strategy,
    steps: usize,
    seed: u64,
) -> (String, Vec<StepEvent>, usize) {
    let model = unmask::engine::load_model(&model_dir(kind)).unwrap();
    let mut inf = unmask::engine::cpu_infiller(model).unwrap();
    let opts = SamplerOptions {
        strategy,
        steps: Some(steps),
        seed,
        ..SamplerOptions::default()
    };
    let mut events = Vec::new();
    let r = block_on(inf.infill(
        "Once upon a time, a [MASK*3] lived by the [MASK*2]. \u{e9}t\u{e9} \\[MASK]",
        &opts,
        &mut |e| {
            if let TraceEvent::Step(s) = e {
                events.push(s.clone())
            }
        },
    ))
    .unwrap();
    (r.text, events, r.nfe)
}

#[test]
fn continuous_fills_keep_the_text_and_repeat_for_a_seed() {
    for kind in ["gaussian", "bits"] {
        for strategy in [
            Strategy::Ddim(0.0),
            Strategy::Ddpm(0.0),
            Strategy::Ddim(0.5),
        ] {
            let (text, events, nfe) = fill(kind, strategy, 6, 7);
            assert!(text.starts_with("Once upon a time, a "), "{text}");
            assert!(text.contains(" lived by the "), "{text}");
            assert!(text.ends_with(". \u{e9}t\u{e9} [MASK]"), "{text}");
            assert_eq!((nfe, events.len()), (6, 6), "{kind} {strategy}");
            // the first step reads every hole, later ones only what changed
            assert_eq!(events[0].committed.len(), 5, "{kind} {strategy}");
            assert!(events
                .iter()
                .all(|e| e.masked == 0 && e.committed.len() <= 5));
            let times: Vec<f64> = events.iter().map(|e| e.t).collect();
            assert!(times.windows(2).all(|w| w[0] > w[1]) && times[0] == 1.0);
            let again = fill(kind, strategy, 6, 7);
            assert_eq!(
                (text.clone(), events),
                (again.0, again.1),
                "{kind} {strategy}"
            );
            if strategy == Strategy::Ddpm(0.0) {
                let other = fill(kind, strategy, 6, 8).0;
                assert_ne!(text, other, "{kind}: another seed, the same DDPM fill");
            }
        }
    }
}

#[test]
fn continuous_models_refuse_what_they_do_not_sample() {
    let model = unmask::engine::load_model(&model_dir("bits")).unwrap();
    let mut inf = unmask::engine::cpu_infiller(model).unwrap();
    let opts = SamplerOptions {
        strategy: Strategy::TopProb,
        ..SamplerOptions::default()
    };
    let e = block_on(inf.infill("a [MASK] b", &opts, &mut |_| {})).unwrap_err();
    assert!(
        e.to_string().contains("use ddim[:ROUND], ddpm[:ROUND]"),
        "{e}"
    );
    let opts = SamplerOptions {
        strategy: Strategy::Ddim(0.0),
        block_len: Some(1),
        ..SamplerOptions::default()
    };
    let e = block_on(inf.infill("a [MASK*2] b", &opts, &mut |_| {})).unwrap_err();
    assert!(e.to_string().contains("block-length"), "{e}");
    // a raw forward pass over ids has no vectors to read
    let batch = unmask::batch::Batch::single(vec![1, 2, 3]);
    let e = block_on(inf.denoiser.forward(&batch, false)).err().unwrap();
    assert!(e.to_string().contains("continuous model"), "{e}");
}

#[test]
fn eval_scores_continuous_models_with_their_bound() {
    use unmask::diffusion::eval::{evaluate, EvalOptions};
    let text = "Once upon a time there was a little rabbit who lived in a hole under the old oak \
                tree.\n\nEvery morning he ran down the lane to see his friend the owl, who \
                knew everything about the woods and the river.";
    for kind in ["gaussian", "bits"] {
        let model = unmask::engine::load_model(&model_dir(kind)).unwrap();
        let mut inf = unmask::engine::cpu_infiller(model).unwrap();
        let opts = EvalOptions::default();
        let r = block_on(evaluate(&mut inf, text, &opts)).unwrap();
        assert_eq!(serde_json::to_value(r.family).unwrap(), kind);
        // three passes per chunk: accuracy, the bound's t, its reconstruction at t = 0
        assert_eq!(r.nfe, 3 * r.chunks, "{kind}");
        assert!(
            r.nelbo_per_token.is_finite() && r.nelbo_per_token > 0.0,
            "{kind}: {r:?}"
        );
        assert!((0.0..=1.0).contains(&r.accuracy) && r.masked >= r.chunks);
        let again = block_on(evaluate(&mut inf, text, &opts)).unwrap();
        assert_eq!(
            again.nelbo_sum, r.nelbo_sum,
            "{kind}: the same seed, another bound"
        );
        let other = EvalOptions {
            seed: 1,
            ..EvalOptions::default()
        };
        let moved = block_on(evaluate(&mut inf, text, &other)).unwrap();
        assert_ne!(
            moved.nelbo_sum, r.nelbo_sum,
            "{kind}: the seed changes nothing"
        );
    }
}
