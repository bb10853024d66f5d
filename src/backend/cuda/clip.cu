// clip.cu: Gradient sharing: clips the residual to [-limit, limit]. One thread per entry: r holds n
// floats.
// Launched by Kernels::clip (kernels.rs), from sharing.rs.
extern "C" __global__ void clip(float* r, int n, float limit) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) r[i] = fminf(fmaxf(r[i], -limit), limit);
}
