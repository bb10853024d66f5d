// activate.cu: Element-wise activation a = f(z) of a dense layer's pre-activation; kind: 0 relu,
// 1 leaky_relu, 2 tanh, 3 sigmoid, 4 identity. One thread per entry: z and a hold n floats.
// Launched by Kernels::activate (kernels.rs), from dense.rs.
extern "C" __global__ void activate(const float* z, float* a, int n, int kind) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = z[i];
    if (kind == 0) a[i] = v > 0.f ? v : 0.f;
    else if (kind == 1) a[i] = v > 0.f ? v : 0.01f * v;
    else if (kind == 2) a[i] = tanhf(v);
    else if (kind == 3) a[i] = 1.f / (1.f + expf(-v));
    else a[i] = v;
}
