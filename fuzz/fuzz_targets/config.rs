//! `config.json` reading and every architecture's builder on it (no weights): an error or a
//! model, never a panic or an absurd allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use unmask::model::config::Config;
use unmask::model::{Model, Weights};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = Config::parse("config.json", text) else {
        return;
    };
    for field in [
        "vocab_size",
        "hidden_size",
        "model_length",
        "n_blocks",
        "rope_theta",
    ] {
        let _ = cfg.dim(field);
        let _ = cfg.uint_opt(field);
        let _ = cfg.float(field);
        let _ = cfg.positive_or(field, 1.0);
        let _ = cfg.bool_or(field, false);
        let _ = cfg.str_or(field, "");
    }
    let _ = Model::from_parts(&cfg, &Weights::from_tensors(HashMap::new()), None);
});
