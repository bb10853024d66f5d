// fill_rows.cu: Dense layer, forward: every row of z (rows x cols) starts as the bias b (cols);
// cuBLAS then adds X W. One thread per entry of z: z holds rows * cols floats, b cols.
// Launched by Kernels::fill_rows (kernels.rs), from dense.rs.
extern "C" __global__ void fill_rows(float* z, const float* b, int rows, int cols) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < rows * cols) z[i] = b[i % cols];
}
