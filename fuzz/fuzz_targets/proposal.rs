//! The sampler's proposal on adversarial logits (NaN, ±inf, ties, huge and tiny values) and
//! choices in the accepted ranges: a proposal of an allowed token, or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use unmask::diffusion::proposal::{draw, log_softmax, propose_row, sampling_distribution};
use unmask::diffusion::TokenChoice;

/// Values the fuzzer can reach with one byte besides raw f32 bits.
const SPECIAL: [f32; 12] = [
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::MAX,
    f32::MIN,
    f32::MIN_POSITIVE,
    -f32::MIN_POSITIVE,
    1e-45,
    0.0,
    -0.0,
    1.0,
    88.7,
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let (head, rest) = data.split_at(6);
    let temperature = match head[0] {
        0 => 0.0,
        t => f64::from(t) / 64.0 * 10f64.powi(i32::from(head[1] % 5) - 2),
    };
    let top_p = (f64::from(head[2]) + 1.0) / 256.0;
    let top_k = usize::from(head[3] % 8);
    let seed = u64::from(head[4]);
    let choice = TokenChoice {
        temperature,
        top_k,
        top_p,
    };
    // each logit: a tag byte (special value, or raw bits follow) and an allowed bit
    let mut logits = Vec::new();
    let mut allowed = Vec::new();
    let mut i = 0;
    while i < rest.len() && logits.len() < 4096 {
        let tag = rest[i];
        i += 1;
        allowed.push(tag & 0x80 == 0 || head[5] & 1 == 1);
        let tag = tag & 0x7f;
        if (tag as usize) < SPECIAL.len() {
            logits.push(SPECIAL[tag as usize]);
        } else if let Some(b) = rest.get(i..i + 4) {
            logits.push(f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            i += 4;
        } else {
            logits.push(f32::from(tag));
        }
    }
    if logits.is_empty() {
        return;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let lp = log_softmax(&logits, &allowed, 1.0);
    assert_eq!(lp.len(), logits.len());
    let dist = sampling_distribution(&logits, &allowed, &choice);
    for &(id, p) in &dist {
        assert!(
            allowed[id as usize],
            "suppressed token {id} in the distribution"
        );
        assert!(!p.is_nan(), "NaN probability for {id}");
    }
    if let Ok(id) = draw(&dist, &mut rng) {
        assert!(allowed[id as usize]);
    }
    if let Ok(p) = propose_row(&logits, &allowed, &choice, &mut rng) {
        assert!(
            allowed[p.token as usize],
            "proposed suppressed token {}",
            p.token
        );
        assert!(p.token < logits.len() as u32);
    }
});
