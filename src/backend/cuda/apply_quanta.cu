// apply_quanta.cu: Gradient sharing, the decoder: p -= +-tau at the m listed entries (packed as
// select_quanta packs them). One thread per entry of sel: every index in sel is below the
// length of p (the host checked the message before this).
// Launched by Kernels::apply_quanta (kernels.rs), from sharing.rs.
extern "C" __global__ void apply_quanta(float* p, const unsigned* sel, int m, float tau) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= m) return;
    unsigned s = sel[k];
    p[s & ~QUANTUM_NEG] -= (s & QUANTUM_NEG) ? -tau : tau;
}
