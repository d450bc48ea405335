// y[r, :] = x[rows[r], :] — the hidden states of the masked rows, for the head.
//
// x:    [L, d] f32
// rows: [R] u32
// y:    [R, d] f32

struct Params { count: u32, d: u32, _p0: u32, _p1: u32 }

// threads per workgroup, set by the dispatcher (backend/gpu/mod.rs WG)
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> rows: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let r = gid.y;
    if (c >= p.d || r >= p.count) { return; }
    y[r * p.d + c] = x[rows[r] * p.d + c];
}
