// The continuous families' canvas update: z' = a·z + b·x̂0 + c·noise, and at known positions
// the clean vector. The reference is backend/cpu/continuous.rs `update` (noise is not read
// when c = 0, as there).
//
// z:     [L, w] f32, the canvas before the step
// x0:    [L, w] f32, the clean estimate
// noise: [L, w] f32 standard normal draws (read only when c ≠ 0)
// known: [L] u32 (1 = the position's clean vector is known)
// clean: [L, w] f32, the known positions' clean vectors
// coef:  [4] f32: a (z), b (x̂0), c (noise), unused; written by the host each step
// z_out: [L, w] f32

struct Params { n: u32, w: u32, _p0: u32, _p1: u32 }

// threads per workgroup, set by the dispatcher (backend/gpu/mod.rs WG)
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> z: array<f32>;
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read> noise: array<f32>;
@group(0) @binding(3) var<storage, read> known: array<u32>;
@group(0) @binding(4) var<storage, read> clean: array<f32>;
@group(0) @binding(5) var<storage, read> coef: array<f32>;
@group(0) @binding(6) var<storage, read_write> z_out: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    // groups over x, then y past 65535 (context.rs groups_1d)
    let i = gid.y * 65535u * WG + gid.x;
    if (i >= p.n) { return; }
    if (known[i / p.w] == 1u) {
        z_out[i] = clean[i];
        return;
    }
    var v = coef[0] * z[i] + coef[1] * x0[i];
    if (coef[2] != 0.0) { v += coef[2] * noise[i]; }
    z_out[i] = v;
}
