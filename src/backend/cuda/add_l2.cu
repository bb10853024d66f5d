// add_l2.cu: L2 regularisation: g += l2 * p over one weight tensor. One thread per entry: g and p
// hold n floats.
// Launched by Kernels::add_l2 (kernels.rs), from updater.rs.
extern "C" __global__ void add_l2(float* g, const float* p, int n, float l2) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) g[i] += l2 * p[i];
}
