//! `unmask eval` on a time-conditioned checkpoint: each pass must show the model the σ(t) of its
//! masking level (the chunk's t for the NELBO, the mask rate for the accuracy pass), as the
//! sampler does. The expected figures are recomputed here through the forward contract, with
//! σ in the batch, independently of `evaluate`'s own calls.

mod common;

use common::*;
use unmask::batch::Batch;
use unmask::blocking::block_on;
use unmask::diffusion::eval::{evaluate, EvalOptions};
use unmask::diffusion::proposal::log_softmax;
use unmask::diffusion::seeded::hash3;
use unmask::diffusion::Schedule;
use unmask::text::canvas::frame;

fn unit(h: u64) -> f64 {
    h as f64 / 18_446_744_073_709_551_616.0
}

/// Σ −log p(truth) over `rows` (and the count of top-1 hits) for `canvas` at noise level σ.
fn score(
    inf: &unmask::engine::Engine,
    canvas: &[u32],
    truth: &[u32],
    rows: &[usize],
    sigma: f32,
) -> (f64, usize) {
    let mut batch = Batch::single(canvas.to_vec());
    batch.sigma = Some(vec![sigma]);
    let logits = cpu_forward(&inf.model, &batch, false).unwrap().out.logits;
    let mut nll = 0.0;
    let mut hits = 0;
    for &r in rows {
        let lp = log_softmax(logits.row(r), &inf.allowed, 1.0);
        nll -= lp[truth[r] as usize];
        let best = (0..lp.len()).fold(0, |b, a| if lp[a] > lp[b] { a } else { b });
        hits += usize::from(best == truth[r] as usize);
    }
    (nll, hits)
}

#[test]
fn eval_feeds_a_time_conditioned_model_its_sigma() {
    let mut inf = cpu_infiller("mdlm_dit_timecond");
    assert!(inf.model.spec.time_conditioning);
    let text = "the cat sat on the mat .";
    let opts = EvalOptions {
        mask_rate: 0.3,
        seed: 5,
    };
    let report = block_on(evaluate(&mut inf, text, &opts)).unwrap();
    assert_eq!(report.chunks, 1, "the test recomputes a single chunk");

    let tok = inf.tokenizer().clone();
    let ids = tok.encode(text, false).unwrap();
    let (pre, suf) = frame(&tok, inf.model.spec.canvas).unwrap();
    let truth: Vec<u32> = pre.iter().chain(&ids).chain(&suf).copied().collect();
    let (n, off, seed) = (ids.len(), pre.len(), opts.seed);
    let mask = inf.model.mask_id().unwrap().unwrap();
    let sigma = |t: f64| Schedule::default().sigma(t) as f32;

    // the objective pass at the chunk's t
    let t = 1e-3 + (1.0 - 1e-3) * (unit(hash3(seed, 1, 0)) % 1.0);
    let rows: Vec<usize> = (0..n)
        .filter(|&i| unit(hash3(seed, 0, 2 * i as u64 + 1)) < t)
        .map(|i| off + i)
        .collect();
    assert!(!rows.is_empty());
    let mut canvas = truth.clone();
    rows.iter().for_each(|&r| canvas[r] = mask);
    let (nll, _) = score(&inf, &canvas, &truth, &rows, sigma(t));
    let want = nll / t;
    assert!(
        (report.nelbo_sum - want).abs() <= 1e-9 * want.abs(),
        "NELBO {} vs {want} recomputed with σ(t = {t})",
        report.nelbo_sum
    );
    // the same pass at σ = 0 gives another figure, so the comparison above can fail
    let (nll0, _) = score(&inf, &canvas, &truth, &rows, 0.0);
    assert!(
        (nll0 / t - want).abs() > 1e-6 * want.abs(),
        "σ makes no difference here"
    );

    // the accuracy pass at σ(mask rate)
    let m = ((opts.mask_rate * n as f64 + 0.5).floor() as usize).clamp(1, n);
    let mut order: Vec<(u64, usize)> = (0..n).map(|i| (hash3(seed, 0, 2 * i as u64), i)).collect();
    order.sort_unstable();
    let mut rows: Vec<usize> = order[..m].iter().map(|&(_, i)| off + i).collect();
    rows.sort_unstable();
    let mut canvas = truth.clone();
    rows.iter().for_each(|&r| canvas[r] = mask);
    let (ce, hits) = score(&inf, &canvas, &truth, &rows, sigma(opts.mask_rate));
    assert_eq!(report.masked, m);
    assert!((report.masked_ce - ce / m as f64).abs() <= 1e-9 * ce.abs());
    assert_eq!(report.accuracy, hits as f64 / m as f64);
}

/// A uniform-state model is scored by its own family: the objective pass replaces tokens with
/// hashed uniform noise at the chunk's t and sums the closed-form uniform NELBO over every
/// position. Recomputed here with the other written form of the bound (ddg's one-hot sum,
/// `uniform::nelbo_sum`) on the full log-softmax, through the forward contract.
#[test]
fn eval_scores_a_uniform_model_with_its_own_bound() {
    use unmask::diffusion::eval::noise_id;
    use unmask::diffusion::uniform::nelbo_sum;
    let mut inf = cpu_infiller("udlm");
    assert_eq!(inf.model.spec.family, unmask::model::Family::Uniform);
    let tok = inf.tokenizer().clone();
    let text = "the cat sat on the mat .";
    let opts = EvalOptions {
        mask_rate: 0.3,
        seed: 2,
    };
    let report = block_on(evaluate(&mut inf, text, &opts)).unwrap();
    assert_eq!(
        (report.chunks, report.family),
        (1, unmask::model::Family::Uniform)
    );
    let ids = tok.encode(text, false).unwrap();
    let (pre, suf) = frame(&tok, inf.model.spec.canvas).unwrap();
    let truth: Vec<u32> = pre.iter().chain(&ids).chain(&suf).copied().collect();
    let (n, off, seed, v) = (ids.len(), pre.len(), opts.seed, inf.model.spec.vocab_size);
    let t = 1e-3 + (1.0 - 1e-3) * (unit(hash3(seed, 1, 0)) % 1.0);
    let alpha = 1.0 - (1.0 - 1e-3) * t;
    let mut canvas = truth.clone();
    for i in 0..n {
        if unit(hash3(seed, 0, 2 * i as u64 + 1)) < 1.0 - alpha {
            canvas[off + i] = noise_id(seed, 0, 2 * i + 1, v);
        }
    }
    let mut batch = Batch::single(canvas.clone());
    batch.sigma = Some(vec![Schedule::default().sigma(t) as f32]);
    let logits = cpu_forward(&inf.model, &batch, false).unwrap().out.logits;
    let all = vec![true; v];
    let want: f64 = (off..off + n)
        .map(|r| {
            let lp = log_softmax(logits.row(r), &all, 1.0);
            nelbo_sum(&lp, truth[r], canvas[r], alpha, -(1.0 - 1e-3))
        })
        .sum();
    assert!(
        (report.nelbo_sum - want).abs() <= 1e-9 * want.abs().max(1.0),
        "uniform NELBO {} vs {want}",
        report.nelbo_sum
    );
    assert!(report.nelbo_per_token > 0.0 && report.accuracy.is_finite());
}

/// SEDD models are scored with their own bound: each token moves with probability 1 − e^{−σ(t)}
/// (to the mask, or for the uniform graph to a uniform id), and the chunk's loss is
/// Σ g(t)·score_entropy over the scored positions, recomputed here from the forward pass and the
/// functions `tests/family_math.rs` checks against SEDD's code. The accuracy pass predicts with
/// the final denoiser.
#[test]
fn eval_scores_sedd_models_with_the_score_entropy_bound() {
    use unmask::diffusion::eval::noise_id;
    use unmask::diffusion::reading::log_score_in_place;
    use unmask::diffusion::score::{of_spec, score_entropy_loss, Graph};
    for name in ["sedd_absorb", "sedd_uniform"] {
        let mut inf = cpu_infiller(name);
        let (graph, noise, scale) = of_spec(&inf.model.spec).expect("a score model");
        let tok = inf.tokenizer().clone();
        let text = "the cat sat on the mat .";
        let opts = EvalOptions {
            mask_rate: 0.3,
            seed: 3,
        };
        let report = block_on(evaluate(&mut inf, text, &opts)).unwrap();
        assert!(matches!(report.family, unmask::model::Family::Score { .. }));
        let ids = tok.encode(text, false).unwrap();
        let (pre, suf) = frame(&tok, inf.model.spec.canvas).unwrap();
        let truth: Vec<u32> = pre.iter().chain(&ids).chain(&suf).copied().collect();
        let (n, off, seed, v) = (ids.len(), pre.len(), opts.seed, inf.model.spec.vocab_size);
        let t = 1e-3 + (1.0 - 1e-3) * (unit(hash3(seed, 1, 0)) % 1.0);
        let sigma = noise.sigma(t);
        let mut canvas = truth.clone();
        for i in 0..n {
            if unit(hash3(seed, 0, 2 * i as u64 + 1)) < 1.0 - (-sigma).exp() {
                canvas[off + i] = match graph {
                    Graph::Absorb => (v - 1) as u32,
                    Graph::Uniform => noise_id(seed, 0, 2 * i + 1, v),
                };
            }
        }
        let mut batch = Batch::single(canvas.clone());
        batch.sigma = Some(vec![sigma as f32]);
        let logits = cpu_forward(&inf.model, &batch, false).unwrap().out.logits;
        let mut want = 0.0;
        for r in off..off + n {
            let mut row = logits.row(r).to_vec();
            log_score_in_place(&mut row, canvas[r], sigma as f32, scale);
            let ls: Vec<f64> = row.iter().map(|&x| x as f64).collect();
            want += score_entropy_loss(graph, noise, t, &ls, canvas[r], truth[r]);
        }
        assert!(want > 0.0, "{name}: the chunk moved no token at this seed");
        assert!(
            (report.nelbo_sum - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{name}: score-entropy bound {} vs {want}",
            report.nelbo_sum
        );
        assert!(report.nelbo_per_token > 0.0);
        assert!((0.0..=1.0).contains(&report.accuracy) && report.masked_ce > 0.0);
    }
}
