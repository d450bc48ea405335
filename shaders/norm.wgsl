// y[r, :] = norm(x[r, :]) · weight (+ bias): LayerNorm, or RMSNorm when RMS. One workgroup per row,
// statistics reduced through workgroup memory (no subgroups: they are not available on the web).
//
// x:      [rows, d] f32
// weight: [d] f32
// bias:   [d] f32 (read when HAS_BIAS)
// y:      [rows, d] f32
//
// Composed after shared/workgroup_reduce.wgsl (WG, reduce_sum).

override RMS: bool = false;
override HAS_BIAS: bool = false;

struct Params { rows: u32, d: u32, eps: f32, _p: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x + wg.y * 65535u;
    if (r >= p.rows) { return; }
    let t = lid.x;
    let base = r * p.d;
    let n = f32(p.d);
    var mean = 0.0;
    if (!RMS) {
        var s = 0.0;
        for (var i = t; i < p.d; i += WG) { s += x[base + i]; }
        mean = reduce_sum(s, t) / n;
    }
    var q = 0.0;
    for (var i = t; i < p.d; i += WG) { let c = x[base + i] - mean; q += c * c; }
    let inv = inverseSqrt(reduce_sum(q, t) / n + p.eps);
    for (var i = t; i < p.d; i += WG) {
        var v = (x[base + i] - mean) * inv * weight[i];
        if HAS_BIAS { v += bias[i]; }
        y[base + i] = v;
    }
}
