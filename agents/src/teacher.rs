//! What a learner imitating a teacher needs of it ([`crate::config::Imitation`]): the teacher's
//! action for every member of the vector env, and word of each episode end (a teacher with
//! memory, e.g. a hold clock, starts its next episode afresh). The caller builds it (the app
//! resolves `imitation.teacher`, a policy spec, into one policy per member); this crate never
//! sees what the teacher is.

use splitwise_env::api::Env;
use splitwise_env::vector::{EpisodeRecord, VecEnv};

pub trait Teacher<E: Env> {
    /// Writes the teacher's action for every member's current state into `out`
    /// (`n_envs × n_components`, member-major), or says why it has none (e.g. it chose a plan
    /// the action space cannot express). The members are lent mutably because what a policy may
    /// know of the decided slot is drawn on first asking (`PartitionEnv::available_edge_memory_bytes`);
    /// the teacher must not step them.
    fn act(&mut self, venv: &mut VecEnv<E>, out: &mut [usize]) -> Result<(), String>;

    /// The members whose episode ended at the last vector step (their current state is the
    /// next episode's first).
    fn episodes_ended(&mut self, _finished: &[EpisodeRecord]) {}
}
