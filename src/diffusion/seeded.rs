//! Seeded choices that another implementation can repeat: the hashes that pick `eval`'s masks,
//! `eval --spans`' sentences and spans, and the hole orders of the length bound. No RNG
//! stream is involved, so a choice depends only on its seed and indices, on every platform.

/// One step of SplitMix64 (Steele, Lea and Flood), the mixing function of the eval masks.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Three rounds of SplitMix64 over a seed and two indices.
pub fn hash3(seed: u64, a: u64, b: u64) -> u64 {
    splitmix64(splitmix64(splitmix64(seed) ^ a) ^ b)
}

/// A hash as a number in [0, 1).
pub fn unit(h: u64) -> f64 {
    h as f64 / 18_446_744_073_709_551_616.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_values() {
        // the first outputs of SplitMix64 seeded with 0, as in the reference implementation
        let mut state = 0u64;
        let mut next = || {
            let out = splitmix64(state);
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            out
        };
        assert_eq!(next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(next(), 0x6E78_9E6A_A1B9_65F4);
    }
}
