// Rotary embedding, rotate-half layout, on the q and k parts of fused qkv rows, in place:
// out[:hd/2] = x1·cos − x2·sin, out[hd/2:] = x1·sin + x2·cos. v is never touched.
//
// qkv: [L, 3·heads·hd] f32
// cs:  [L, hd/2, 2] f32 (cos, sin), made on the host in f64 as the CPU path does

struct Params { len: u32, heads: u32, hd: u32, _p: u32 }

@group(0) @binding(0) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let half = p.hd / 2u;
    // one thread per (position, q-or-k head, pair)
    let per_pos = 2u * p.heads * half;
    let idx = gid.x + gid.y * 65535u * 64u;
    if (idx >= p.len * per_pos) { return; }
    let pos = idx / per_pos;
    let rest = idx % per_pos;
    let head = rest / half;      // 0 .. 2·heads: q heads then k heads
    let j = rest % half;
    let base = pos * 3u * p.heads * p.hd + head * p.hd;
    let c = cs[(pos * half + j) * 2u];
    let s = cs[(pos * half + j) * 2u + 1u];
    let a = qkv[base + j];
    let b = qkv[base + half + j];
    qkv[base + j] = a * c - b * s;
    qkv[base + half + j] = a * s + b * c;
}
