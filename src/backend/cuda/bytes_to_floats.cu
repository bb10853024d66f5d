// bytes_to_floats.cu: A batch of u8 inputs (images stay u8 until here) to floats, out = bytes * scale. One
// thread per entry: bytes and out hold n values.
// Launched by Kernels::bytes_to_floats (kernels.rs), from dense.rs.
extern "C" __global__ void bytes_to_floats(const unsigned char* bytes, float* out, int n, float scale) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = bytes[i] * scale;
}
