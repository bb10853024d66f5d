//! The output layer's loss on the device: softmax with cross-entropy, or mean squared error;
//! each writes the output layer's dL/dz and adds the mean loss to one device scalar.

use super::CudaBackend;
use super::device::cuda_err;
use super::kernels::cfg;
use crate::backend::BackendError;
use crate::nn::Loss;

impl CudaBackend {
    /// The loss of the last forward pass over `rows` rows, and the output layer's gradient.
    pub(super) fn loss(&mut self, rows: usize) -> Result<f32, BackendError> {
        let last = self.layout.layers.len() - 1;
        let cols = self.layout.outputs();
        self.stream.memset_zeros(&mut self.scalars).map_err(cuda_err)?;
        match self.layout.loss {
            Loss::Xent => self.k.softmax_xent(
                cfg(rows),
                &self.pre[last].as_view(),
                &mut self.acts[last + 1].as_view_mut(),
                &self.labels.as_view(),
                &mut self.grad_z[last].as_view_mut(),
                &mut self.scalars.as_view_mut(),
                rows as i32,
                cols as i32,
            )?,
            Loss::Mse => {
                let n = rows * cols;
                self.k.mse(
                    cfg(n),
                    &self.acts[last + 1].as_view(),
                    &self.targets.as_view(),
                    &mut self.grad_z[last].as_view_mut(),
                    &mut self.scalars.as_view_mut(),
                    n as i32,
                )?
            }
        }
        let mut loss = [0.0f32; 2];
        self.stream.memcpy_dtoh(&self.scalars, &mut loss).map_err(cuda_err)?;
        Ok(loss[0])
    }
}
