//! Infilling on the fixture models: the known text never changes (random templates,
//! strategies and seeds), exactly the holes are filled, each strategy's commit counts
//! follow its schedule, threshold decoding and the forward-skip cache save forward passes, runs
//! are reproducible from their seed, and bad templates give clear errors.

mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use unmask::blocking::block_on;
use unmask::diffusion::strategy::{remask_count, transfer_counts};
use unmask::diffusion::trace::StepEvent;
use unmask::diffusion::{InfillOptions, InfillResult, SamplerOptions, Strategy, TraceEvent};
use unmask::engine::Engine;
use unmask::text::canvas::Slot;

fn infiller(name: &str) -> Engine {
    common::cpu_infiller(name)
}

/// Fills `template`, returning the result and the step events.
fn run(inf: &mut Engine, template: &str, opts: &SamplerOptions) -> (InfillResult, Vec<StepEvent>) {
    let mut steps = Vec::new();
    let mut done = None;
    let r = block_on(inf.infill(template, opts, &mut |e| match e {
        TraceEvent::Step(s) => steps.push(s.clone()),
        TraceEvent::Done(d) => done = Some(d.clone()),
        TraceEvent::Lengths(l) => panic!("no hole of unknown length, yet {l:?}"),
        e @ (TraceEvent::Expand(_) | TraceEvent::Delete(_)) => {
            panic!("no hole of unknown length, yet {e:?}")
        }
    }))
    .unwrap_or_else(|e| panic!("{template:?}: {e}"));
    let d = done.expect("a done event");
    assert_eq!(
        (d.text.as_str(), d.steps, d.nfe),
        (r.text.as_str(), r.steps, r.nfe)
    );
    (r, steps)
}

/// The options `--strategy` gives: the samplers of the MDLM objective draw at temperature 1 on
/// its models, everything else is greedy.
fn opts(inf: &Engine, strategy: Strategy, steps: Option<usize>, seed: u64) -> SamplerOptions {
    let mut o = InfillOptions {
        strategy: Some(strategy),
        ..InfillOptions::default()
    }
    .resolve(&inf.model)
    .unwrap();
    o.steps = steps;
    o.seed = seed;
    o
}

/// The invariants every fill must keep.
fn check_fill(
    inf: &Engine,
    template: &str,
    r: &InfillResult,
    events: &[StepEvent],
    absorbing: bool,
) {
    let canvas = holes_filled_text_kept(inf, template, r);
    // the user's text comes back byte for byte, in order, around the fills
    let mut rest = r.text.as_str();
    for slot in &canvas.slots {
        if let Slot::Known { text } = slot {
            let at = rest
                .find(text.as_str())
                .unwrap_or_else(|| panic!("{template:?} → {:?}: lost {text:?}", r.text));
            rest = &rest[at + text.len()..];
        }
    }
    if let Some(Slot::Known { text }) = canvas.slots.first() {
        assert!(
            r.text.starts_with(text.as_str()),
            "{:?} does not start with {text:?}",
            r.text
        );
    }
    if let Some(Slot::Known { text }) = canvas.slots.last() {
        assert!(
            r.text.ends_with(text.as_str()),
            "{:?} does not end with {text:?}",
            r.text
        );
    }
    // the trace adds up
    let committed: usize = events.iter().map(|e| e.committed.len()).sum();
    let remasked: usize = events.iter().map(|e| e.remasked.len()).sum();
    assert_eq!(
        committed - remasked,
        canvas.holes.len(),
        "{template:?}: commits minus re-masks"
    );
    if absorbing {
        assert_eq!(committed, canvas.holes.len());
    }
    assert_eq!(events.last().unwrap().masked, 0);
    assert!(events
        .windows(2)
        .all(|w| w[0].nfe <= w[1].nfe && w[0].step < w[1].step));
    for e in events {
        for c in &e.committed {
            assert!(canvas.holes.contains(&c.pos) && (0.0..=1.0).contains(&c.p));
        }
    }
}

/// Known tokens and the frame unchanged; every hole filled with an allowed token. Returns the
/// template's canvas.
fn holes_filled_text_kept(inf: &Engine, template: &str, r: &InfillResult) -> unmask::text::Canvas {
    let canvas = inf.canvas(template).unwrap();
    for (i, (&got, &was)) in r.ids.iter().zip(&canvas.ids).enumerate() {
        if canvas.holes.contains(&i) {
            assert!(
                inf.allowed[got as usize],
                "{template:?}: hole {i} holds a suppressed token {got}"
            );
        } else {
            assert_eq!(
                got, was,
                "{template:?}: position {i} outside the holes changed"
            );
        }
    }
    canvas
}

const WORDS: &[&str] = &[
    "the", "cat", "sat", "on", "mat", "dog", "ran", "park", "to", "a", "quiet", "river",
];

/// A random template: 1–7 pieces of words, holes, `[[rewrites]]` and full stops, with at
/// least one hole.
fn random_template(rng: &mut ChaCha8Rng) -> String {
    let mut t = String::new();
    for _ in 0..rng.random_range(1..8) {
        let word = WORDS[rng.random_range(0..WORDS.len())];
        match rng.random_range(0..6) {
            0..=2 => t.push_str(&format!("{word} ")),
            3 => match rng.random_range(1usize..4) {
                1 => t.push_str("[MASK] "),
                n => t.push_str(&format!("[MASK*{n}] ")),
            },
            4 => t.push_str(&format!("[[{word}]] ")),
            _ => t.push_str(". "),
        }
    }
    if !t.contains("[MASK") && !t.contains("[[") {
        t.push_str("[MASK]");
    }
    t.trim_end().to_string()
}

/// 48 random cases (template × model × strategy × temperature × seed), each reproducible from
/// its case number, which a failure names.
#[test]
fn known_text_never_changes() {
    let models = ["mdlm_dit", "bert", "roberta", "llada"];
    let strategies = [
        Strategy::Ancestral,
        Strategy::FirstHitting,
        Strategy::TopProb,
        Strategy::Margin,
        Strategy::Entropy,
        Strategy::Threshold(0.5),
        Strategy::MaskPredict,
    ];
    let mut infillers: Vec<Engine> = models.iter().map(|m| infiller(m)).collect();
    for case in 0..48u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(case);
        let template = random_template(&mut rng);
        let inf = &mut infillers[rng.random_range(0..models.len())];
        let strategy = strategies[rng.random_range(0..strategies.len())];
        let mut o = opts(inf, strategy, None, rng.random_range(0..1000));
        o.choice.temperature = [0.0, 0.7, 1.0][rng.random_range(0..3)];
        eprintln!(
            "case {case}: {template:?}, {strategy}, T {}",
            o.choice.temperature
        );
        let (r, events) = run(inf, &template, &o);
        check_fill(inf, &template, &r, &events, strategy.is_absorbing());
    }
}

/// Dream (its own mask token, the shifted reading): random templates, strategies and seeds keep
/// the known text and fill every hole with an allowed token.
#[test]
fn dream_known_text_never_changes() {
    let strategies = [
        Strategy::Ancestral,
        Strategy::TopProb,
        Strategy::Margin,
        Strategy::Entropy,
        Strategy::Threshold(0.5),
        Strategy::MaskPredict,
    ];
    let mut inf = infiller("dream");
    for case in 100..116u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(case);
        let mut template = random_template(&mut rng);
        if case % 2 == 0 {
            // the model's own mask string is a hole too
            template.push_str(" and <|mask|><|mask|> again.");
        }
        let strategy = strategies[rng.random_range(0..strategies.len())];
        let mut o = opts(&inf, strategy, None, rng.random_range(0..1000));
        o.choice.temperature = [0.0, 0.7, 1.0][rng.random_range(0..3)];
        eprintln!(
            "case {case}: {template:?}, {strategy}, T {}",
            o.choice.temperature
        );
        let (r, events) = run(&mut inf, &template, &o);
        check_fill(&inf, &template, &r, &events, strategy.is_absorbing());
    }
}

/// Dream predicts position i from output row i − 1. A greedy one-hole fill therefore takes the
/// best allowed token of the row before the hole; on this template the hole's own row ranks
/// another token first, so a sampler reading the unshifted rows fails here.
#[test]
fn dream_fills_each_hole_from_the_row_before_it() {
    use unmask::backend::CpuDenoiser;
    use unmask::batch::Row;
    let mut inf = infiller("dream");
    let best = |row: &[f32], allowed: &[bool]| {
        (0..row.len())
            .filter(|&t| allowed[t])
            .fold(None, |b: Option<usize>, t| match b {
                Some(b) if row[b] >= row[t] => Some(b),
                _ => Some(t),
            })
            .unwrap() as u32
    };
    let mut checked = 0;
    for template in [
        "The cat sat on [MASK] mat, and it was quiet.",
        "A small bird <|mask|> the long road every morning.",
        "[MASK] old man walked across the bridge.",
    ] {
        let canvas = inf.canvas(template).unwrap();
        assert_eq!(canvas.holes.len(), 1);
        let hole = canvas.holes[0];
        assert!(hole >= 1, "the canvas starts with <|beginoftext|>");
        let all: Vec<usize> = (0..canvas.ids.len()).collect();
        let logits = CpuDenoiser::new(inf.model.plan().unwrap().clone())
            .logits_now(&Row::plain(&canvas.ids, 0.0), &all)
            .unwrap();
        let v = inf.model.spec.vocab_size;
        let row = |i: usize| &logits[i * v..(i + 1) * v];
        let (shifted, own) = (
            best(row(hole - 1), &inf.allowed),
            best(row(hole), &inf.allowed),
        );
        let mut o = opts(&inf, Strategy::TopProb, None, 0);
        o.choice.temperature = 0.0;
        let (r, _) = run(&mut inf, template, &o);
        assert_eq!(
            r.ids[hole], shifted,
            "{template:?}: the row before the hole"
        );
        checked += usize::from(shifted != own);
    }
    assert!(checked > 0, "no template tells the two readings apart");
}

#[test]
fn text_assembly_is_byte_exact() {
    // forced tokens make the fill known, so the whole output can be checked exactly
    let mut inf = infiller("bert");
    let the = inf
        .tokenizer()
        .token_to_id("the")
        .expect("fixture vocab has `the`");
    let mut o = opts(&inf, Strategy::TopProb, None, 0);
    o.forced = vec![(0, the)];
    let (r, _) = run(&mut inf, "The  Café [MASK] sat.", &o);
    assert_eq!(r.text, "The  Café the sat.");
    let (r, _) = run(&mut inf, "[MASK] sat.", &o);
    assert_eq!(r.text, "the sat.");
    // byte-level BPE: the hole's token carries the space the known text left to it
    let mut inf = infiller("roberta");
    let the = inf
        .tokenizer()
        .token_to_id("Ġthe")
        .expect("fixture vocab has `Ġthe`");
    let mut o = opts(&inf, Strategy::TopProb, None, 0);
    o.forced = vec![(0, the)];
    let c = inf.canvas("Over [MASK] river").unwrap();
    assert_eq!(
        inf.tokenizer()
            .decode(&c.ids[1..c.holes[0]], false)
            .unwrap(),
        "Over"
    );
    let (r, _) = run(&mut inf, "Over [MASK] river", &o);
    assert_eq!(r.text, "Over the river");
}

#[test]
fn commit_counts_follow_each_schedule() {
    let mut inf = infiller("bert");
    let t = "a [MASK*7] b [MASK*3] c";
    // LLaDA transfer counts, with and without semi-autoregressive blocks
    let (_, ev) = {
        let o = opts(&inf, Strategy::TopProb, Some(4), 1);
        run(&mut inf, t, &o)
    };
    assert_eq!(
        ev.iter().map(|e| e.committed.len()).collect::<Vec<_>>(),
        transfer_counts(10, 4)
    );
    let mut o = opts(&inf, Strategy::Margin, Some(4), 1);
    o.block_len = Some(5);
    let (_, ev) = run(&mut inf, t, &o);
    assert_eq!(
        ev.iter().map(|e| e.committed.len()).collect::<Vec<_>>(),
        vec![3, 2, 3, 2]
    );
    // the first block (holes 0..5) is finished before the second starts
    let holes = inf.canvas(t).unwrap().holes;
    for e in &ev[..2] {
        assert!(e.committed.iter().all(|c| holes[..5].contains(&c.pos)));
    }
    let mut o = opts(&inf, Strategy::Entropy, Some(3), 1);
    o.block_len = Some(5);
    let e = block_on(inf.infill(t, &o, &mut |_| {}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("3 steps cannot be split evenly over 2 blocks"),
        "{e}"
    );
    // first-hitting: one token per step, one forward each
    let (r, ev) = {
        let o = opts(&inf, Strategy::FirstHitting, None, 1);
        run(&mut inf, t, &o)
    };
    assert!(ev.iter().all(|e| e.committed.len() == 1));
    assert_eq!((r.steps, r.nfe), (10, 10));
    // ancestral: every hole once, the last step commits what is left
    let (r, ev) = {
        let o = opts(&inf, Strategy::Ancestral, Some(6), 1);
        run(&mut inf, t, &o)
    };
    assert_eq!(r.steps, 6);
    assert_eq!(ev.iter().map(|e| e.committed.len()).sum::<usize>(), 10);
    // threshold: at least one per step
    let (_, ev) = {
        let o = opts(&inf, Strategy::Threshold(0.99), None, 1);
        run(&mut inf, t, &o)
    };
    assert!(ev.iter().all(|e| !e.committed.is_empty()));
    // threshold with a step budget: done within it, each step at least its transfer count,
    // the most confident first
    for budget in [1, 3, 4, 10] {
        let o = opts(&inf, Strategy::Threshold(0.99), Some(budget), 1);
        let (r, ev) = run(&mut inf, t, &o);
        assert!(
            r.steps <= budget,
            "{} steps for a budget of {budget}",
            r.steps
        );
        let mut left = 10usize;
        for (i, e) in ev.iter().enumerate() {
            let floor = left.div_ceil(budget - i);
            assert!(e.committed.len() >= floor, "step {i}: {e:?}");
            left -= e.committed.len();
        }
        assert_eq!(left, 0);
    }
    // Mask-Predict: predict all, then re-mask ⌊N(1 − c/T)⌋ and re-predict those
    let (_, ev) = {
        let o = opts(&inf, Strategy::MaskPredict, Some(4), 1);
        run(&mut inf, t, &o)
    };
    assert_eq!(ev[0].committed.len(), 10);
    for (c, e) in ev.iter().enumerate().skip(1) {
        assert_eq!(e.remasked.len(), remask_count(10, c, 4));
        assert_eq!(e.committed.len(), e.remasked.len());
    }
}

#[test]
fn threshold_needs_fewer_forward_passes() {
    // The random fixture models are unconfident (top p ≈ 0.3–0.7), so τ = 0.3 here plays the
    // role τ = 0.9 plays on a trained model.
    let mut inf = infiller("bert");
    let t = "the [MASK*12] river .";
    let (one, _) = {
        let o = opts(&inf, Strategy::TopProb, None, 0);
        run(&mut inf, t, &o)
    };
    let (fast, _) = {
        let o = opts(&inf, Strategy::Threshold(0.3), None, 0);
        run(&mut inf, t, &o)
    };
    eprintln!(
        "one per step: {} NFE; threshold 0.3: {} NFE",
        one.nfe, fast.nfe
    );
    assert_eq!(one.nfe, 12);
    assert!(fast.nfe < one.nfe, "threshold {} vs {}", fast.nfe, one.nfe);
}

/// Entropy-bounded acceptance: each step commits the lowest-entropy run its bound allows, so
/// a loose bound needs fewer passes than a bound of 0, a bound of γ = ∞ commits every hole in
/// one pass, every step commits something, and a step budget is kept. (The rule itself is
/// tested on known entropies in `diffusion::strategy`.)
#[test]
fn entropy_bound_commits_by_its_rule() {
    let mut inf = infiller("bert");
    let t = "the [MASK*12] river .";
    let (tight, tight_ev) = {
        let o = opts(&inf, Strategy::EntropyBound(0.0), None, 0);
        run(&mut inf, t, &o)
    };
    let (loose, _) = {
        let o = opts(&inf, Strategy::EntropyBound(2.0), None, 0);
        run(&mut inf, t, &o)
    };
    let (all, _) = {
        let o = opts(&inf, Strategy::EntropyBound(f64::MAX), None, 0);
        run(&mut inf, t, &o)
    };
    eprintln!(
        "entropy bound 0: {} NFE, 2: {} NFE, inf: {} NFE",
        tight.nfe, loose.nfe, all.nfe
    );
    holes_filled_text_kept(&inf, t, &loose);
    assert!(tight_ev.iter().all(|e| !e.committed.is_empty()));
    assert!(loose.nfe < tight.nfe, "{} vs {}", loose.nfe, tight.nfe);
    assert_eq!(all.nfe, 1);
    let mut o = opts(&inf, Strategy::EntropyBound(0.0), Some(3), 0);
    o.seed = 0;
    let (_, ev) = run(&mut inf, t, &o);
    assert!(ev.len() <= 3, "a budget of 3 steps took {}", ev.len());
}

#[test]
fn forward_skip_cache_saves_passes_and_changes_nothing() {
    for model in ["mdlm_dit", "llada"] {
        let mut inf = infiller(model);
        let t = "the cat [MASK*5] on the [MASK*3] .";
        // many steps for few holes: most ancestral steps commit nothing
        let mut o = opts(&inf, Strategy::Ancestral, Some(64), 3);
        o.choice.temperature = 1.0;
        let (cached, _) = run(&mut inf, t, &o);
        o.cache = false;
        let (uncached, _) = run(&mut inf, t, &o);
        assert_eq!(
            cached.ids, uncached.ids,
            "{model}: the cache changed the output"
        );
        eprintln!(
            "{model}: {} NFE cached, {} uncached",
            cached.nfe, uncached.nfe
        );
        assert!(cached.nfe <= 8, "{model}: {} NFE for 8 holes", cached.nfe);
        assert!(
            uncached.nfe > 2 * cached.nfe,
            "{model}: {} vs {}",
            uncached.nfe,
            cached.nfe
        );
    }
    // time-conditioned models must not reuse a forward pass across times
    let mut inf = infiller("mdlm_dit_timecond");
    let o = opts(&inf, Strategy::Ancestral, Some(12), 3);
    let (r, ev) = run(&mut inf, "the [MASK*3] .", &o);
    let steps_with_holes = 1 + ev.windows(2).filter(|w| w[0].masked > 0).count();
    assert_eq!(r.nfe, steps_with_holes);
    assert!(r.nfe > 3);
}

#[test]
fn same_seed_same_output() {
    let mut inf = infiller("mdlm_dit");
    let t = "the [MASK*6] sat on the [MASK*2] .";
    let o = opts(&inf, Strategy::Ancestral, None, 42);
    let (a, _) = run(&mut inf, t, &o);
    let (b, _) = run(&mut inf, t, &o);
    assert_eq!(a.ids, b.ids);
    let outs: std::collections::HashSet<Vec<u32>> = (0..8)
        .map(|s| {
            {
                let o = opts(&inf, Strategy::Ancestral, None, s);
                run(&mut inf, t, &o)
            }
            .0
            .ids
        })
        .collect();
    assert!(
        outs.len() > 1,
        "different seeds should give different samples at temperature 1"
    );
}

#[test]
fn guidance_runs_two_passes_per_step() {
    let mut inf = infiller("llada");
    let mut o = opts(&inf, Strategy::TopProb, None, 0);
    let (plain, ev) = run(&mut inf, "the cat [MASK*3] on the mat", &o);
    o.cfg_scale = 1.5;
    let (guided, gev) = run(&mut inf, "the cat [MASK*3] on the mat", &o);
    assert_eq!(guided.nfe, 2 * plain.nfe);
    check_fill(&inf, "the cat [MASK*3] on the mat", &guided, &gev, true);
    check_fill(&inf, "the cat [MASK*3] on the mat", &plain, &ev, true);
}

#[test]
fn bad_templates_and_options() {
    let mut inf = infiller("mdlm_dit");
    let o = SamplerOptions::default();
    let mut err = |t: &str, o: &SamplerOptions| {
        block_on(inf.infill(t, o, &mut |_| {}))
            .unwrap_err()
            .to_string()
    };
    assert!(err("a [[b", &o).contains("column 3: `[[` is never closed"));
    assert!(err("a [MASK*0]", &o).contains("column 3"));
    assert!(err("no holes", &o).contains("no holes"));
    let e = err("the [MASK*40]", &o);
    assert!(
        e.contains("context is 32") && e.contains("model_length"),
        "{e}"
    );
    let mut bad = o.clone();
    bad.choice.temperature = -1.0;
    assert!(err("a [MASK]", &bad).contains("temperature"));
    let mut bad = o.clone();
    bad.forced = vec![(5, 1)];
    assert!(err("a [MASK]", &bad).contains("hole 5, but the template has 1 holes"));
    let mut bad = o.clone();
    bad.steps = Some(0);
    assert!(err("a [MASK]", &bad).contains("steps must be between 1 and 64"));
}

#[test]
fn model_mask_string_is_a_hole() {
    for (model, mask) in [
        ("roberta", "<mask>"),
        ("llada", "<|mdm_mask|>"),
        ("dream", "<|mask|>"),
        ("bert", "[MASK]"),
    ] {
        let inf = infiller(model);
        let c = inf.canvas(&format!("the cat {mask} on the mat")).unwrap();
        assert_eq!(c.holes.len(), 1, "{model}");
    }
}

#[test]
fn canvas_frames_per_model() {
    let frame = |m: &str| {
        let inf = infiller(m);
        let c = inf.canvas("the [MASK]").unwrap();
        let tok = inf.tokenizer();
        (
            tok.id_to_token(c.ids[0]).unwrap(),
            c.ids.last().and_then(|&i| tok.id_to_token(i)),
        )
    };
    assert_eq!(
        frame("mdlm_dit"),
        ("<|endoftext|>".into(), Some("<|endoftext|>".into()))
    );
    assert_eq!(frame("bert"), ("[CLS]".into(), Some("[SEP]".into())));
    assert_eq!(frame("roberta"), ("<s>".into(), Some("</s>".into())));
    assert_eq!(frame("modernbert"), ("[CLS]".into(), Some("[SEP]".into())));
    let (first, last) = frame("llada");
    assert_eq!(first, "<|startoftext|>");
    assert_ne!(last.as_deref(), Some("<|startoftext|>"));
    // Dream: its BOS first, so every hole has an output row before it; nothing at the end
    let (first, last) = frame("dream");
    assert_eq!(first, "<|beginoftext|>");
    assert_ne!(last.as_deref(), Some("<|beginoftext|>"));
    assert_ne!(last.as_deref(), Some("<|endoftext|>"));
}

/// A host that counts its pauses and stops the run once it has seen `stop_after` step events.
struct Stopper {
    steps: usize,
    pauses: usize,
    stop_after: usize,
}

impl unmask::diffusion::Host for Stopper {
    fn event(&mut self, e: &TraceEvent) {
        if matches!(e, TraceEvent::Step(_)) {
            self.steps += 1;
        }
    }

    async fn before_pass(&mut self) -> unmask::Result<()> {
        self.pauses += 1;
        if self.steps >= self.stop_after {
            return Err(unmask::Error::Aborted);
        }
        Ok(())
    }
}

#[test]
fn a_host_pauses_before_each_pass_and_can_stop_the_run() {
    let mut inf = infiller("mdlm_dit");
    let t = "the cat [MASK*5] on the mat";
    let o = opts(&inf, Strategy::TopProb, None, 3);
    let mut free = Stopper {
        steps: 0,
        pauses: 0,
        stop_after: usize::MAX,
    };
    let full = block_on(inf.infill_with(t, &o, &mut free)).unwrap();
    assert_eq!(free.pauses, 5, "one pause per step that proposes");
    let (plain, _) = run(&mut inf, t, &o);
    assert_eq!(full.ids, plain.ids, "pausing changes nothing");
    let mut stopper = Stopper {
        steps: 0,
        pauses: 0,
        stop_after: 2,
    };
    let e = block_on(inf.infill_with(t, &o, &mut stopper)).unwrap_err();
    assert!(matches!(e, unmask::Error::Aborted), "{e}");
    assert_eq!(stopper.steps, 2, "it stopped before the third pass");
}

#[test]
fn step_events_can_list_each_committed_positions_candidates() {
    let mut inf = infiller("mdlm_dit");
    let t = "the cat [MASK*5] on the mat";
    let mut o = opts(&inf, Strategy::Ancestral, None, 4);
    let (plain, plain_events) = run(&mut inf, t, &o);
    assert!(plain_events
        .iter()
        .all(|e| e.committed.iter().all(|c| c.top.is_empty())));
    o.candidates = 3;
    let (r, events) = run(&mut inf, t, &o);
    assert_eq!(r.ids, plain.ids, "listing candidates changes no draw");
    let mut commits = 0;
    for c in events.iter().flat_map(|e| &e.committed) {
        commits += 1;
        assert_eq!(c.top.len(), 3);
        assert!(c.top.windows(2).all(|w| w[0].p >= w[1].p));
        assert!(c.top.iter().map(|x| x.p).sum::<f64>() <= 1.0 + 1e-12);
        if let Some(x) = c.top.iter().find(|x| x.id == c.id) {
            assert_eq!(x.p, c.p, "the committed token's own probability");
        } else {
            assert!(
                c.p <= c.top[2].p,
                "a token outside the top 3 is less likely than them"
            );
        }
    }
    assert_eq!(commits, 5);
}

#[test]
fn step_events_can_list_what_the_still_masked_positions_would_be() {
    let mut inf = infiller("bert");
    let t = "the cat [MASK*5] on the mat";
    let mut o = opts(&inf, Strategy::TopProb, None, 4);
    o.candidates = 4;
    let (plain, plain_events) = run(&mut inf, t, &o);
    assert!(plain_events.iter().all(|e| e.pending.is_empty()));
    o.pending = true;
    let (r, events) = run(&mut inf, t, &o);
    assert_eq!(
        r.ids, plain.ids,
        "listing pending candidates changes no draw"
    );
    let mut still: Vec<usize> = inf.canvas(t).unwrap().holes;
    for e in &events {
        let committed: Vec<usize> = e.committed.iter().map(|c| c.pos).collect();
        let before = std::mem::take(&mut still);
        still = before
            .iter()
            .copied()
            .filter(|p| !committed.contains(p))
            .collect();
        // top-prob predicts every masked position at each step: the rest are all pending
        let pending: Vec<usize> = e.pending.iter().map(|p| p.pos).collect();
        assert_eq!(pending, still, "step {}", e.step);
        for p in &e.pending {
            assert_eq!(p.top.len(), 4);
            assert!(p.top.windows(2).all(|w| w[0].p >= w[1].p));
        }
    }
    assert!(still.is_empty());
}

#[test]
fn a_layout_gives_the_known_text_verbatim_and_every_hole_position_once() {
    use unmask::text::canvas::LayoutSlot;
    let inf = infiller("bert");
    let t = "The  cat [MASK*3] sat, [[very quietly]] on the mat.";
    let c = inf.canvas(t).unwrap();
    let layout = c.layout();
    assert_eq!(layout.tokens, c.ids.len());
    let mut known = String::new();
    let mut positions = Vec::new();
    for slot in &layout.slots {
        match slot {
            LayoutSlot::Known { known: k } => known.push_str(k),
            LayoutSlot::Hole { hole, .. } => positions.extend(hole[0]..hole[1]),
        }
    }
    assert_eq!(known, "The  cat  sat,  on the mat.");
    assert_eq!(positions, c.holes);
    assert!(matches!(
        &layout.slots[3],
        LayoutSlot::Hole { original: Some(w), after_space: true, .. } if w == "very quietly"
    ));
    let json = serde_json::to_string(&layout.slots[1]).unwrap();
    assert!(json.starts_with("{\"hole\":["), "{json}");
    assert!(json.contains("\"afterSpace\":true"), "{json}");
}

/// Uniform-state sampling (`uniform`, `psi`) on the time-conditioned MDLM fixture read as a
/// uniform-state model: the known text never changes, every hole ends on an allowed token, the
/// holes start as tokens (step 0 writes each one, from the words for `[[words]]`), nothing is
/// ever masked, the run is reproducible from its seed, and the greedy tail costs one pass.
#[test]
fn uniform_state_sampling_keeps_the_text_and_revises_holes() {
    let mut inf = infiller("mdlm_dit_timecond");
    inf.model.spec.family = unmask::model::Family::Uniform;
    for case in 0..16u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(500 + case);
        let template = random_template(&mut rng);
        let strategy = [Strategy::Uniform, Strategy::Psi(0.5)][case as usize % 2];
        let steps = [None, Some(3), Some(7)][case as usize % 3];
        let o = opts(&inf, strategy, steps, case);
        let (r, events) = run(&mut inf, &template, &o);
        let canvas = holes_filled_text_kept(&inf, &template, &r);
        let holes = canvas.holes.len();
        // step 0 writes every hole; a rewrite starts from its own words
        assert_eq!(events[0].step, 0);
        assert_eq!(events[0].committed.len(), holes, "{template:?}");
        for &(pos, id) in &canvas.rewrite {
            let c = events[0].committed.iter().find(|c| c.pos == pos).unwrap();
            assert_eq!(c.id, id, "{template:?}: rewrite at {pos}");
        }
        assert!(events
            .iter()
            .all(|e| e.masked == 0 && e.remasked.is_empty()));
        let n = steps.unwrap_or(holes).max(1);
        assert_eq!((r.steps, r.nfe), (n + 1, n + 1), "{template:?}");
        // the same seed gives the same fill and the same trace
        let (again, events_again) = run(&mut inf, &template, &o);
        assert_eq!((r.ids, events), (again.ids, events_again));
    }
}

/// A uniform-state strategy on a masked model (and the reverse) is refused, naming the
/// strategies that fit.
#[test]
fn strategies_are_refused_on_the_wrong_family() {
    let mut inf = infiller("mdlm_dit");
    let o = opts(&inf, Strategy::Uniform, None, 0);
    let e = block_on(inf.infill("a [MASK] b", &o, &mut |_| {})).unwrap_err();
    assert!(e.to_string().contains("masked (absorbing-state)"), "{e}");
    assert!(
        e.to_string().contains("top-prob") && e.to_string().contains("remdm"),
        "{e}"
    );
    inf.model.spec.family = unmask::model::Family::Uniform;
    let o = opts(&inf, Strategy::TopProb, None, 0);
    let e = block_on(inf.infill("a [MASK] b", &o, &mut |_| {})).unwrap_err();
    assert!(
        e.to_string().contains("uniform-state") && e.to_string().contains("psi"),
        "{e}"
    );
    // the default strategy of a uniform-state model is `uniform`
    let o = InfillOptions::default().resolve(&inf.model).unwrap();
    assert_eq!((o.strategy, o.choice.temperature), (Strategy::Uniform, 1.0));
}

/// ReMDM on masked models: committed tokens may be re-masked and filled again, the known text
/// never changes, and every hole ends filled (commits minus re-masks is the hole count).
#[test]
fn remdm_revises_and_finishes() {
    let mut remasks = 0;
    for (name, case) in [
        ("mdlm_dit", 0u64),
        ("llada", 1),
        ("mdlm_dit", 2),
        ("llada", 3),
    ] {
        let mut inf = infiller(name);
        let template = "the cat [MASK*6] on the [MASK*3] mat [[quiet river]] .";
        let o = opts(&inf, Strategy::Remdm(0.5), Some(12), case);
        let (r, events) = run(&mut inf, template, &o);
        check_fill(&inf, template, &r, &events, false);
        remasks += events.iter().map(|e| e.remasked.len()).sum::<usize>();
    }
    assert!(remasks > 0, "η = 0.5 over 12 steps re-masks something");
}

/// SEDD's Euler and analytic samplers on both graphs: the known text never changes, every hole
/// ends on an allowed token (absorb: none left masked), one pass per step plus the denoiser,
/// reproducible from the seed; on the log-linear absorb graph the two steps coincide
/// (e^{Δσ} − 1 = dt·g(t)), so their fills are equal.
#[test]
fn sedd_samplers_fill_and_keep_the_text() {
    let template = "the cat [MASK*3] on the mat [MASK] .";
    let mut fills = Vec::new();
    for name in ["sedd_uniform", "sedd_absorb"] {
        let mut inf = infiller(name);
        for strategy in [Strategy::SeddEuler, Strategy::SeddAnalytic] {
            let o = opts(&inf, strategy, Some(5), 3);
            let (r, events) = run(&mut inf, template, &o);
            holes_filled_text_kept(&inf, template, &r);
            assert_eq!(events.last().unwrap().masked, 0, "{name} {strategy}");
            assert_eq!(r.nfe, 6, "{name} {strategy}: 5 steps and the denoiser");
            let (again, _) = run(&mut inf, template, &o);
            assert_eq!(r.ids, again.ids);
            fills.push(r.ids);
        }
    }
    assert_eq!(fills[2], fills[3], "absorb: Euler and analytic coincide");
}

/// Holes of unknown length on a uniform-state model: each length is filled and ranked (the
/// passes corrupt with uniform noise, not a mask the model never saw), the text is kept, and a
/// SEDD model refuses them with the reason.
#[test]
fn unknown_lengths_on_other_families() {
    let mut inf = infiller("udlm");
    let o = opts(&inf, Strategy::Uniform, None, 1);
    let mut lengths = None;
    let r = block_on(inf.infill("the cat [MASK*1-3] on the mat .", &o, &mut |e| {
        if let TraceEvent::Lengths(l) = e {
            lengths = Some(l.clone());
        }
    }))
    .unwrap();
    assert!(
        r.text.starts_with("the cat ") && r.text.ends_with(" on the mat ."),
        "{}",
        r.text
    );
    assert_eq!(lengths.expect("a lengths event").lengths.len(), 3);
    let mut sedd = infiller("sedd_uniform");
    let o = opts(&sedd, Strategy::SeddAnalytic, None, 1);
    let e = block_on(sedd.infill("the cat [MASK*1-3] on the mat .", &o, &mut |_| {})).unwrap_err();
    assert!(e.to_string().contains("SEDD"), "{e}");
}

/// Block diffusion (Qwen3 A2D set to BD3LM's blocks): the holes are filled one block of
/// positions at a time, left to right, each finished before the next begins, whatever their
/// confidence; the known text never changes. A step count splits over the model's blocks, a
/// block length of the caller's is refused with the reason.
#[test]
fn block_diffusion_fills_the_models_blocks_in_order() {
    let mut model = common::model("a2d_qwen3");
    model.set_attention(Some(4)).unwrap();
    let mut inf = unmask::engine::cpu_infiller(model).unwrap();
    let t = "The cat[MASK*3] on the mat,[MASK*6] quiet.";
    let canvas = inf.canvas(t).unwrap();
    let o = opts(&inf, Strategy::TopProb, None, 1);
    assert_eq!(o.position_blocks, Some(4));
    let (r, ev) = run(&mut inf, t, &o);
    holes_filled_text_kept(&inf, t, &r);
    let block_of = |p: usize| p / 4;
    let mut done_before = 0;
    for e in &ev {
        for c in &e.committed {
            assert!(
                block_of(c.pos) >= done_before,
                "{} before block {done_before}",
                c.pos
            );
        }
        // every hole of the blocks before this step's is filled
        let b = e.committed.iter().map(|c| block_of(c.pos)).min().unwrap();
        let filled: Vec<usize> = ev
            .iter()
            .take_while(|x| !std::ptr::eq(*x, e))
            .flat_map(|x| x.committed.iter().map(|c| c.pos))
            .collect();
        for &h in canvas.holes.iter().filter(|&&h| block_of(h) < b) {
            assert!(filled.contains(&h), "hole {h} open while block {b} fills");
        }
        done_before = b;
    }
    let blocks: std::collections::BTreeSet<usize> =
        canvas.holes.iter().map(|&h| block_of(h)).collect();
    let mut o = opts(&inf, Strategy::TopProb, Some(blocks.len() + 1), 1);
    o.steps = Some(blocks.len() + 1);
    let e = block_on(inf.infill(t, &o, &mut |_| {}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("the model's blocks of 4 positions"), "{e}");
    let e = InfillOptions {
        block_length: Some(2),
        ..InfillOptions::default()
    }
    .resolve(&inf.model)
    .unwrap_err()
    .to_string();
    assert!(e.contains("fills its own blocks of 4 positions"), "{e}");
}

/// Block diffusion's step events name the block of positions they decode (`block`: the model's
/// blocks of 4 from position 0, the last cut at the canvas's end), left to right, and every
/// token a step commits lies in it; the same fill on full attention has no `block`, and the
/// field is left out of its JSON.
#[test]
fn block_diffusion_step_events_name_their_block() {
    use unmask::diffusion::trace::BlockSpan;
    let mut model = common::model("a2d_qwen3");
    model.set_attention(Some(4)).unwrap();
    let mut inf = unmask::engine::cpu_infiller(model).unwrap();
    let t = "The cat[MASK*3] on the mat,[MASK*6] quiet[MASK].";
    let canvas = inf.canvas(t).unwrap();
    let len = canvas.ids.len();
    let o = opts(&inf, Strategy::TopProb, None, 1);
    let (_, ev) = run(&mut inf, t, &o);
    let mut last = 0;
    for e in &ev {
        let b = e.block.expect("a block on every step of block diffusion");
        assert_eq!(b.start % 4, 0, "{b:?}");
        assert_eq!(b.end, (b.start + 4).min(len), "{b:?}");
        assert!(
            b.start >= last,
            "blocks go left to right: {b:?} after {last}"
        );
        last = b.start;
        for c in &e.committed {
            assert!(b.start <= c.pos && c.pos < b.end, "{} outside {b:?}", c.pos);
        }
        let json = serde_json::to_value(e).unwrap();
        assert_eq!(
            json["block"],
            serde_json::json!({"start": b.start, "end": b.end})
        );
    }
    // every block that holds a hole is decoded, each once, in order
    let mut want: Vec<usize> = canvas.holes.iter().map(|&h| h / 4 * 4).collect();
    want.dedup();
    let mut got: Vec<usize> = ev.iter().map(|e| e.block.unwrap().start).collect();
    got.dedup();
    assert_eq!(got, want);
    assert_eq!(
        ev.last().unwrap().block,
        Some(BlockSpan {
            start: want[want.len() - 1],
            end: (want[want.len() - 1] + 4).min(len)
        })
    );

    let mut full = common::model("a2d_qwen3");
    full.set_attention(None).unwrap();
    let mut inf = unmask::engine::cpu_infiller(full).unwrap();
    let o = opts(&inf, Strategy::TopProb, None, 1);
    let (_, ev) = run(&mut inf, t, &o);
    assert!(ev.iter().all(|e| e.block.is_none()));
    assert!(serde_json::to_value(&ev[0]).unwrap().get("block").is_none());
}

/// FLOPs the CPU denoiser has run so far.
fn flops(inf: &Engine) -> f64 {
    match &inf.denoiser {
        unmask::engine::AnyDenoiser::Cpu(d) => d.flops,
        #[allow(unreachable_patterns)]
        _ => panic!("a CPU engine"),
    }
}

/// Block diffusion keeps its finished blocks' keys and values, so each step after a block's
/// first computes only that block: the fill is exactly the one without the cache (no block
/// sees a later one), for fewer FLOPs.
#[test]
fn block_diffusion_cache_is_exact_and_cheaper() {
    let mut model = common::model("a2d_qwen3");
    model.set_attention(Some(4)).unwrap();
    let mut inf = unmask::engine::cpu_infiller(model).unwrap();
    let t = "The cat[MASK*3] on the mat,[MASK*6] quiet.";
    let o = opts(&inf, Strategy::TopProb, None, 1);
    assert!(o.dual_cache, "block diffusion caches by default");
    let f0 = flops(&inf);
    let (cached, cached_ev) = run(&mut inf, t, &o);
    let f1 = flops(&inf);
    let mut plain = o.clone();
    plain.dual_cache = false;
    let (full, full_ev) = run(&mut inf, t, &plain);
    let f2 = flops(&inf);
    assert_eq!(cached.text, full.text);
    assert_eq!(cached.nfe, full.nfe);
    for (a, b) in cached_ev.iter().zip(&full_ev) {
        let (pa, pb): (Vec<_>, Vec<_>) = (
            a.committed.iter().map(|c| (c.pos, c.id)).collect(),
            b.committed.iter().map(|c| (c.pos, c.id)).collect(),
        );
        assert_eq!(pa, pb, "step {}", a.step);
    }
    eprintln!(
        "block diffusion: {:.3e} FLOPs cached, {:.3e} without",
        f1 - f0,
        f2 - f1
    );
    assert!(f1 - f0 < 0.8 * (f2 - f1), "{} v {}", f1 - f0, f2 - f1);
}

/// DualCache on the models it serves: the text is kept and every hole filled, the block's
/// first pass is the full pass (its commits are those of a run without the cache), and later
/// passes cost fewer FLOPs. Where the fill departs from the uncached one is the approximation
/// DualCache makes (measured in docs/quality.md, not asserted).
#[test]
fn dual_cache_fills_for_fewer_flops() {
    for name in ["llada", "dream", "a2d_qwen3"] {
        let mut inf = infiller(name);
        let t = "The cat sat on the [MASK*8] and then it was quiet again.";
        let mut o = opts(&inf, Strategy::TopProb, None, 3);
        o.block_len = Some(4);
        let mut cached_o = o.clone();
        cached_o.dual_cache = true;
        let f0 = flops(&inf);
        let (cached, cached_ev) = run(&mut inf, t, &cached_o);
        let f1 = flops(&inf);
        let (full, full_ev) = run(&mut inf, t, &o);
        let f2 = flops(&inf);
        holes_filled_text_kept(&inf, t, &cached);
        assert_eq!(
            cached_ev[0]
                .committed
                .iter()
                .map(|c| c.id)
                .collect::<Vec<_>>(),
            full_ev[0]
                .committed
                .iter()
                .map(|c| c.id)
                .collect::<Vec<_>>(),
            "{name}: the first pass is the full one"
        );
        let same = cached
            .ids
            .iter()
            .zip(&full.ids)
            .filter(|(a, b)| a == b)
            .count();
        eprintln!(
            "{name}: {:.3e} FLOPs with DualCache, {:.3e} without; {same}/{} tokens agree",
            f1 - f0,
            f2 - f1,
            full.ids.len()
        );
        assert!(f1 - f0 < f2 - f1, "{name}: {} v {}", f1 - f0, f2 - f1);
    }
}
