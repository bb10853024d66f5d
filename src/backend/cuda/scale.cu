// scale.cu: Gradient sharing: scales the residual by factor (residual decay). One thread per entry: r
// holds n floats.
// Launched by Kernels::scale (kernels.rs), from sharing.rs.
extern "C" __global__ void scale(float* r, int n, float factor) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) r[i] *= factor;
}
