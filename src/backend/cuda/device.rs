//! The device: the driver library, the context and its stream, memory figures, and how CUDA's
//! errors become [`BackendError`]s.

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DeviceRepr, ValidAsZeroBits};

use crate::backend::{BackendError, DeviceInfo};

pub(super) fn cuda_err(e: impl std::fmt::Debug) -> BackendError {
    BackendError::Cuda(format!("{e:?}"))
}

/// Whether the CUDA driver library (libcuda.so) can be loaded with every function this build
/// calls. A driver older than the build's CUDA version (12.2, `cuda-12020`) lacks some, which
/// cudarc reports by panicking: caught here and reported as an unusable device.
pub fn driver_present() -> Result<bool, BackendError> {
    // SAFETY: only loads the driver library and resolves its symbols; no CUDA call is made.
    std::panic::catch_unwind(|| unsafe { cudarc::driver::sys::is_culib_present() }).map_err(|_| {
        BackendError::CudaUnavailable(
            "the CUDA driver library (libcuda.so) lacks functions of CUDA 12.2; update the NVIDIA driver (535 or later)"
                .into(),
        )
    })
}

/// Opens device `ordinal`: its primary context and default stream.
pub(super) fn open(ordinal: usize) -> Result<(Arc<CudaContext>, Arc<CudaStream>), BackendError> {
    if !driver_present()? {
        return Err(BackendError::CudaUnavailable(
            "the CUDA driver library (libcuda.so) is not installed on this machine; use backend = \"cpu\""
                .into(),
        ));
    }
    let ctx = CudaContext::new(ordinal).map_err(|e| {
        let count = CudaContext::device_count().unwrap_or(0);
        BackendError::CudaUnavailable(format!(
            "the driver cannot open device {ordinal} ({e:?}; {count} device(s) visible); check nvidia-smi and \
             CUDA_VISIBLE_DEVICES, or use backend = \"cpu\""
        ))
    })?;
    let stream = ctx.default_stream();
    Ok((ctx, stream))
}

/// A zeroed buffer of `n` elements (at least one, so that every buffer is a valid pointer).
pub(super) fn zeros<T: DeviceRepr + ValidAsZeroBits>(
    stream: &Arc<CudaStream>,
    n: usize,
) -> Result<CudaSlice<T>, BackendError> {
    stream.alloc_zeros::<T>(n.max(1)).map_err(cuda_err)
}

/// The device's name and memory in use.
pub(super) fn info(ordinal: usize) -> DeviceInfo {
    let (free, total) = cudarc::driver::result::mem_get_info().unwrap_or((0, 0));
    DeviceInfo {
        device: format!("cuda:{ordinal}"),
        name: format!("CUDA device {ordinal}"),
        memory_used: total.saturating_sub(free) as u64,
        memory_total: total as u64,
        utilization: None,
    }
}
