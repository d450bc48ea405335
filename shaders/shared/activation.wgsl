// Shared activation epilogue, so the matmul epilogue and the GLU gate apply bit-for-bit the same
// functions. Provides the override constant ACT (which activation a pipeline applies),
// erf_approx(v) and activate(v).
//
// The ACT_NONE / ACT_GELU_ERF / ACT_GELU_TANH / ACT_SILU constants are not written here: they are
// prepended from src/backend/gpu/activation.rs, which also picks ACT, so the code numbers exist in
// one place only. Anything else (ACT_NONE included) leaves v unchanged.

override ACT: u32 = ACT_NONE;

fn erf_approx(v: f32) -> f32 {
    // Abramowitz–Stegun 7.1.26 is too coarse (1.5e-7 abs but on the f32 edge); use the
    // W. J. Cody-style rational form via exp, accurate to ~1e-7.
    let s = sign(v);
    let a = abs(v);
    let t = 1.0 / (1.0 + 0.5 * a);
    let y = 1.0 - t * exp(-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
        t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
        t * (-0.82215223 + t * 0.17087277)))))))));
    return s * y;
}

fn activate(v: f32) -> f32 {
    switch ACT {
        case ACT_GELU_ERF: { return 0.5 * v * (1.0 + erf_approx(v * 0.70710678118654752)); }
        case ACT_GELU_TANH: {
            // tanh(u) = 2σ(2u) − 1, so 0.5·v·(1 + tanh u) = v·σ(2u): one exp, no tanh
            let u = 0.7978845608 * (v + 0.044715 * v * v * v);
            return v / (1.0 + exp(-2.0 * u));
        }
        case ACT_SILU: { return v / (1.0 + exp(-v)); }
        default: { return v; }
    }
}
