// Shared workgroup reductions for kernels that run one workgroup of WG threads per row. Provides
// WG, the workgroup array wg_val (one f32 per thread), reduce_sum(v, t) and reduce_max(v, t).
//
// Through workgroup memory rather than subgroups, which the web does not have. The tree order
// (s = WG/2 … 1) is fixed so that a row's result is the same bit for bit on every run. Each
// reduction ends on a barrier, so wg_val is free again for a kernel's own tree afterwards.

const WG: u32 = 64u;
var<workgroup> wg_val: array<f32, WG>;

fn reduce_sum(v: f32, t: u32) -> f32 {
    wg_val[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) { wg_val[t] += wg_val[t + s]; }
        workgroupBarrier();
    }
    let r = wg_val[0];
    workgroupBarrier();
    return r;
}

fn reduce_max(v: f32, t: u32) -> f32 {
    wg_val[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) { wg_val[t] = max(wg_val[t], wg_val[t + s]); }
        workgroupBarrier();
    }
    let r = wg_val[0];
    workgroupBarrier();
    return r;
}
