//! The embedded default model: it loads from the binary's own bytes and fills a template with
//! real tokens, keeping the known text.
// options are set one field at a time after the defaults, as a user of the library would
#![allow(clippy::field_reassign_with_default)]
#![cfg(feature = "default-model")]

use unmask::blocking::block_on;
use unmask::diffusion::{SamplerOptions, TraceEvent};

#[test]
fn embedded_model_fills_a_template() {
    let mut inf = unmask::engine::cpu_infiller(unmask::engine::default_model().unwrap()).unwrap();
    assert_eq!(inf.model.spec.arch.name(), "mdlm");
    let template = "Peter [MASK*2] ran into the [MASK] Forest.";
    let canvas = inf.canvas(template).unwrap();
    let mut o = SamplerOptions::default();
    o.seed = 7;
    let mut committed = 0;
    let r = block_on(inf.infill(template, &o, &mut |e| {
        if let TraceEvent::Step(s) = e {
            committed += s.committed.len();
        }
    }))
    .unwrap();
    assert_eq!(committed, 3);
    assert!(
        r.text.starts_with("Peter ") && r.text.ends_with(" Forest."),
        "{:?}",
        r.text
    );
    let tok = inf.tokenizer();
    let mask = inf.model.mask_id().unwrap().unwrap();
    for &h in &canvas.holes {
        let id = r.ids[h];
        assert_ne!(id, mask, "a hole is still masked");
        let text = tok.id_to_token(id).unwrap();
        assert!(
            !text.starts_with("<|"),
            "hole {h} holds the special token {text}"
        );
    }
    // the known text's tokens are untouched
    for (i, (&a, &b)) in r.ids.iter().zip(&canvas.ids).enumerate() {
        if !canvas.holes.contains(&i) {
            assert_eq!(a, b);
        }
    }
    // reproducible from the seed
    let again = block_on(inf.infill(template, &o, &mut |_| {})).unwrap();
    assert_eq!(again.text, r.text);
}
