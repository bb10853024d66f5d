// mse.cu: Identity output with mean squared error: gz = 2 (a - t) / n and the mean loss added to
// *loss. One thread per entry: a, t and gz hold n floats.
// Launched by Kernels::mse (kernels.rs), from loss.rs.
extern "C" __global__ void mse(const float* a, const float* t, float* gz, float* loss, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float d = a[i] - t[i];
    gz[i] = 2.f * d / n;
    atomicAdd(loss, d * d / n);
}
