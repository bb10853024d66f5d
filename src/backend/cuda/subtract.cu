// subtract.cu: p -= u: applies an update (the local one, or a dense message). One thread per entry: p
// and u hold n floats.
// Launched by Kernels::subtract (kernels.rs), from updater.rs.
extern "C" __global__ void subtract(float* p, const float* u, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) p[i] -= u[i];
}
