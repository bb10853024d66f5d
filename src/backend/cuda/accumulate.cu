// accumulate.cu: Gradient sharing: residual r += update u. One thread per entry: r and u hold n floats.
// Launched by Kernels::accumulate (kernels.rs), from sharing.rs.
extern "C" __global__ void accumulate(float* r, const float* u, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) r[i] += u[i];
}
