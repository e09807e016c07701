//! `--device cpu|wgpu` for `train`, `eval` and `export`: the clap value parser (names and help
//! from the agents crate's device registry) and placing a loaded learner on the chosen device.
//! `training.device` in a training config is the same choice; the flag wins.

use anyhow::{Context, Result};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use splitwise_agents::Learner;
use splitwise_agents::compute_device::{self, ComputeDevice, Device};

/// The `--device` parser: the registry's names, each with its help in `--help`.
pub fn parser() -> impl TypedValueParser<Value = ComputeDevice> {
    PossibleValuesParser::new(compute_device::ALL.iter().map(|e| PossibleValue::new(e.name).help(e.help)))
        .map(|name| ComputeDevice::from_name(&name).expect("clap only passes the registry's names"))
}

/// The burn device, or an error that says what to install or rebuild.
pub fn open(device: ComputeDevice, what: &str) -> Result<Device> {
    device.open().with_context(|| format!("{what}: cannot use device {} (--device, training.device)", device.name()))
}

/// Where a learner acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acting {
    /// On the CPU whatever `device` is (training: a rollout step is a batch of `n_envs` rows).
    OnCpu,
    /// On `device` too (evaluation, export).
    OnDevice,
}

/// Puts `agent`'s networks on `device` (a no-op on `cpu`, where learners are built).
pub fn place(agent: &mut Learner, device: ComputeDevice, acting: Acting, what: &str) -> Result<()> {
    if device == ComputeDevice::Cpu {
        return Ok(());
    }
    let learn = open(device, what)?;
    let act = match acting {
        Acting::OnCpu => Device::flex(),
        Acting::OnDevice => learn.clone(),
    };
    agent.place(&learn, &act);
    Ok(())
}

/// In a build with the wgpu backend (enabled through this crate or the agents crate), burn's
/// `Device::default()` is the GPU, and burn loads an optimizer's saved moments there before
/// moving them to their parameters' device: resuming a CPU run would open the GPU (and fail on
/// a machine without one). `BURN_DEVICE=flex` (flex is in every build) makes the default the
/// CPU unless the user set it; our own code always names its devices. Call first thing in
/// `main`, before any thread starts.
pub fn default_burn_device_to_cpu() {
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: called at the start of `main`, while the process has a single thread, so no
        // other thread can read the environment concurrently.
        unsafe { std::env::set_var("BURN_DEVICE", "flex") };
    }
}
