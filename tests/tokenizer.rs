//! Tokenizers: each fixture's `tokenizer.json` reproduces the reference tokenisation recorded
//! in its `golden.json` (ids, type ids, decodes), and the real GPT-2 and BERT-uncased
//! tokenizers give their known ids and round-trip text.

mod common;

use common::fixture;
use unmask::text::canvas::BYTES_PER_TOKEN;
use unmask::text::template::{escape, MAX_TEMPLATE_BYTES};
use unmask::text::{Canvas, CanvasRule, Template, Tokenizer};

fn load(path: std::path::PathBuf) -> Tokenizer {
    Tokenizer::from_file(&path).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn bert_family_tokenisation_matches_golden() {
    for name in ["bert", "distilbert", "roberta", "modernbert"] {
        let tok = load(fixture(name).join("tokenizer.json"));
        let g: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(name).join("golden.json")).unwrap(),
        )
        .unwrap();
        let per_text = g["per_text"].as_array().unwrap();
        assert_eq!(per_text.len(), 3);
        for t in per_text {
            let texts: Vec<&str> = t["text"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
                .collect();
            let want = ids(&t["ids"]);
            let got = match texts.as_slice() {
                [a] => tok.encode(a, true).unwrap(),
                [a, b] => {
                    let (got, types) = tok.encode_pair(a, b, true).unwrap();
                    assert_eq!(types, ids(&t["type_ids"]), "{name}: type ids of {texts:?}");
                    got
                }
                _ => unreachable!(),
            };
            assert_eq!(got, want, "{name}: ids of {texts:?}");
            assert_eq!(
                tok.decode(&got, true).unwrap(),
                t["decoded_skip_special"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(
                tok.decode(&got, false).unwrap(),
                t["decoded_keep_special"].as_str().unwrap(),
                "{name}"
            );
        }
    }
}

/// Dream's Qwen-style tokenizer (split regex with lookahead, NFC, byte level, specials after
/// the BPE vocabulary) gives the ids, tokens and offsets `tokenizers` gave in Python.
#[test]
fn dream_tokenisation_matches_golden() {
    let tok = load(fixture("dream").join("tokenizer.json"));
    let g: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("dream").join("golden.json")).unwrap(),
    )
    .unwrap();
    let per_text = g["per_text"].as_array().unwrap();
    assert_eq!(per_text.len(), 4);
    for t in per_text {
        let text = t["text"].as_str().unwrap();
        let got = tok.encode(text, false).unwrap();
        assert_eq!(got, ids(&t["ids"]), "ids of {text:?}");
        // the post-processor adds nothing, as Qwen's
        assert_eq!(
            tok.encode(text, true).unwrap(),
            got,
            "{text:?} with specials"
        );
        assert_eq!(
            tok.decode(&got, false).unwrap(),
            t["decode"].as_str().unwrap()
        );
    }
    for (name, id) in g["special_token_ids"].as_object().unwrap() {
        assert_eq!(tok.token_to_id(name), Some(id.as_u64().unwrap() as u32));
    }
}

#[test]
fn mask_tokens_resolve_per_architecture() {
    for (name, want) in [
        ("bert", 4),
        ("distilbert", 4),
        ("roberta", 399),
        ("modernbert", 419),
        ("llada", 299),
        ("llada_gqa", 299),
        ("dream", 444),
        ("mdlm_dit", 97),
        ("mdlm_dit_timecond", 97),
    ] {
        let m = unmask::engine::load_model(&fixture(name)).unwrap();
        assert_eq!(m.mask_id().unwrap(), Some(want), "{name}");
    }
}

#[test]
fn byte_level_fixture_tokenizers_round_trip() {
    let mdlm = load(fixture("mdlm_dit").join("tokenizer.json"));
    let t = "the cat sat on the mat. the dog ran to the park.";
    let ids = mdlm.encode(t, false).unwrap();
    assert_eq!(ids[..4], [50, 61, 75, 78]);
    assert_eq!(mdlm.decode(&ids, false).unwrap(), t);
    assert_eq!(mdlm.token_to_id("<|endoftext|>"), Some(96));

    let llada = load(fixture("llada").join("tokenizer.json"));
    let t = "Café ☕ and the quick brown fox<|mdm_mask|><|endoftext|>";
    let ids = llada.encode(t, false).unwrap();
    assert_eq!(ids[ids.len() - 2..], [299, 295]);
    assert_eq!(llada.decode(&ids, false).unwrap(), t);
}

#[test]
fn real_gpt2_tokenizer() {
    let tok = load(fixture("tokenizers").join("gpt2-tokenizer.json"));
    assert_eq!(tok.vocab_size(), 50257);
    assert_eq!(tok.encode("Hello world", false).unwrap(), vec![15496, 995]);
    let t = "Café ☕ — naïve 日本語<|endoftext|>";
    let ids = tok.encode(t, false).unwrap();
    assert_eq!(
        ids,
        vec![34, 1878, 2634, 34719, 243, 851, 41492, 10545, 245, 98, 17312, 105, 45739, 252, 50256]
    );
    assert_eq!(tok.decode(&ids, false).unwrap(), t);
    // MDLM-OWT's mask (50257) is one past this vocabulary: the model adds it, not the tokenizer
    assert_eq!(tok.id_to_token(50257), None);
}

#[test]
fn real_bert_uncased_tokenizer() {
    let tok = load(fixture("tokenizers").join("bert-base-uncased-tokenizer.json"));
    assert_eq!(tok.token_to_id("[MASK]"), Some(103));
    let ids = tok
        .encode("The capital of France is [MASK].", true)
        .unwrap();
    assert_eq!(ids, vec![101, 1996, 3007, 1997, 2605, 2003, 103, 1012, 102]);
    assert_eq!(
        tok.decode(&ids, false).unwrap(),
        "[CLS] the capital of france is [MASK]. [SEP]"
    );
    let ids = tok.encode("Hello, world! Café", true).unwrap();
    assert_eq!(ids, vec![101, 7592, 1010, 2088, 999, 7668, 102]);
    assert_eq!(tok.decode(&ids, true).unwrap(), "hello, world! cafe");
}

/// The MDLM fixture's canvas for `template` under a context of `max_len`.
fn mdlm_canvas(template: &str, max_len: usize) -> Result<Canvas, String> {
    let tok = load(fixture("mdlm_dit").join("tokenizer.json"));
    let t = Template::parse(template, None).map_err(|e| e.to_string())?;
    Canvas::build(
        &t,
        &tok,
        CanvasRule::EosBothEnds,
        97,
        max_len,
        "model_length",
    )
    .map_err(|e| e.to_string())
}

#[test]
fn huge_templates_are_refused_by_size_before_tokenising() {
    // 20 MB: refused by the parser's fixed cap at once
    let huge = format!("{} [MASK]", "word ".repeat(4_000_000));
    let start = std::time::Instant::now();
    let e = mdlm_canvas(&huge, 1024).unwrap_err();
    assert!(
        e.contains("20000007 bytes") && e.contains(&MAX_TEMPLATE_BYTES.to_string()),
        "{e}"
    );
    // under the fixed cap but over the context's: refused by bytes, not tokenised
    let big = format!("{} [MASK]", "word ".repeat(100_000));
    let e = mdlm_canvas(&big, 1024).unwrap_err();
    assert!(
        e.contains("500001 bytes, more than the 65536 (64 a token)")
            && e.contains("context is 1024 tokens (config.json `model_length`)"),
        "{e}"
    );
    assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
    assert_eq!(BYTES_PER_TOKEN, 64);
}

#[test]
fn hole_counts_are_checked_against_the_context_before_allocating() {
    let e = mdlm_canvas("a [MASK*65536]", 32).unwrap_err();
    assert!(
        e.contains("asks for 65536 holes") && e.contains("context is 32"),
        "{e}"
    );
    let e = mdlm_canvas("a [MASK*99999999999999999999999]", 32).unwrap_err();
    assert!(e.contains("column 3") && e.contains("1 to 65536"), "{e}");
    let e = mdlm_canvas("[MASK*40000][MASK*40000]", 32).unwrap_err();
    assert!(
        e.contains("column 13") && e.contains("at most 65536 in all"),
        "{e}"
    );
    let e = mdlm_canvas(&"[MASK]".repeat(70_000), 32).unwrap_err();
    assert!(e.contains("at most 65536 in all"), "{e}");
    // the frame's two `<|endoftext|>` count: 30 holes fit a context of 32, 31 do not
    assert_eq!(mdlm_canvas("[MASK*30]", 32).unwrap().ids.len(), 32);
    let e = mdlm_canvas("[MASK*31]", 32).unwrap_err();
    assert!(
        e.contains("needs at least 33 tokens (31 holes and the model's 2 special tokens)"),
        "{e}"
    );
    // known text past the context: refused after tokenising only what it takes
    let e = mdlm_canvas(&format!("{} [MASK]", "the cat ".repeat(200)), 32).unwrap_err();
    assert!(e.contains("context is 32"), "{e}");
}

/// Known text with backslashes and brackets comes back byte for byte around the fills: the
/// template writes it through `template::escape` (or by hand, a lone `\` needing none).
#[test]
fn escaped_known_text_round_trips_through_the_canvas() {
    let tok = load(fixture("mdlm_dit").join("tokenizer.json"));
    let fill = tok.encode("t", false).unwrap()[0];
    for (a, b) in [
        (r"C:\dir\", r"\\srv\share"),
        ("see [1] and ]]", "[[x]] \\"),
        (r"\[MASK]", "<mask>"),
    ] {
        let template = format!("{}[MASK]{}", escape(a), escape(b));
        let canvas = mdlm_canvas(&template, 1024).unwrap();
        let mut ids = canvas.ids.clone();
        for &h in &canvas.holes {
            ids[h] = fill;
        }
        assert_eq!(
            canvas.text(&ids, &tok).unwrap(),
            format!("{a}t{b}"),
            "{template}"
        );
    }
    // by hand: a lone backslash is literal, but one right before `[MASK]` escapes it
    let e = mdlm_canvas(r"C:\Users\[MASK]", 1024).unwrap_err();
    assert!(e.contains("no holes"), "{e}");
    let canvas = mdlm_canvas(r"C:\Users\\[MASK]", 1024).unwrap();
    let mut ids = canvas.ids.clone();
    ids[canvas.holes[0]] = fill;
    assert_eq!(canvas.text(&ids, &tok).unwrap(), r"C:\Users\t");
}
