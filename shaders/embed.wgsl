// x[i, :] = tok[ids[i], :] (+ pos[pos_ids[i], :]) (+ types[type_ids[i], :]) for the token rows held
// by this chunk of the table (rows tok_start .. tok_start + tok_rows); ACCUM adds to x, so a table
// split over several bindings is gathered by one dispatch per chunk.
//
// ids, pos_ids, type_ids: [L] u32
// tok:   [tok_rows, ldt] — f16 packed two per u32 when F16, else f32
// pos:   [P, d] f32;  types: [T, d] f32
// x:     [L, d] f32

override F16: bool = true;
override ACCUM: bool = false;
override HAS_POS: bool = false;
override HAS_TYPES: bool = false;

struct Params { len: u32, d: u32, ldt: u32, tok_start: u32, tok_rows: u32, _p0: u32, _p1: u32, _p2: u32 }

// threads per workgroup, set by the dispatcher (backend/gpu/mod.rs WG)
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> pos_ids: array<u32>;
@group(0) @binding(2) var<storage, read> type_ids: array<u32>;
@group(0) @binding(3) var<storage, read> tok: array<u32>;
@group(0) @binding(4) var<storage, read> pos: array<f32>;
@group(0) @binding(5) var<storage, read> types: array<f32>;
@group(0) @binding(6) var<storage, read_write> x: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let i = gid.y;
    if (c >= p.d || i >= p.len) { return; }
    var v = 0.0;
    let id = ids[i];
    if (id >= p.tok_start && id < p.tok_start + p.tok_rows) {
        let r = id - p.tok_start;
        if F16 {
            let pair = unpack2x16float(tok[r * p.ldt + c / 2u]);
            v = select(pair.x, pair.y, (c & 1u) == 1u);
        } else {
            v = bitcast<f32>(tok[r * p.ldt + c]);
        }
    }
    if HAS_POS { v += pos[pos_ids[i] * p.d + c]; }
    if HAS_TYPES { v += types[type_ids[i] * p.d + c]; }
    let o = i * p.d + c;
    if ACCUM { v += x[o]; }
    x[o] = v;
}
