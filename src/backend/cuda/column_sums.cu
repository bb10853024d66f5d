// column_sums.cu: Dense layer, backward: the bias gradient out[j] = sum over the rows of g[r][j].
// One thread per column: g holds rows * cols floats, out cols.
// Launched by Kernels::column_sums (kernels.rs), from dense.rs.
extern "C" __global__ void column_sums(const float* g, float* out, int rows, int cols) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= cols) return;
    float s = 0.f;
    for (int r = 0; r < rows; r++) s += g[r * cols + j];
    out[j] = s;
}
