//! Tokenizers: each fixture's `tokenizer.json` reproduces the reference tokenisation recorded
//! in its `golden.json` (ids, type ids, decodes), and the real GPT-2 and BERT-uncased
//! tokenizers give their known ids and round-trip text.

mod common;

use common::fixture;
use unmask::text::Tokenizer;

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

#[test]
fn mask_tokens_resolve_per_architecture() {
    for (name, want) in [
        ("bert", 4),
        ("distilbert", 4),
        ("roberta", 399),
        ("modernbert", 419),
        ("llada", 299),
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
