//! The imitation teacher of a training run (`[agent.imitation]`, `splitwise_agents::Imitation`):
//! the policy spec `imitation.teacher` resolved like `eval --policies` resolves it (a baseline of
//! system-model §10, a trivial policy, or a checkpoint `ckpt:PATH`), one policy per vector-env
//! member, whose decisions become actions of the learner's action space.

use crate::policies;
use anyhow::{Context, Result};
use splitwise_agents::Teacher;
use splitwise_env::api::Env;
use splitwise_env::partition::PartitionEnv;
use splitwise_env::policy::{Decision, DecisionContext, Policy};
use splitwise_env::rng::derive_seed;
use splitwise_env::vector::{EpisodeRecord, VecEnv};

/// `imitation.teacher` acting for every member of a partition vector env.
pub struct PolicyTeacher {
    policies: Vec<Box<dyn Policy>>,
    seed: u64,
    /// Episodes each member's policy has started (its reset seed's index).
    episodes: Vec<u64>,
}

impl PolicyTeacher {
    /// One policy per member of `venv`, each reset with a seed derived from `seed`.
    pub fn new(spec: &str, venv: &VecEnv<PartitionEnv>, seed: u64) -> Result<Self> {
        let env = &venv.members()[0];
        let policies = (0..venv.n_envs())
            .map(|i| {
                let member_seed = derive_seed(seed, i as u64);
                let mut p = policies::build(spec, member_seed, env.scenario(), env.spec())
                    .with_context(|| format!("agent.imitation.teacher = \"{spec}\""))?;
                p.reset(member_seed);
                Ok(p)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { policies, seed, episodes: vec![0; venv.n_envs()] })
    }
}

impl Teacher<PartitionEnv> for PolicyTeacher {
    fn act(&mut self, venv: &mut VecEnv<PartitionEnv>, out: &mut [usize]) -> Result<(), String> {
        let (d, m) = (venv.spec().observation.dim(), venv.spec().action.mask_len());
        let k = venv.spec().action.nvec.len();
        for (i, policy) in self.policies.iter_mut().enumerate() {
            // What the policy may know of the decided slot, drawn as `act_and_step` draws it.
            let env = &mut venv.members_mut()[i];
            let oracle = policy.is_oracle().then(|| env.oracle_conditions());
            let edge_memory_bytes = env.available_edge_memory_bytes();
            let env = &venv.members()[i];
            let ctx = DecisionContext {
                obs: &venv.obs()[i * d..(i + 1) * d],
                mask: &venv.masks()[i * m..(i + 1) * m],
                env,
                oracle,
                edge_memory_bytes,
            };
            let action = match policy.decide(&ctx) {
                Decision::Action(a) => a,
                Decision::Plan(plan) => env.action_of_plan(&plan).ok_or_else(|| {
                    format!(
                        "member {i} chose a plan that {}'s action space cannot express (edge layers {}, \
                         precision {:?}); pick a teacher that plans whole-layer splits, or the hierarchical \
                         action mode",
                        env.spec().id,
                        plan.leading_edge_layers(env.scenario().n_heads()),
                        plan.precision
                    )
                })?,
            };
            if action.len() != k {
                return Err(format!("member {i}: the teacher's action has {} components, the env {k}", action.len()));
            }
            out[i * k..(i + 1) * k].copy_from_slice(&action);
        }
        Ok(())
    }

    fn episodes_ended(&mut self, finished: &[EpisodeRecord]) {
        for e in finished {
            let i = e.env_index;
            self.episodes[i] += 1;
            self.policies[i].end_episode();
            self.policies[i].reset(derive_seed(derive_seed(self.seed, i as u64), self.episodes[i]));
        }
    }
}
