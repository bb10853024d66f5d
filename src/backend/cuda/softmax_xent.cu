// softmax_xent.cu: Softmax output with cross-entropy. One thread per row: a = softmax(z) row by row, and
// with labels (not null) the gradient gz = (p - y) / rows and the mean loss added to *loss.
// z, a and gz hold rows * cols floats, labels rows class indices below cols.
// Launched by Kernels::softmax_xent (kernels.rs), from loss.rs.
extern "C" __global__ void softmax_xent(const float* z, float* a, const unsigned* labels, float* gz, float* loss, int rows, int cols) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const float* zr = z + r * cols;
    float* ar = a + r * cols;
    float m = zr[0];
    for (int j = 1; j < cols; j++) m = fmaxf(m, zr[j]);
    float s = 0.f;
    for (int j = 0; j < cols; j++) { ar[j] = expf(zr[j] - m); s += ar[j]; }
    for (int j = 0; j < cols; j++) ar[j] /= s;
    if (labels == 0) return;
    unsigned y = labels[r];
    for (int j = 0; j < cols; j++) gz[r * cols + j] = (ar[j] - (j == (int)y ? 1.f : 0.f)) / rows;
    atomicAdd(loss, -logf(fmaxf(ar[y], 1e-30f)) / rows);
}
