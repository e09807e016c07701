//! Devices (system-model.md §3, §6): profiles with the roofline compute time
//! `max(FLOPs/(η_c·F_peak), bytes/(η_m·BW_mem)) + launch overhead` and the edge energy model
//! `P_active·t_compute + P_tx·t_tx + P_rx·t_rx + P_idle·t_wait`.
//!
//! Every preset number carries its source or is marked as an assumption. Peak FLOP/s are for
//! the precision the model runs in (FP16/BF16 weights by default).

use crate::validate::{InvalidField, Validation, in_range, non_negative, positive};
use serde::{Deserialize, Serialize};

/// A device profile. Memory is what the model may use (after OS/runtime reserve).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    pub name: String,
    pub peak_flops: f64,
    pub compute_efficiency: f64,
    pub memory_bandwidth_bytes_per_s: f64,
    pub memory_efficiency: f64,
    /// Memory available to the model's weights, KV cache and workspace.
    pub usable_memory_bytes: f64,
    /// Fixed cost per compute segment (kernel launch / dispatch).
    pub launch_overhead_s: f64,
    /// Bandwidth at which weights that become resident are loaded (storage → memory).
    pub storage_bandwidth_bytes_per_s: f64,
    pub active_power_w: f64,
    pub idle_power_w: f64,
    pub tx_power_w: f64,
    pub rx_power_w: f64,
}

/// Named presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DevicePreset {
    #[serde(rename = "jetson-orin-nx-16gb")]
    JetsonOrinNx16gb,
    #[serde(rename = "galaxy-s23")]
    GalaxyS23,
    #[serde(rename = "raspberry-pi-5")]
    RaspberryPi5,
    #[serde(rename = "a100-80gb-sxm")]
    A100_80gbSxm,
}

const GB: f64 = 1e9;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Assumed efficiencies (fractions of datasheet peak that LLM kernels reach): memory-bound decode
/// kernels typically reach 70–85 % of peak DRAM bandwidth, dense FP16 GEMMs about half of the
/// tensor-core peak on small batches. Assumptions, not measurements: override per scenario.
const EDGE_GPU_COMPUTE_EFFICIENCY: f64 = 0.5;
const CPU_COMPUTE_EFFICIENCY: f64 = 0.6;
const MEMORY_EFFICIENCY: f64 = 0.8;

impl DevicePreset {
    pub const ALL: [DevicePreset; 4] =
        [Self::JetsonOrinNx16gb, Self::GalaxyS23, Self::RaspberryPi5, Self::A100_80gbSxm];

    pub fn profile(self) -> DeviceProfile {
        match self {
            // NVIDIA Jetson Orin NX 16GB datasheet (DS-10712-001): 1024-core Ampere GPU with 32
            // tensor cores, 1.88 TFLOP/s FP32; ≈ 15 TFLOP/s dense FP16 tensor (system-model §3);
            // 16 GB LPDDR5 at 102.4 GB/s; 10/15/25 W modes. Active 20 W in the 25 W mode and
            // 5 W idle (system-model §3). Usable memory: 16 GB less ≈ 2 GB for L4T and the CUDA
            // runtime (assumption). NVMe storage ≈ 2 GB/s sequential read (assumption, PCIe 4 x4
            // M.2 on the reference carrier). Radio: an LTE/5G M.2 modem, 2.0 W transmitting,
            // 1.0 W receiving (assumption within the 1.2–2.5 W range measured by Huang et al.,
            // MobiSys 2012, for LTE).
            Self::JetsonOrinNx16gb => DeviceProfile {
                name: "jetson-orin-nx-16gb".into(),
                peak_flops: 15e12,
                compute_efficiency: EDGE_GPU_COMPUTE_EFFICIENCY,
                memory_bandwidth_bytes_per_s: 102.4 * GB,
                memory_efficiency: MEMORY_EFFICIENCY,
                usable_memory_bytes: 14.0 * GB,
                launch_overhead_s: 20e-6,
                storage_bandwidth_bytes_per_s: 2.0 * GB,
                active_power_w: 20.0,
                idle_power_w: 5.0,
                tx_power_w: 2.0,
                rx_power_w: 1.0,
            },
            // Samsung Galaxy S23 (Snapdragon 8 Gen 2): Adreno 740, FP32 estimates 2–3.5 TFLOP/s
            // (system-model §3); FP16 at twice a mid estimate of 2.5 → 5 TFLOP/s (assumption).
            // 8 GB LPDDR5X-4200 on a 64-bit bus = 67.2 GB/s. Android leaves one app ≈ 4 GB
            // (assumption). 6 W sustained, 1 W idle (system-model §3: 4–8 W, ≈ 1 W). UFS 4.0
            // ≈ 4 GB/s read (Samsung UFS 4.0 announcement, 2022). 5G radio 2.5 W tx / 1.5 W rx
            // (assumption after Narayanan et al., SIGCOMM 2020 Workshop, "A first look at
            // commercial 5G performance on smartphones").
            Self::GalaxyS23 => DeviceProfile {
                name: "galaxy-s23".into(),
                peak_flops: 5e12,
                compute_efficiency: EDGE_GPU_COMPUTE_EFFICIENCY,
                memory_bandwidth_bytes_per_s: 67.2 * GB,
                memory_efficiency: MEMORY_EFFICIENCY,
                usable_memory_bytes: 4.0 * GB,
                launch_overhead_s: 30e-6,
                storage_bandwidth_bytes_per_s: 4.0 * GB,
                active_power_w: 6.0,
                idle_power_w: 1.0,
                tx_power_w: 2.5,
                rx_power_w: 1.5,
            },
            // Raspberry Pi 5: 4× Cortex-A76 at 2.4 GHz, ≈ 154 GFLOP/s FP32 peak (system-model §3);
            // LLM runtimes on the Pi compute in FP32 from FP16 weights, so FP32 peak is used
            // (assumption). LPDDR4X-4267 on 32 bits = 17.1 GB/s. 8 GB, ≈ 1.5 GB kept by the OS
            // (assumption). 7.5 W load, 2.7 W idle (system-model §3). NVMe HAT on PCIe 2.0 x1
            // ≈ 0.45 GB/s (assumption). Wi-Fi radio 1.0 W tx / 0.6 W rx (assumption).
            Self::RaspberryPi5 => DeviceProfile {
                name: "raspberry-pi-5".into(),
                peak_flops: 154e9,
                compute_efficiency: CPU_COMPUTE_EFFICIENCY,
                memory_bandwidth_bytes_per_s: 17.1 * GB,
                memory_efficiency: MEMORY_EFFICIENCY,
                usable_memory_bytes: 6.5 * GB,
                launch_overhead_s: 5e-6,
                storage_bandwidth_bytes_per_s: 0.45 * GB,
                active_power_w: 7.5,
                idle_power_w: 2.7,
                tx_power_w: 1.0,
                rx_power_w: 0.6,
            },
            // NVIDIA A100 80GB SXM datasheet: 312 TFLOP/s BF16 dense, 2,039 GB/s HBM2e, 80 GB
            // (≈ 2 GiB kept by the runtime: assumption), 400 W TDP. Idle 50 W (assumption).
            // Storage is the serving node's NVMe (assumption 5 GB/s); radios do not apply.
            Self::A100_80gbSxm => DeviceProfile {
                name: "a100-80gb-sxm".into(),
                peak_flops: 312e12,
                compute_efficiency: 0.5,
                memory_bandwidth_bytes_per_s: 2039.0 * GB,
                memory_efficiency: MEMORY_EFFICIENCY,
                usable_memory_bytes: 80.0 * GB - 2.0 * GIB,
                launch_overhead_s: 10e-6,
                storage_bandwidth_bytes_per_s: 5.0 * GB,
                active_power_w: 400.0,
                idle_power_w: 50.0,
                tx_power_w: 0.0,
                rx_power_w: 0.0,
            },
        }
    }
}

impl DeviceProfile {
    pub fn validate(&self) -> Validation {
        positive("peak_flops", self.peak_flops, "FLOP/s")?;
        in_range("compute_efficiency", self.compute_efficiency, 1e-3, 1.0, "fraction of peak")?;
        positive("memory_bandwidth_bytes_per_s", self.memory_bandwidth_bytes_per_s, "B/s")?;
        in_range("memory_efficiency", self.memory_efficiency, 1e-3, 1.0, "fraction of peak")?;
        positive("usable_memory_bytes", self.usable_memory_bytes, "bytes")?;
        non_negative("launch_overhead_s", self.launch_overhead_s, "seconds")?;
        positive("storage_bandwidth_bytes_per_s", self.storage_bandwidth_bytes_per_s, "B/s")?;
        for (field, v) in [
            ("active_power_w", self.active_power_w),
            ("idle_power_w", self.idle_power_w),
            ("tx_power_w", self.tx_power_w),
            ("rx_power_w", self.rx_power_w),
        ] {
            non_negative(field, v, "watts")?;
        }
        if self.idle_power_w > self.active_power_w {
            return Err(InvalidField::new(
                "idle_power_w",
                self.idle_power_w,
                format!("must not exceed active_power_w = {}", self.active_power_w),
            ));
        }
        Ok(())
    }

    /// Roofline time of one compute segment at full availability, without launch overhead.
    #[inline]
    pub fn roofline_s(&self, flops: f64, bytes: f64) -> f64 {
        let compute = flops / (self.compute_efficiency * self.peak_flops);
        let memory = bytes / (self.memory_efficiency * self.memory_bandwidth_bytes_per_s);
        compute.max(memory)
    }

    /// Roofline time plus launch overhead; zero for an empty segment.
    #[inline]
    pub fn segment_time_s(&self, flops: f64, bytes: f64) -> f64 {
        if flops == 0.0 && bytes == 0.0 { 0.0 } else { self.roofline_s(flops, bytes) + self.launch_overhead_s }
    }

    /// Time to load `bytes` of weights from storage.
    pub fn load_time_s(&self, bytes: f64) -> f64 {
        bytes / self.storage_bandwidth_bytes_per_s
    }
}

/// A device in a scenario: a preset plus optional overrides of any of its numbers (a field left
/// out keeps the preset value).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    pub preset: DevicePreset,
    pub peak_flops: Option<f64>,
    pub compute_efficiency: Option<f64>,
    pub memory_bandwidth_bytes_per_s: Option<f64>,
    pub memory_efficiency: Option<f64>,
    pub usable_memory_bytes: Option<f64>,
    pub launch_overhead_s: Option<f64>,
    pub storage_bandwidth_bytes_per_s: Option<f64>,
    pub active_power_w: Option<f64>,
    pub idle_power_w: Option<f64>,
    pub tx_power_w: Option<f64>,
    pub rx_power_w: Option<f64>,
}

impl DeviceConfig {
    pub fn preset(preset: DevicePreset) -> Self {
        Self {
            preset,
            peak_flops: None,
            compute_efficiency: None,
            memory_bandwidth_bytes_per_s: None,
            memory_efficiency: None,
            usable_memory_bytes: None,
            launch_overhead_s: None,
            storage_bandwidth_bytes_per_s: None,
            active_power_w: None,
            idle_power_w: None,
            tx_power_w: None,
            rx_power_w: None,
        }
    }

    pub fn resolve(&self) -> Result<DeviceProfile, InvalidField> {
        let mut p = self.preset.profile();
        for (dst, v) in [
            (&mut p.peak_flops, self.peak_flops),
            (&mut p.compute_efficiency, self.compute_efficiency),
            (&mut p.memory_bandwidth_bytes_per_s, self.memory_bandwidth_bytes_per_s),
            (&mut p.memory_efficiency, self.memory_efficiency),
            (&mut p.usable_memory_bytes, self.usable_memory_bytes),
            (&mut p.launch_overhead_s, self.launch_overhead_s),
            (&mut p.storage_bandwidth_bytes_per_s, self.storage_bandwidth_bytes_per_s),
            (&mut p.active_power_w, self.active_power_w),
            (&mut p.idle_power_w, self.idle_power_w),
            (&mut p.tx_power_w, self.tx_power_w),
            (&mut p.rx_power_w, self.rx_power_w),
        ] {
            if let Some(v) = v {
                *dst = v;
            }
        }
        p.validate()?;
        Ok(p)
    }
}

/// Edge energy of a span of work (system-model §6).
#[inline]
pub fn edge_energy_j(p: &DeviceProfile, compute_s: f64, tx_s: f64, rx_s: f64, wait_s: f64) -> f64 {
    p.active_power_w * compute_s + p.tx_power_w * tx_s + p.rx_power_w * rx_s + p.idle_power_w * wait_s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelCosts, ModelPreset, Pass, Precisions};

    #[test]
    fn presets_are_valid() {
        for d in DevicePreset::ALL {
            d.profile().validate().unwrap();
        }
    }

    #[test]
    fn llama_7b_decode_on_jetson_is_memory_bound_near_spec_estimate() {
        // system-model §0: ≈ 4 ms per layer (≈ 130 ms for 32 layers) on a Jetson Orin NX.
        // One layer = 404.8 MB of FP16 weights; at 0.8 × 102.4 GB/s that is 4.94 ms; the FLOPs
        // (0.4 GFLOP) would take 0.054 ms at 0.5 × 15 TFLOP/s, so the layer is memory-bound.
        let j = DevicePreset::JetsonOrinNx16gb.profile();
        let c = ModelCosts::new(&ModelPreset::Llama7b.arch(), Precisions { weight_bits: 16, kv_bits: 16 });
        let mut layer = c.head.scaled(32.0);
        layer.add(&c.ffn_first);
        layer.add(&c.ffn_down);
        let pass = Pass::decode(127.0);
        let flops = layer.flops(pass.n, pass.attended_pairs());
        let bytes = layer.bytes(pass.n, pass.distinct_keys());
        let t = j.roofline_s(flops, bytes);
        assert!((t - bytes / (0.8 * 102.4e9)).abs() < 1e-15, "memory-bound");
        assert!((t * 1e3 - 4.94).abs() < 0.05, "{} ms", t * 1e3);
        // Whole model on an idle A100 ≈ 6–8 ms per token (system-model §0).
        let a = DevicePreset::A100_80gbSxm.profile();
        let model_bytes = c.total_weight_bytes();
        let t_a100 = a.roofline_s(0.0, model_bytes);
        assert!((t_a100 * 1e3 - 8.26).abs() < 0.05, "{} ms", t_a100 * 1e3);
    }

    #[test]
    fn prefill_is_compute_bound() {
        // 128-token prefill of one LLaMA-7B layer: 128 × 0.405 GFLOP = 51.8 GFLOP → 6.9 ms at
        // 7.5 TFLOP/s, vs 4.94 ms of weight traffic: compute-bound.
        let j = DevicePreset::JetsonOrinNx16gb.profile();
        let c = ModelCosts::new(&ModelPreset::Llama7b.arch(), Precisions { weight_bits: 16, kv_bits: 16 });
        let mut layer = c.head.scaled(32.0);
        layer.add(&c.ffn_first);
        layer.add(&c.ffn_down);
        let pass = Pass::prefill(128.0);
        let flops = layer.flops(pass.n, pass.attended_pairs());
        let t = j.roofline_s(flops, layer.bytes(pass.n, pass.distinct_keys()));
        assert_eq!(t, flops / (0.5 * 15e12));
    }

    #[test]
    fn energy_adds_the_four_terms() {
        // 20 W × 0.1 s + 2 W × 0.05 s + 1 W × 0.02 s + 5 W × 0.3 s = 2 + 0.1 + 0.02 + 1.5.
        let j = DevicePreset::JetsonOrinNx16gb.profile();
        assert!((edge_energy_j(&j, 0.1, 0.05, 0.02, 0.3) - 3.62).abs() < 1e-12);
    }

    #[test]
    fn overrides_apply_and_are_validated() {
        let cfg: DeviceConfig = toml::from_str("preset = \"raspberry-pi-5\"\nusable_memory_bytes = 4e9").unwrap();
        assert_eq!(cfg.resolve().unwrap().usable_memory_bytes, 4e9);
        let bad: DeviceConfig = toml::from_str("preset = \"raspberry-pi-5\"\nmemory_efficiency = 1.5").unwrap();
        assert_eq!(bad.resolve().unwrap_err().field, "memory_efficiency");
        assert!(toml::from_str::<DeviceConfig>("preset = \"pi-6\"").is_err());
        assert!(toml::from_str::<DeviceConfig>("preset = \"galaxy-s23\"\npeak_flop = 1").is_err());
        for d in DevicePreset::ALL {
            let text = format!("preset = \"{}\"", d.profile().name);
            assert_eq!(toml::from_str::<DeviceConfig>(&text).unwrap().preset, d);
        }
    }
}
