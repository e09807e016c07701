//! Where the networks run: burn's flex backend on the CPU (every build) or its wgpu backend on a
//! GPU (the `wgpu` feature: Vulkan, Metal, DX12, or Mesa's software Vulkan, lavapipe). One
//! registry, [`ALL`], from which the CLI's `--device` values and their help derive (the
//! config's spelling, serde's lowercase names, is tested to be the registry's).
//!
//! A learner is always built on the CPU (its initial weights come from the seed's stream on the
//! host, so they are the same on every device) and then placed ([`crate::Learner::place`]):
//! updates run on the learning device, acting on the acting device. Training acts on the CPU
//! whatever the learning device (a rollout step is a batch of `n_envs` rows, where a GPU's
//! launch and read-back cost more than flex's whole forward pass: the split RLlib makes between
//! CPU env runners and a GPU learner); evaluation acts on the chosen device.

/// burn's device type, for callers without a burn dependency of their own (the app).
pub use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// A compute device for the networks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComputeDevice {
    /// burn's flex backend (the default and the reference: every documented result is on it).
    #[default]
    Cpu,
    /// burn's wgpu backend on the first adapter wgpu prefers (a discrete GPU first).
    Wgpu,
}

/// One device's entry in the registry.
pub struct DeviceEntry {
    pub device: ComputeDevice,
    pub name: &'static str,
    pub help: &'static str,
}

/// The devices, in the order the CLI lists them.
pub const ALL: &[DeviceEntry] = &[
    DeviceEntry { device: ComputeDevice::Cpu, name: "cpu", help: "burn's flex backend on the CPU (every build)" },
    DeviceEntry {
        device: ComputeDevice::Wgpu,
        name: "wgpu",
        help: "burn's wgpu backend on a GPU (Vulkan, Metal, DX12; Mesa's lavapipe without one); needs a build \
               with `--features wgpu`",
    },
];

/// Why a device cannot be used.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DeviceError {
    #[error("unknown device `{0}` (allowed: {allowed})", allowed = names().join(", "))]
    Unknown(String),
    #[error(
        "device `wgpu` needs a splitwise built with the wgpu backend: `cargo build --release --features wgpu` \
         (this build has the CPU backend only)"
    )]
    NotBuilt,
    #[error(
        "device `wgpu`: no usable GPU adapter ({0}). Install a Vulkan driver and its loader (on Debian: \
         `apt-get install libvulkan1 mesa-vulkan-drivers`, which also gives a software GPU), or use --device cpu"
    )]
    NoAdapter(String),
}

/// The registry's names.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|e| e.name).collect()
}

impl ComputeDevice {
    /// The default (serde skips it, so configs without the field stay as they were).
    pub fn is_cpu(&self) -> bool {
        *self == ComputeDevice::Cpu
    }

    pub fn name(self) -> &'static str {
        entry(self).name
    }

    /// The device called `name`.
    pub fn from_name(name: &str) -> Result<Self, DeviceError> {
        ALL.iter().find(|e| e.name == name).map(|e| e.device).ok_or_else(|| DeviceError::Unknown(name.to_string()))
    }

    /// Whether this build can open the device at all (an adapter may still be missing).
    pub fn built(self) -> bool {
        match self {
            ComputeDevice::Cpu => true,
            ComputeDevice::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// The burn device. `wgpu` is initialised once per process (wgpu's runtime cannot be
    /// initialised twice); a build without the feature, or a machine without an adapter, is an
    /// error, never a panic.
    pub fn open(self) -> Result<Device, DeviceError> {
        match self {
            ComputeDevice::Cpu => Ok(Device::flex()),
            ComputeDevice::Wgpu => open_wgpu(),
        }
    }
}

fn entry(device: ComputeDevice) -> &'static DeviceEntry {
    ALL.iter().find(|e| e.device == device).expect("every device has a registry entry (tested)")
}

#[cfg(not(feature = "wgpu"))]
fn open_wgpu() -> Result<Device, DeviceError> {
    Err(DeviceError::NotBuilt)
}

#[cfg(feature = "wgpu")]
fn open_wgpu() -> Result<Device, DeviceError> {
    use std::sync::OnceLock;
    static WGPU: OnceLock<Result<Device, String>> = OnceLock::new();
    WGPU.get_or_init(|| {
        // wgpu reports a missing adapter as an error, but a broken driver or loader can panic
        // inside it: either way the user gets a message, not an abort (and not the default
        // hook's panic report before it: the hook is silenced while the device starts).
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let started = std::panic::catch_unwind(|| Device::wgpu_options().init());
        std::panic::set_hook(hook);
        match started {
            Ok(Ok(device)) => Ok(device),
            Ok(Err(e)) => Err(e.to_string()),
            Err(panic) => Err(panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the wgpu runtime panicked while starting".to_string())),
        }
    })
    .clone()
    .map_err(DeviceError::NoAdapter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_device_has_one_entry_and_names_round_trip() {
        for d in [ComputeDevice::Cpu, ComputeDevice::Wgpu] {
            assert_eq!(ALL.iter().filter(|e| e.device == d).count(), 1);
            assert_eq!(ComputeDevice::from_name(d.name()), Ok(d));
            let json = serde_json_name(d);
            assert_eq!(json, d.name(), "the config spelling is the CLI's");
        }
        let err = ComputeDevice::from_name("cuda").unwrap_err().to_string();
        assert_eq!(err, "unknown device `cuda` (allowed: cpu, wgpu)");
    }

    fn serde_json_name(d: ComputeDevice) -> String {
        serde_json::to_value(d).unwrap().as_str().unwrap().to_string()
    }

    #[test]
    fn cpu_opens_everywhere_and_wgpu_says_what_is_missing() {
        assert!(ComputeDevice::Cpu.open().is_ok());
        if !ComputeDevice::Wgpu.built() {
            let err = ComputeDevice::Wgpu.open().unwrap_err();
            assert_eq!(err, DeviceError::NotBuilt);
            assert!(err.to_string().contains("--features wgpu"), "{err}");
        }
    }
}
