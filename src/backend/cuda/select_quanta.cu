// select_quanta.cu: Gradient sharing, the threshold encoder: entries base..base+n of the residual r at or
// past tau (in magnitude) are appended to out packed as sharing::quantum packs them (index,
// QUANTUM_NEG for the sign; in no order: the host sorts), and *norm2 += the squares every
// entry will have once tau is subtracted. One thread per entry: r holds base + n floats, out
// room for n more entries past *count.
// Launched by Kernels::select_quanta (kernels.rs), from sharing.rs.
extern "C" __global__ void select_quanta(const float* r, int base, int n, float tau, unsigned* out, unsigned* count, float* norm2) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = r[base + i];
    if (v >= tau) { v -= tau; out[atomicAdd(count, 1u)] = (unsigned)(base + i); }
    else if (v <= -tau) { v += tau; out[atomicAdd(count, 1u)] = (unsigned)(base + i) | QUANTUM_NEG; }
    atomicAdd(norm2, v * v);
}
