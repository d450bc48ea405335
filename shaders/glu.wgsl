// Gated linear unit: y[r, i] = act(u[r, i]) · u[r, inner + i] (GeGLU, SwiGLU).
//
// u: [rows, 2·inner] f32
// y: [rows, inner] f32

// 1 GELU erf, 2 GELU tanh, 3 SiLU
override ACT: u32 = 3u;

struct Params { rows: u32, inner: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<storage, read> u: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn erf_approx(v: f32) -> f32 {
    let s = sign(v);
    let a = abs(v);
    let t = 1.0 / (1.0 + 0.5 * a);
    let e = t * exp(-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
        t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
        t * (-0.82215223 + t * 0.17087277)))))))));
    return s * (1.0 - e);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let r = gid.y;
    if (i >= p.inner || r >= p.rows) { return; }
    let a = u[r * 2u * p.inner + i];
    let g = u[r * 2u * p.inner + p.inner + i];
    var act = a;
    switch ACT {
        case 1u: { act = 0.5 * a * (1.0 + erf_approx(a * 0.70710678118654752)); }
        case 2u: { act = a / (1.0 + exp(-2.0 * 0.7978845608 * (a + 0.044715 * a * a * a))); }
        default: { act = a / (1.0 + exp(-a)); }
    }
    y[r * p.inner + i] = act * g;
}
