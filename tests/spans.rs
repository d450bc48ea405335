//! `unmask eval --spans` on the embedded default model: the cases are what the module says
//! (the span cut out of its sentence, its tokens as the hole holds them, the same for the same
//! seed), and the scoring counts a fill of the true tokens as right and a wrong token as wrong.

#![cfg(feature = "default-model")]

use unmask::blocking::block_on;
use unmask::diffusion::spans::{pick, score, sentences, SpanLength, SpanOptions};
use unmask::diffusion::InfillOptions;

fn default_engine() -> unmask::engine::Engine {
    unmask::engine::cpu_infiller(unmask::engine::default_model().unwrap()).unwrap()
}

const TEXT: &str = "Peter Rabbit ran as fast as he could go under the gate. The old gray goose \
sat by the pond all day long.\n\nReddy Fox crept along the edge of the Green Forest looking for \
a fat mouse. Tiny. The little girl was so tired that she began to cry softly.";

fn options(seed: u64) -> SpanOptions {
    SpanOptions {
        length: SpanLength::Words(2),
        count: 10,
        seed,
        max_tokens: 126,
        lengths: None,
        start: None,
    }
}

#[test]
fn cases_cut_a_span_out_of_each_eligible_sentence() {
    let inf = default_engine();
    let tok = inf.tokenizer();
    let cases = pick(TEXT, tok, &options(0)).unwrap();
    // "Tiny." is too short: four sentences are eligible
    assert_eq!(cases.len(), 4);
    let all = sentences(TEXT);
    for c in &cases {
        let n = c.truth_ids.len();
        let back = c.template.replace(&format!("[MASK*{n}]"), &c.truth);
        assert!(
            all.contains(&back),
            "{back:?} is not a sentence of the text"
        );
        assert_eq!(c.truth.split(' ').count(), 2);
        assert_eq!(
            c.truth_ids,
            tok.encode(&format!(" {}", c.truth), false).unwrap()
        );
    }
    assert_eq!(
        pick(TEXT, tok, &options(0)).unwrap(),
        cases,
        "same seed, same cases"
    );
    let spans = |seed| {
        pick(TEXT, tok, &options(seed))
            .unwrap()
            .into_iter()
            .map(|c| c.truth)
            .collect::<Vec<_>>()
    };
    assert!(
        (1..6).any(|s| spans(s) != spans(0)),
        "the seed never moves a span"
    );
}

#[test]
fn a_text_without_eligible_sentences_is_refused() {
    let inf = default_engine();
    let err = pick("Too short. Also short!", inf.tokenizer(), &options(0)).unwrap_err();
    assert!(err.to_string().contains("run of 2 plain words"), "{err}");
    // a span longer than any sentence (even one that would overflow) finds nothing
    let huge = SpanOptions {
        length: SpanLength::Words(usize::MAX),
        ..options(0)
    };
    assert!(pick(TEXT, inf.tokenizer(), &huge).is_err());
    let none = SpanOptions {
        count: 0,
        ..options(0)
    };
    let err = pick(TEXT, inf.tokenizer(), &none).unwrap_err();
    assert!(err.to_string().contains("at least 1"), "{err}");
}

#[test]
fn the_true_tokens_score_as_right_and_a_wrong_one_as_wrong() {
    let mut inf = default_engine();
    let cases = pick(TEXT, inf.tokenizer(), &options(3)).unwrap();
    for c in &cases {
        let canvas = inf.canvas(&c.template).unwrap();
        let mut opts = InfillOptions::default().resolve(&inf.model).unwrap();
        opts.forced = c.truth_ids.iter().copied().enumerate().collect();
        let r = block_on(inf.run(&canvas, &opts, &mut |_| {})).unwrap();
        let s = score(c, &canvas.holes, &r);
        assert!(s.exact, "{:?} filled as {:?}", c.truth, r.text);
        assert_eq!(s.tokens_right, c.truth_ids.len());
        assert_eq!((s.words_right, s.words), (2, 2));
        // the first token replaced by another word's: that token and the first word are wrong
        let other = inf.tokenizer().encode(" zebra", false).unwrap()[0];
        opts.forced[0].1 = other;
        let r = block_on(inf.run(&canvas, &opts, &mut |_| {})).unwrap();
        let s = score(c, &canvas.holes, &r);
        assert!(!s.exact);
        assert_eq!(s.tokens_right, c.truth_ids.len() - 1);
        assert!(s.words_right <= 1, "{:?} vs {:?}", r.text, c.truth);
    }
}

#[test]
fn a_sentence_holding_the_mask_text_is_refused_not_misscored() {
    use unmask::diffusion::spans::evaluate;
    let mut inf = default_engine();
    let text = "The old gray <|mask|> goose sat by the pond all day long.";
    let cases = pick(text, inf.tokenizer(), &options(0)).unwrap();
    let opts = InfillOptions::default().resolve(&inf.model).unwrap();
    let err = block_on(evaluate(
        &mut inf,
        &cases,
        &opts,
        SpanLength::Words(2),
        None,
        &mut |_, _| {},
    ))
    .unwrap_err();
    assert!(err.to_string().contains("mask text"), "{err}");
}

#[test]
fn token_length_spans_are_whole_words_of_exactly_that_many_tokens() {
    let inf = default_engine();
    let tok = inf.tokenizer();
    for n in 1..=4 {
        let opts = SpanOptions {
            length: SpanLength::Tokens(n),
            ..options(1)
        };
        let cases = pick(TEXT, tok, &opts).unwrap();
        assert!(!cases.is_empty());
        let all = sentences(TEXT);
        for c in &cases {
            assert_eq!(c.truth_ids.len(), n, "{:?}", c.truth);
            let back = c.template.replace(&format!("[MASK*{n}]"), &c.truth);
            assert!(all.contains(&back), "{back:?}");
        }
    }
}
