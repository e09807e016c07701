//! Global gradient-norm clipping, as PyTorch's `clip_grad_norm_` that PPO implementations
//! assume: all gradients of the module are scaled together by `max_norm / (‖g‖ + 1e-6)` when the
//! global norm ‖g‖ = √(Σ over every parameter of Σ g²) exceeds `max_norm`. burn's
//! `GradientClippingConfig::Norm` clips each parameter tensor by its own norm instead, which is a
//! different (per-tensor) operation.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// PyTorch `clip_grad_norm_`: `clip_coef = max_norm / (total_norm + 1e-6)`.
pub const CLIP_NORM_EPSILON: f64 = 1e-6;

/// Σ g² over every gradient of `module` as a one-element tensor, left on the device so the caller
/// can read it in the same host transfer as other statistics.
pub fn global_grad_sum_squares<M: Module>(module: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    struct SumSquares<'a> {
        grads: &'a GradientsParams,
        parts: Vec<Tensor<1>>,
    }
    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.parts.push(g.square().sum());
            }
        }
    }
    let mut visitor = SumSquares { grads, parts: Vec::new() };
    module.visit(&mut visitor);
    if visitor.parts.is_empty() {
        return None;
    }
    Some(Tensor::cat(visitor.parts, 0).sum())
}

/// The factor PyTorch multiplies every gradient by, or `None` when the norm is within bounds
/// (PyTorch then multiplies by exactly 1; we leave the gradients untouched).
pub fn clip_factor(total_norm: f64, max_norm: f64) -> Option<f64> {
    let coef = max_norm / (total_norm + CLIP_NORM_EPSILON);
    (coef < 1.0).then_some(coef)
}

/// Multiplies every gradient of `module` by `factor`.
pub fn scale_grads<M: Module>(module: &M, grads: &mut GradientsParams, factor: f64) {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads.register::<D>(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    module.visit(&mut Scale { grads, factor });
}

/// Clips the global gradient norm of `module` to `max_norm`; returns the norm before clipping.
/// (The PPO update does the same in two halves so that the norm shares one host read with the
/// loss statistics.)
pub fn clip_global_grad_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let Some(sum_squares) = global_grad_sum_squares(module, grads) else {
        return 0.0;
    };
    let total_norm = f64::from(sum_squares.into_scalar::<f32>()).sqrt();
    if let Some(factor) = clip_factor(total_norm, max_norm) {
        scale_grads(module, grads, factor);
    }
    total_norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ActorCritic;
    use burn::tensor::{Device, TensorData};
    use rand::SeedableRng;
    use splitwise_env::rng::StreamRng;

    fn model_and_grads(scale: f32) -> (ActorCritic, GradientsParams) {
        let device = Device::flex().autodiff();
        let model = ActorCritic::new(3, 0, 2, &[8], &[5, 4], &mut StreamRng::seed_from_u64(1), &device);
        let obs = Tensor::<2>::from_data(TensorData::new(vec![0.3f32, -1.0, 2.0, 1.5, 0.2, -0.7], [2, 3]), &device);
        let loss = model.actor.forward(obs.clone()).sum() + model.critic.forward(obs).sum();
        let grads = GradientsParams::from_grads(loss.mul_scalar(scale).backward(), &model);
        (model, grads)
    }

    /// Norm over all gradients, computed independently from each tensor's host data.
    fn host_norm(model: &ActorCritic, grads: &GradientsParams) -> f64 {
        struct Host<'a> {
            grads: &'a GradientsParams,
            sum: f64,
            tensors: usize,
        }
        impl ModuleVisitor for Host<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let g = self.grads.get::<D>(param.id).expect("every parameter has a gradient");
                self.tensors += 1;
                self.sum += g.into_data().iter::<f32>().map(|x| f64::from(x).powi(2)).sum::<f64>();
            }
        }
        let mut h = Host { grads, sum: 0.0, tensors: 0 };
        model.visit(&mut h);
        // Actor: 2 layers, critic: 3 layers; weight + bias each → 10 tensors.
        assert_eq!(h.tensors, 10);
        h.sum.sqrt()
    }

    #[test]
    fn global_norm_is_clipped_to_max_norm_when_above() {
        let (model, mut grads) = model_and_grads(100.0);
        let before = host_norm(&model, &grads);
        assert!(before > 1.0, "test needs a norm above max_norm, got {before}");
        let reported = clip_global_grad_norm(&model, &mut grads, 0.5);
        assert!((reported - before).abs() <= 1e-5 * before, "{reported} vs {before}");
        let after = host_norm(&model, &grads);
        // PyTorch's coefficient 0.5/(‖g‖ + 1e-6) leaves ‖g‖·0.5/(‖g‖ + 1e-6): within 1e-6
        // relative of 0.5, plus f32 rounding of ~10 sums (≈ 1e-6 relative).
        assert!((after - 0.5).abs() < 0.5 * 3e-6, "post-clip norm {after}");
    }

    #[test]
    fn gradients_below_max_norm_are_untouched() {
        let (model, mut grads) = model_and_grads(1e-3);
        let before: Vec<TensorData> = snapshot(&model, &grads);
        let norm = clip_global_grad_norm(&model, &mut grads, 0.5);
        assert!(norm < 0.5, "test needs a norm below max_norm, got {norm}");
        assert_eq!(snapshot(&model, &grads), before);
    }

    fn snapshot(model: &ActorCritic, grads: &GradientsParams) -> Vec<TensorData> {
        struct Snap<'a> {
            grads: &'a GradientsParams,
            out: Vec<TensorData>,
        }
        impl ModuleVisitor for Snap<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.out.push(self.grads.get::<D>(param.id).expect("gradient").into_data());
            }
        }
        let mut s = Snap { grads, out: Vec::new() };
        model.visit(&mut s);
        s.out
    }

    #[test]
    fn clip_factor_matches_pytorch() {
        // ‖g‖ = 2, max 0.5 → 0.5/(2 + 1e-6); ‖g‖ = 0.4 → no clipping.
        assert_eq!(clip_factor(2.0, 0.5), Some(0.5 / (2.0 + 1e-6)));
        assert_eq!(clip_factor(0.4, 0.5), None);
    }
}
