// updater.cu: The updater, in place on the gradient g, which becomes the update to subtract.
// kind: 0 sgd, 1 nesterov, 2 adam, 3 rmsprop; a = learning rate (adam: the bias-corrected
// step size); m and v the first and second moments (rmsprop keeps its average in m, with rho
// in b1). One thread per parameter: g holds n floats, m and v n floats where the kind uses
// them.
// Launched by Kernels::updater (kernels.rs), from updater.rs.
extern "C" __global__ void updater(float* g, float* m, float* v, int n, int kind, float a, float mu, float b1, float b2, float eps) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float gi = g[i];
    if (kind == 0) g[i] = a * gi;
    else if (kind == 1) { float prev = m[i]; m[i] = mu * prev - a * gi; g[i] = mu * prev - (1.f + mu) * m[i]; }
    else if (kind == 2) { m[i] = b1 * m[i] + (1.f - b1) * gi; v[i] = b2 * v[i] + (1.f - b2) * gi * gi; g[i] = a * m[i] / (sqrtf(v[i]) + eps); }
    else { m[i] = b1 * m[i] + (1.f - b1) * gi * gi; g[i] = a * gi / (sqrtf(m[i]) + eps); }
}
