//! The template parser and the canvas builder (the MDLM fixture's byte-level tokenizer):
//! never a panic, and the known text comes back byte for byte around the fills.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use unmask::text::template::{escape, Piece};
use unmask::text::{Canvas, CanvasRule, Template, Tokenizer};

const TOKENIZER: &[u8] = include_bytes!("../../tests/fixtures/mdlm_dit/tokenizer.json");
/// The fixture's mask id (vocab_size − 1).
const MASK: u32 = 97;

fn tok() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| Tokenizer::from_bytes("tokenizer.json", TOKENIZER).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    // escaped text parses back to itself
    if !src.is_empty() {
        let t = Template::parse(&format!("{}[MASK]", escape(src)), None).unwrap();
        assert_eq!(t.pieces[0], Piece::Text(src.to_string()), "escape({src:?})");
        assert_eq!(t.pieces[1], Piece::Holes(1));
    }
    let Ok(template) = Template::parse(src, Some("<mask>")) else {
        return;
    };
    let tok = tok();
    let build =
        |t: &Template| Canvas::build(t, tok, CanvasRule::EosBothEnds, MASK, 512, "model_length");
    // holes of unknown length have no single canvas: refused, then laid out at their shortest
    let ranges = template.ranges();
    let template = if ranges.is_empty() {
        template
    } else {
        assert!(build(&template).is_err(), "a canvas for {src:?}");
        let lengths: Vec<usize> = ranges.iter().map(|r| r.0).collect();
        template.with_lengths(&lengths)
    };
    let Ok(canvas) = build(&template) else {
        return;
    };
    // every hole filled with `x`: the text is the known pieces verbatim, `x` per hole token
    let x = tok.encode("x", false).unwrap()[0];
    let mut ids = canvas.ids.clone();
    for &h in &canvas.holes {
        ids[h] = x;
    }
    let mut want = String::new();
    let mut k = 0;
    for p in &template.pieces {
        match p {
            Piece::Text(t) => want.push_str(t),
            Piece::Holes(_) | Piece::Rewrite(_) => {
                let unmask::text::canvas::Slot::Hole { range, .. } = &canvas.slots[k] else {
                    panic!("slot {k} is not a hole");
                };
                want.push_str(&"x".repeat(range.len()));
            }
            Piece::Range { .. } => unreachable!("every range was given its length above"),
        }
        k += 1;
    }
    assert_eq!(canvas.text(&ids, tok).unwrap(), want, "template {src:?}");
});
