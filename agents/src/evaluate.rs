//! Policy evaluation over a vector env: a fixed number of episodes per member (each member's
//! first ones), so short episodes are not over-represented the way "the first N episodes to
//! finish" would over-represent them.

use crate::hppo::HighHold;
use crate::learner::Acts;
use crate::ppo::{ActionChoice, PpoError};
use splitwise_env::api::Env;
use splitwise_env::vector::{EpisodeRecord, VecEnv};

/// Resets `venv` with `seed` and runs `episodes_per_member` episodes on every member with
/// deterministic (greedy legal) actions, under the members' conditional masks. Returns the records grouped by member, in completion
/// order within each member.
pub fn evaluate<A: Acts, E: Env>(
    agent: &A,
    venv: &mut VecEnv<E>,
    episodes_per_member: usize,
    seed: u64,
) -> Result<Vec<EpisodeRecord>, PpoError> {
    venv.reset(seed);
    let n = venv.n_envs();
    let mut per_member: Vec<Vec<EpisodeRecord>> = vec![Vec::new(); n];
    let mut actions = vec![0; n * agent.n_components()];
    let mut hold = HighHold::default();
    while per_member.iter().any(|done| done.len() < episodes_per_member) {
        let members = venv.members();
        let mut conditional = |i: usize, prefix: &[usize], out: &mut [bool]| members[i].conditional_mask(prefix, out);
        agent.act_holding_into_with(
            venv.obs(),
            venv.masks(),
            ActionChoice::Deterministic,
            Some(&mut conditional),
            &mut hold,
            &mut actions,
        )?;
        venv.step(&actions)?;
        for record in venv.finished() {
            hold.end_episode(record.env_index);
            let done = &mut per_member[record.env_index];
            if done.len() < episodes_per_member {
                done.push(record.clone());
            }
        }
    }
    Ok(per_member.into_iter().flatten().collect())
}
