//! Gradient sharing on the device: the residual (allocated on first use), the threshold
//! encoder's selection (only the selected indices cross to the host), quanta subtracted from
//! the residual or the parameters, received messages applied, and the residual clipped or
//! scaled.

use std::ops::Range;

use cudarc::driver::CudaSlice;

use super::CudaBackend;
use super::device::{cuda_err, zeros};
use super::kernels::cfg;
use crate::backend::{BackendError, Target};
use crate::sharing::{MessageView, quantum};

impl CudaBackend {
    fn residual(&mut self) -> Result<&mut CudaSlice<f32>, BackendError> {
        if self.residual.is_none() {
            self.residual = Some(zeros::<f32>(&self.stream, self.layout.len)?);
        }
        self.residual.as_mut().ok_or_else(|| BackendError::Cuda("no residual".into()))
    }

    pub(super) fn try_residual_add(&mut self) -> Result<(), BackendError> {
        let n = self.layout.len;
        self.residual()?;
        let Some(residual) = self.residual.as_mut() else { return Ok(()) };
        self.k.accumulate(cfg(n), &mut residual.as_view_mut(), &self.grads.as_view(), n as i32)
    }

    pub(super) fn try_select(
        &mut self,
        tau: f32,
        segments: &[Range<usize>],
        out: &mut Vec<u32>,
        norm2: &mut [f64],
    ) -> Result<(), BackendError> {
        self.residual()?;
        if self.norms.len() < segments.len() {
            self.norms = zeros::<f32>(&self.stream, segments.len())?;
        }
        self.stream.memset_zeros(&mut self.count).map_err(cuda_err)?;
        self.stream.memset_zeros(&mut self.norms).map_err(cuda_err)?;
        let residual = self.residual.as_ref().ok_or_else(|| BackendError::Cuda("no residual".into()))?;
        for (i, seg) in segments.iter().enumerate() {
            self.k.select_quanta(
                cfg(seg.len()),
                &residual.as_view(),
                seg.start as i32,
                seg.len() as i32,
                tau,
                &mut self.selected.as_view_mut(),
                &mut self.count.as_view_mut(),
                &mut self.norms.slice_mut(i..i + 1),
            )?;
        }
        let mut count = [0u32];
        self.stream.memcpy_dtoh(&self.count, &mut count).map_err(cuda_err)?;
        let m = count[0] as usize;
        out.clear();
        out.resize(m, 0);
        if m > 0 {
            let view = self.selected.slice(0..m);
            self.stream.memcpy_dtoh(&view, out.as_mut_slice()).map_err(cuda_err)?;
        }
        out.sort_unstable_by_key(|&q| quantum::index(q));
        let mut norms = vec![0.0f32; self.norms.len()];
        self.stream.memcpy_dtoh(&self.norms, &mut norms).map_err(cuda_err)?;
        for (n2, &v) in norm2.iter_mut().zip(&norms) {
            *n2 = v as f64;
        }
        Ok(())
    }

    /// `target -= ±tau` at the packed entries `selected` (uploaded first).
    pub(super) fn try_scatter(
        &mut self,
        target: Target,
        selected: &[u32],
        tau: f32,
    ) -> Result<(), BackendError> {
        let m = selected.len();
        if m == 0 {
            return Ok(());
        }
        let mut dst = self.selected.slice_mut(0..m);
        self.stream.memcpy_htod(selected, &mut dst).map_err(cuda_err)?;
        if target == Target::Residual {
            self.residual()?;
        }
        let buf = match target {
            Target::Params => &mut self.params,
            Target::Residual => {
                self.residual.as_mut().ok_or_else(|| BackendError::Cuda("no residual".into()))?
            }
        };
        self.k.apply_quanta(cfg(m), &mut buf.as_view_mut(), &self.selected.slice(0..m), m as i32, tau)
    }

    pub(super) fn try_apply_message(&mut self, message: &MessageView<'_>) -> Result<(), BackendError> {
        let dense: Vec<f32> = message.dense_values().collect();
        if !dense.is_empty() {
            let u = self.stream.memcpy_stod(&dense).map_err(cuda_err)?;
            let n = self.layout.len;
            return self.k.subtract(cfg(n), &mut self.params.as_view_mut(), &u.as_view(), n as i32);
        }
        let mut selected = std::mem::take(&mut self.host_selected);
        selected.clear();
        message.for_each_quantum(|i, negative| selected.push(quantum::pack(i, negative)));
        let result = self.try_scatter(Target::Params, &selected, message.header.tau);
        self.host_selected = selected;
        result
    }

    pub(super) fn try_clip_residual(&mut self, limit: f32) -> Result<(), BackendError> {
        let n = self.layout.len;
        let Some(r) = self.residual.as_mut() else { return Ok(()) };
        self.k.clip(cfg(n), &mut r.as_view_mut(), n as i32, limit)
    }

    pub(super) fn try_scale_residual(&mut self, factor: f32) -> Result<(), BackendError> {
        let n = self.layout.len;
        let Some(r) = self.residual.as_mut() else { return Ok(()) };
        self.k.scale(cfg(n), &mut r.as_view_mut(), n as i32, factor)
    }
}
