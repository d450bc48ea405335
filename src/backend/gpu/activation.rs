//! The activation code numbers of `shaders/shared/activation.wgsl`, written only here: the
//! dispatchers pass them as the `ACT` override constant and [`wgsl_constants`] names them for
//! the shader's `switch`, so the two sides cannot drift apart.

use crate::model::plan::Activation;

/// The WGSL name of every code, in code order.
const NAMES: [(&str, Option<Activation>); 4] = [
    ("ACT_NONE", None),
    ("ACT_GELU_ERF", Some(Activation::GeluErf)),
    ("ACT_GELU_TANH", Some(Activation::GeluTanh)),
    ("ACT_SILU", Some(Activation::Silu)),
];

/// The `ACT` override constant that applies `act` (`None`: the identity).
pub fn code(act: Option<Activation>) -> u32 {
    match act {
        None => 0,
        Some(Activation::GeluErf) => 1,
        Some(Activation::GeluTanh) => 2,
        Some(Activation::Silu) => 3,
    }
}

/// `const ACT_…: u32 = Nu;` for every code, prepended to `activation.wgsl`.
pub fn wgsl_constants() -> String {
    NAMES
        .iter()
        .map(|&(name, act)| format!("const {name}: u32 = {}u;\n", code(act)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_named_once() {
        let codes: Vec<u32> = NAMES.iter().map(|&(_, a)| code(a)).collect();
        assert_eq!(codes, [0, 1, 2, 3]);
        assert!(wgsl_constants().contains("const ACT_GELU_TANH: u32 = 2u;\n"));
    }
}
