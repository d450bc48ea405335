// y[m, y_off + n] (+)= act(x[m, :] · w[n, :] + b[n]) · gate[n]
// Tiled: 32×32 output tile per workgroup of 8×8 threads, 4×4 outputs per thread, K in slices of 16
// through workgroup memory, f32 accumulation.
//
// x:    [M, K] f32
// w:    [N, ldw] — f16 packed two per u32 along K (ldw = ceil(K/2)) when F16; q8_0 when Q8: per
//       block of 32 along K, 8 words of four int8 each (low byte first) then one word whose low
//       half is the block's f16 scale (ldw = 9·ceil(K/32)); q4_0 when Q4: per block of 32 along
//       K, 4 words of the block's 16 bytes (low byte first; byte j holds value j in its low
//       nibble and value j + 16 in its high one, as llama.cpp), then one word whose low half is
//       the f16 scale (ldw = 5·ceil(K/32)), value = (nibble − 8)·scale; else f32 (ldw = K)
// b:    [N] f32 (read when HAS_BIAS)
// gate: [N] f32 (read when GATED)
// y:    [M, ldy] f32, columns y_off .. y_off + N; added to when ACCUM
//
// Composed after shared/activation.wgsl (ACT, activate).

override F16: bool = true;
override Q8: bool = false;
override Q4: bool = false;
override HAS_BIAS: bool = false;
override GATED: bool = false;
override ACCUM: bool = false;

// b_off: where this row chunk of w starts in b and gate
struct Params { m: u32, n: u32, k: u32, ldw: u32, ldy: u32, y_off: u32, b_off: u32, _p0: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> gate: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

const TS: u32 = 32u;
const TK: u32 = 16u;
var<workgroup> xs: array<f32, 512>; // [TS][TK]
var<workgroup> ws: array<f32, 512>; // [TS][TK]

fn weight(row: u32, col: u32) -> f32 {
    if Q8 {
        let base = row * p.ldw + (col / 32u) * 9u;
        let word = w[base + (col % 32u) / 4u];
        // sign-extend the byte: shift it to the top, then arithmetic shift down
        let q = bitcast<i32>(word << (24u - 8u * (col % 4u))) >> 24u;
        return f32(q) * unpack2x16float(w[base + 8u]).x;
    }
    if Q4 {
        let base = row * p.ldw + (col / 32u) * 5u;
        let j = col % 32u;
        let byte = (w[base + (j % 16u) / 4u] >> (8u * (j % 4u))) & 0xFFu;
        // the first 16 values of a block are the low nibbles, the last 16 the high ones
        let q = select(byte & 0xFu, byte >> 4u, j >= 16u);
        return (f32(q) - 8.0) * unpack2x16float(w[base + 4u]).x;
    }
    if F16 {
        let word = w[row * p.ldw + col / 2u];
        let pair = unpack2x16float(word);
        return select(pair.x, pair.y, (col & 1u) == 1u);
    }
    return bitcast<f32>(w[row * p.ldw + col]);
}

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wg.y * TS;
    let col0 = wg.x * TS;
    let t = lid.y * 8u + lid.x;
    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) { for (var j = 0u; j < 4u; j++) { acc[i][j] = 0.0; } }

    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        // 64 threads load 512 values of each tile: 8 apiece
        for (var e = 0u; e < 8u; e++) {
            let idx = t * 8u + e;      // 0..511
            let r = idx / TK;          // tile row (x) / tile column (w)
            let kk = idx % TK;
            let gk = k0 + kk;
            var xv = 0.0;
            if (row0 + r < p.m && gk < p.k) { xv = x[(row0 + r) * p.k + gk]; }
            xs[r * TK + kk] = xv;
            var wv = 0.0;
            if (col0 + r < p.n && gk < p.k) { wv = weight(col0 + r, gk); }
            ws[r * TK + kk] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var a: array<f32, 4>;
            var bb: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                a[i] = xs[(lid.y * 4u + i) * TK + kk];
                bb[i] = ws[(lid.x * 4u + i) * TK + kk];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], bb[j], acc[i][j]); }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y * 4u + i;
        if (r >= p.m) { continue; }
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + lid.x * 4u + j;
            if (c >= p.n) { continue; }
            var v = acc[i][j];
            if HAS_BIAS { v += b[p.b_off + c]; }
            v = activate(v);
            if GATED { v *= gate[p.b_off + c]; }
            let o = r * p.ldy + p.y_off + c;
            if ACCUM { v += y[o]; }
            y[o] = v;
        }
    }
}
