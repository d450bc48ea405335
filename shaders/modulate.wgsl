// adaLN modulation of time-conditioned MDLM: x[r, :] = x[r, :] · (1 + scale) + shift, in place.
// (When σ is ignored the modulation is folded into the weights at load and this never runs.)
//
// x:   [rows, d] f32
// mod: [2, d] f32 — shift then scale

struct Params { rows: u32, d: u32, _p0: u32, _p1: u32 }

// threads per workgroup, set by the dispatcher (backend/gpu/mod.rs WG)
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> md: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let r = gid.y;
    if (c >= p.d || r >= p.rows) { return; }
    let o = r * p.d + c;
    x[o] = x[o] * (1.0 + md[p.d + c]) + md[c];
}
