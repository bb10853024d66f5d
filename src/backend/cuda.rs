//! The CUDA backend (feature `cuda`). Filled in by the GPU issue.
