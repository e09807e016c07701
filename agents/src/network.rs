//! Separate actor and critic MLPs (tanh hidden layers) with CleanRL/SB3 orthogonal
//! initialisation: gain √2 on hidden layers, 0.01 on the policy head, 1 on the value head, zero
//! biases (CleanRL `layer_init`, SB3 `ActorCriticPolicy(ortho_init=True)`).
//!
//! The weights are drawn on the host from our own seeded RNG (not burn's global RNG, which is
//! neither seeded per agent nor checkpointed), so the same seed gives the same network.
//! The [`Actor`] holds only what the policy needs, so it can be exported on its own (ONNX export
//! embeds every parameter of the module it is given).

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData, activation::sigmoid};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// CleanRL `layer_init(std=np.sqrt(2))` for hidden layers.
pub const HIDDEN_GAIN: f64 = std::f64::consts::SQRT_2;
/// CleanRL `layer_init(nn.Linear(64, n), std=0.01)`: near-uniform initial policy.
pub const POLICY_HEAD_GAIN: f64 = 0.01;
/// CleanRL `layer_init(nn.Linear(64, 1), std=1)`.
pub const VALUE_HEAD_GAIN: f64 = 1.0;

/// tanh(x) = 2·σ(2x) − 1. flex evaluates `tanh` with the C library's scalar `tanhf` (≈ 20 ns per
/// element, computed again in the backward pass), which took 60 % of a CartPole training run;
/// its sigmoid uses `expf` and is several times faster. The identity is exact in real arithmetic;
/// in f32 the absolute error stays within a few 1e-8 (tested below).
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    sigmoid(x.mul_scalar(2.0)).mul_scalar(2.0).sub_scalar(1.0)
}

/// A tanh MLP: `hidden` layers with tanh, then a linear `head`.
#[derive(Module, Debug)]
pub struct Mlp {
    pub hidden: Vec<Linear>,
    pub head: Linear,
}

impl Mlp {
    pub fn new(
        d_in: usize,
        hidden: &[usize],
        d_out: usize,
        head_gain: f64,
        rng: &mut impl Rng,
        device: &Device,
    ) -> Self {
        let mut layers = Vec::with_capacity(hidden.len());
        let mut width = d_in;
        for &h in hidden {
            layers.push(orthogonal_linear(width, h, HIDDEN_GAIN, rng, device));
            width = h;
        }
        Self { hidden: layers, head: orthogonal_linear(width, d_out, head_gain, rng, device) }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward_with(x, tanh)
    }

    /// The same network with another (mathematically equal) activation, e.g. burn's own `tanh`
    /// for an export graph.
    pub fn forward_with(&self, x: Tensor<2>, activation: fn(Tensor<2>) -> Tensor<2>) -> Tensor<2> {
        let x = self.hidden.iter().fold(x, |x, layer| activation(layer.forward(x)));
        self.head.forward(x)
    }
}

/// The policy network: normalised observation (and, for a conditioned level, its context) →
/// unmasked logits (`Σ nvec` columns).
#[derive(Module, Debug)]
pub struct Actor {
    pub net: Mlp,
    /// A conditioned level's context skip: the context columns (the input's last
    /// `weight.dims()[0]`) times this matrix, added to the MLP's logits. A hierarchy's low level
    /// starts it at the logit bonus of the values its high choice implies (see
    /// [`crate::hppo::completion_prior`]) and trains it with the rest; `None` without a context.
    pub context_skip: Option<Linear>,
}

impl Actor {
    /// An actor with an MLP and, for `context_dim > 0`, a zero context skip (no RNG draws).
    pub fn new(net: Mlp, context_dim: usize, n_logits: usize, device: &Device) -> Self {
        let context_skip = (context_dim > 0).then(|| Linear {
            weight: Param::from_data(
                TensorData::new(vec![0.0f32; context_dim * n_logits], [context_dim, n_logits]),
                device,
            ),
            bias: None,
        });
        Self { net, context_skip }
    }

    pub fn forward(&self, obs: Tensor<2>) -> Tensor<2> {
        self.with_skip(obs.clone(), self.net.forward(obs))
    }

    /// Logits through burn's `tanh` op instead of the sigmoid form: one `Tanh` node per layer in
    /// an exported graph (the sigmoid form would export Sigmoid/Mul/Sub). Equal to
    /// [`Actor::forward`] within ~1e-7 per activation. `context` is the input's context columns,
    /// given apart (an export graph already holds them as a tensor of their own: slicing them
    /// off the input again would trace as a slice whose bounds vary with the batch).
    pub fn forward_exact(&self, input: Tensor<2>, context: Option<Tensor<2>>) -> Tensor<2> {
        let logits = self.net.forward_with(input, burn::tensor::activation::tanh);
        match (&self.context_skip, context) {
            (Some(skip), Some(context)) => logits + skip.forward(context),
            _ => logits,
        }
    }

    fn with_skip(&self, input: Tensor<2>, logits: Tensor<2>) -> Tensor<2> {
        match &self.context_skip {
            Some(skip) => {
                let c = skip.weight.dims()[0];
                let width = input.dims()[1];
                logits + skip.forward(input.narrow(1, width - c, c))
            }
            None => logits,
        }
    }
}

/// The value network: normalised observation → V(s) (`[batch, 1]`).
#[derive(Module, Debug)]
pub struct Critic {
    pub net: Mlp,
}

impl Critic {
    pub fn forward(&self, obs: Tensor<2>) -> Tensor<2> {
        self.net.forward(obs)
    }
}

/// Actor and critic side by side: one module so one optimizer and one global gradient norm
/// cover both (CleanRL `Agent`), while neither shares a layer with the other.
#[derive(Module, Debug)]
pub struct ActorCritic {
    pub actor: Actor,
    pub critic: Critic,
}

impl ActorCritic {
    /// Draws the actor's weights first, then the critic's, from `rng`.
    /// `input_dim` counts the context's `context_dim` columns, which come last.
    pub fn new(
        input_dim: usize,
        context_dim: usize,
        n_logits: usize,
        actor_hidden: &[usize],
        critic_hidden: &[usize],
        rng: &mut impl Rng,
        device: &Device,
    ) -> Self {
        let net = Mlp::new(input_dim, actor_hidden, n_logits, POLICY_HEAD_GAIN, rng, device);
        let actor = Actor::new(net, context_dim, n_logits, device);
        let critic = Critic { net: Mlp::new(input_dim, critic_hidden, 1, VALUE_HEAD_GAIN, rng, device) };
        Self { actor, critic }
    }
}

/// A linear layer with an orthogonal weight of the given gain and a zero bias.
pub fn orthogonal_linear(d_in: usize, d_out: usize, gain: f64, rng: &mut impl Rng, device: &Device) -> Linear {
    // PyTorch's weight is [out, in]; burn's Linear stores [in, out] (y = xW + b): transpose.
    let w = orthogonal(d_out, d_in, gain, rng);
    let mut burn_w = vec![0.0f32; d_in * d_out];
    for o in 0..d_out {
        for i in 0..d_in {
            burn_w[i * d_out + o] = w[o * d_in + i] as f32;
        }
    }
    Linear {
        weight: Param::from_data(TensorData::new(burn_w, [d_in, d_out]), device),
        bias: Some(Param::from_data(TensorData::new(vec![0.0f32; d_out], [d_out]), device)),
    }
}

/// A `rows × cols` (row-major) matrix with orthonormal rows (if rows ≤ cols) or columns,
/// times `gain`: PyTorch `nn.init.orthogonal_` (Saxe et al. 2014): QR of a standard normal
/// matrix with the signs fixed so that R has a positive diagonal. Gram–Schmidt yields that
/// positive-diagonal QR directly; it is applied twice ("twice is enough", Giraud et al. 2005) for
/// orthogonality to machine precision.
pub fn orthogonal(rows: usize, cols: usize, gain: f64, rng: &mut impl Rng) -> Vec<f64> {
    // Work on a tall m × n matrix (m ≥ n) stored as n columns of length m.
    let (m, n) = if rows >= cols { (rows, cols) } else { (cols, rows) };
    let mut columns: Vec<Vec<f64>> = (0..n).map(|_| (0..m).map(|_| StandardNormal.sample(rng)).collect()).collect();
    for j in 0..n {
        for _pass in 0..2 {
            for p in 0..j {
                let dot: f64 = columns[j].iter().zip(&columns[p]).map(|(a, b)| a * b).sum();
                let (done, rest) = columns.split_at_mut(j);
                for (x, q) in rest[0].iter_mut().zip(&done[p]) {
                    *x -= dot * q;
                }
            }
        }
        let norm = columns[j].iter().map(|x| x * x).sum::<f64>().sqrt();
        for x in &mut columns[j] {
            *x /= norm;
        }
    }
    let mut out = vec![0.0; rows * cols];
    for (j, column) in columns.iter().enumerate() {
        for (i, &x) in column.iter().enumerate() {
            // Tall case: element (i, j) of the result; wide case: the transpose, (j, i).
            let index = if rows >= cols { i * cols + j } else { j * cols + i };
            out[index] = gain * x;
        }
    }
    out
}

/// Every float parameter of `module`, in visiting order, as host values: compares weights across
/// runs bit for bit (the burnpack bytes of a record also carry random parameter ids, so they
/// differ between two identical models).
pub fn parameter_values<M: Module>(module: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data();
            // Parameters are f32 (flex's default float); anything else is a programmer bug.
            self.0.push(data.try_into_vec::<f32>().expect("f32 parameters"));
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use splitwise_env::rng::StreamRng;

    /// Max |A·Aᵀ − g²I| over the smaller Gram matrix of a rows × cols matrix.
    fn gram_error(w: &[f64], rows: usize, cols: usize, gain: f64) -> f64 {
        let mut worst: f64 = 0.0;
        if rows <= cols {
            for a in 0..rows {
                for b in 0..rows {
                    let dot: f64 = (0..cols).map(|k| w[a * cols + k] * w[b * cols + k]).sum();
                    let target = if a == b { gain * gain } else { 0.0 };
                    worst = worst.max((dot - target).abs());
                }
            }
        } else {
            for a in 0..cols {
                for b in 0..cols {
                    let dot: f64 = (0..rows).map(|k| w[k * cols + a] * w[k * cols + b]).sum();
                    let target = if a == b { gain * gain } else { 0.0 };
                    worst = worst.max((dot - target).abs());
                }
            }
        }
        worst
    }

    #[test]
    fn orthogonal_rows_or_columns_have_the_gain_as_norm() {
        let mut rng = StreamRng::seed_from_u64(3);
        // Wide (policy head 2 × 64 in PyTorch layout), tall (64 × 4 first layer), square.
        for (rows, cols, gain) in [(2, 64, 0.01), (64, 4, HIDDEN_GAIN), (64, 64, HIDDEN_GAIN)] {
            let w = orthogonal(rows, cols, gain, &mut rng);
            let err = gram_error(&w, rows, cols, gain);
            assert!(err < 1e-12, "{rows}×{cols}: {err}");
        }
    }

    #[test]
    fn sigmoid_form_of_tanh_matches_tanh() {
        let xs: Vec<f32> = (-400..=400).map(|i| i as f32 * 0.025).collect();
        let n = xs.len();
        let got = tanh(Tensor::<1>::from_data(TensorData::new(xs.clone(), [n]), &Device::flex()))
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        for (x, y) in xs.iter().zip(got) {
            // 2σ − 1 rounds σ to 2^-24 ≈ 6e-8 near σ = ½, doubled: ≤ 1.2e-7 absolute.
            assert!((f64::from(y) - f64::from(*x).tanh()).abs() < 2e-7, "tanh({x}) = {y}");
        }
    }

    #[test]
    fn exact_and_fast_actor_forward_agree() {
        let device = Device::flex();
        let net = ActorCritic::new(4, 0, 3, &[64, 64], &[8], &mut StreamRng::seed_from_u64(5), &device);
        let obs: Vec<f32> = (0..40).map(|i| (i as f32 * 0.37).sin() * 2.0).collect();
        let x = Tensor::<2>::from_data(TensorData::new(obs, [10, 4]), &device);
        let fast = net.actor.forward(x.clone()).into_data().try_into_vec::<f32>().unwrap();
        let exact = net.actor.forward_exact(x, None).into_data().try_into_vec::<f32>().unwrap();
        // Per-activation differences ≤ 2e-7 (64 of them, norm ≤ 1.6e-6) grow at most by the
        // second layer's spectral norm √2 (≤ 2.3e-6, plus its own 2e-7 each) and shrink through
        // the 0.01-gain head: ≤ 0.01 · √64 · 2.5e-6 ≈ 2e-7 per logit.
        for (a, b) in fast.iter().zip(&exact) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn same_seed_same_network_and_biases_are_zero() {
        let device = Device::flex();
        let make = || ActorCritic::new(4, 0, 2, &[64, 64], &[64, 64], &mut StreamRng::seed_from_u64(11), &device);
        let (a, b) = (make(), make());
        let wa = a.actor.net.head.weight.val().into_data();
        let wb = b.actor.net.head.weight.val().into_data();
        assert_eq!(wa, wb);
        // Policy head [64, 2] (burn layout): each output column has norm 0.01.
        let w = wa.try_into_vec::<f32>().unwrap();
        for o in 0..2 {
            let norm: f64 = (0..64).map(|i| f64::from(w[i * 2 + o]).powi(2)).sum::<f64>().sqrt();
            assert!((norm - 0.01).abs() < 1e-7, "{norm}");
        }
        let bias = a.critic.net.hidden[0].bias.as_ref().unwrap().val().into_data().try_into_vec::<f32>().unwrap();
        assert!(bias.iter().all(|&x| x == 0.0));
        assert_eq!(a.critic.net.head.weight.val().dims(), [64, 1]);
    }
}
