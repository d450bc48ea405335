//! Holes of unknown length (`[MASK*?]`, `[MASK*A-B]`) on the embedded default model: one fill
//! per length, each scored, the best returned exactly as the template with that length written
//! out would fill; the trace and the result carry every candidate; and on held-out text the true
//! length wins more often than chance.

#![cfg(feature = "default-model")]

use unmask::blocking::block_on;
use unmask::diffusion::lengths::rank_key;
use unmask::diffusion::spans::{evaluate, pick, SpanLength, SpanOptions};
use unmask::diffusion::{InfillOptions, TraceEvent};

fn default_engine() -> unmask::engine::Engine {
    unmask::engine::cpu_infiller(unmask::engine::default_model().unwrap()).unwrap()
}

#[test]
fn every_length_is_filled_scored_and_the_best_returned() {
    let mut inf = default_engine();
    let opts = InfillOptions::default().resolve(&inf.model).unwrap();
    let template = "Peter [MASK*1-3] ran into the [MASK] Forest.";
    let mut events = Vec::new();
    let r = block_on(inf.infill(template, &opts, &mut |e: &TraceEvent| {
        events.push(e.clone())
    }))
    .unwrap();
    let lengths: Vec<usize> = r.lengths.iter().map(|c| c.lengths[0]).collect();
    assert_eq!(lengths, [1, 2, 3]);
    let chosen: Vec<_> = r.lengths.iter().filter(|c| c.chosen).collect();
    assert_eq!(chosen.len(), 1);
    let best = chosen[0];
    for c in &r.lengths {
        assert!(c.nats.is_finite() && c.nats > 0.0, "{c:?}");
        // the fixed [MASK] is scored with the range's holes
        assert_eq!(c.tokens, c.lengths[0] + 1);
        assert!(rank_key(best) <= rank_key(c), "{best:?} ranked above {c:?}");
        // each candidate is the fill of its length written out, same options
        let written = template.replace("[MASK*1-3]", &format!("[MASK*{}]", c.lengths[0]));
        let alone = block_on(inf.infill(&written, &opts, &mut |_| {})).unwrap();
        assert_eq!(alone.text, c.text);
        assert_eq!(
            c.nfe,
            alone.nfe + c.tokens,
            "fill passes + one scoring pass per token"
        );
    }
    assert_eq!(r.text, best.text);
    assert_eq!(r.nfe, r.lengths.iter().map(|c| c.nfe).sum::<usize>());
    // the trace: the chosen fill's steps, then every candidate, then done
    let n = events.len();
    assert!(matches!(&events[n - 1], TraceEvent::Done(d) if d.text == r.text && d.nfe == r.nfe));
    assert!(matches!(&events[n - 2], TraceEvent::Lengths(l) if l.lengths == r.lengths));
    assert!(events[..n - 2]
        .iter()
        .all(|e| matches!(e, TraceEvent::Step(_))));
    assert_eq!(n - 2, r.steps);
    let json = events[n - 2].to_json();
    assert!(
        json.starts_with(r#"{"lengths":[{"lengths":[1],"text":"#),
        "{json}"
    );
}

#[test]
fn forcing_tokens_or_laying_out_a_range_is_refused_clearly() {
    let mut inf = default_engine();
    let mut opts = InfillOptions::default().resolve(&inf.model).unwrap();
    opts.forced = vec![(0, 5)];
    let e = block_on(inf.infill("A [MASK*?] day.", &opts, &mut |_| {})).unwrap_err();
    assert!(e.to_string().contains("unknown length"), "{e}");
    let e = inf.canvas("A [MASK*?] day.").unwrap_err();
    assert!(e.to_string().contains("unknown length"), "{e}");
    // a range past the context is the canvas's usual error, naming the context
    let opts = InfillOptions::default().resolve(&inf.model).unwrap();
    let e = block_on(inf.infill("A [MASK*120-130] day.", &opts, &mut |_| {})).unwrap_err();
    assert!(e.to_string().contains("context is 128"), "{e}");
}

/// The unknown-length figure on held-out text (tests/fixtures/heldout-sample.txt): two-word
/// spans whose length the sampler is not told, ranked by the bound.
#[test]
fn on_held_out_text_the_true_length_wins_more_often_than_chance() {
    let mut inf = default_engine();
    let text = include_str!("fixtures/heldout-sample.txt");
    let cases = pick(
        text,
        inf.tokenizer(),
        &SpanOptions {
            length: SpanLength::Words(2),
            count: 120,
            seed: 0,
            max_tokens: 126,
            lengths: Some((1, 8)),
            start: None,
        },
    )
    .unwrap();
    assert_eq!(cases.len(), 120);
    assert!(cases.iter().all(|c| c.template.contains("[MASK*1-8]")));
    let opts = InfillOptions::default().resolve(&inf.model).unwrap();
    let r = block_on(evaluate(
        &mut inf,
        &cases,
        &opts,
        SpanLength::Words(2),
        None,
        &mut |_, _| {},
    ))
    .unwrap();
    let (right, chance) = (r.length_right.unwrap(), r.length_chance.unwrap());
    println!(
        "true length wins {:.1}% of {} spans (chance {:.1}%, the most common length {:.1}%, \
         ranked by the total bound {:.1}%); word accuracy {:.1}%",
        100.0 * right,
        r.spans,
        100.0 * chance,
        100.0 * r.length_most_common.unwrap(),
        100.0 * r.length_right_by_total.unwrap(),
        100.0 * r.word_accuracy
    );
    assert!((chance - 0.125).abs() < 1e-12);
    assert!(right > chance, "{right} is not above chance {chance}");
}
