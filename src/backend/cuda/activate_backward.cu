// activate_backward.cu: Element-wise activation, backward: gz = ga * f'(z), from z (relu, leaky_relu) or
// from a = f(z) (tanh, sigmoid); kind as in activate.cu. One thread per entry: z, a, ga and
// gz hold n floats.
// Launched by Kernels::activate_backward (kernels.rs), from dense.rs.
extern "C" __global__ void activate_backward(const float* z, const float* a, const float* ga, float* gz, int n, int kind) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = ga[i];
    if (kind == 0) gz[i] = z[i] > 0.f ? g : 0.f;
    else if (kind == 1) gz[i] = z[i] > 0.f ? g : 0.01f * g;
    else if (kind == 2) gz[i] = g * (1.f - a[i] * a[i]);
    else if (kind == 3) gz[i] = g * a[i] * (1.f - a[i]);
    else gz[i] = g;
}
