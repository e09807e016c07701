//! The one plan type every action space reduces to (system-model.md §9): per layer, how many
//! attention heads run on the edge and where the FFN runs (edge / cloud / split), plus the
//! boundary precision. A layer split (ALS) and a per-layer placement (SplitLLM) are special
//! cases. This module also owns edge-memory feasibility, which produces the action masks.

use crate::model::ModelCosts;
use serde::{Deserialize, Serialize};

/// Where a layer's FFN runs. `Split`: the first projection(s) on the edge, the down projection
/// on the cloud (the intermediate activation crosses the link).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FfnMode {
    Cloud,
    Split,
    Edge,
}

impl FfnMode {
    /// Action index order: cloud < split < edge (increasing edge memory).
    pub const ALL: [FfnMode; 3] = [FfnMode::Cloud, FfnMode::Split, FfnMode::Edge];

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Boundary precision of every tensor that crosses the link (Splitwise's adaptive quantiser).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Precision {
    #[serde(rename = "16")]
    Bits16,
    #[serde(rename = "8")]
    Bits8,
    #[serde(rename = "4")]
    Bits4,
}

impl Precision {
    /// Action index order.
    pub const ALL: [Precision; 3] = [Precision::Bits16, Precision::Bits8, Precision::Bits4];

    pub fn bits(self) -> u8 {
        match self {
            Precision::Bits16 => 16,
            Precision::Bits8 => 8,
            Precision::Bits4 => 4,
        }
    }

    pub fn from_bits(bits: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.bits() == bits)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Placement of one layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayerPlacement {
    pub edge_heads: u16,
    pub ffn: FfnMode,
}

impl LayerPlacement {
    pub const CLOUD: LayerPlacement = LayerPlacement { edge_heads: 0, ffn: FfnMode::Cloud };

    pub fn edge(n_heads: u32) -> Self {
        Self { edge_heads: n_heads as u16, ffn: FfnMode::Edge }
    }

    pub fn is_cloud(&self) -> bool {
        *self == Self::CLOUD
    }

    pub fn is_full_edge(&self, n_heads: u32) -> bool {
        u32::from(self.edge_heads) == n_heads && self.ffn == FfnMode::Edge
    }
}

/// A complete partition plan.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Plan {
    pub layers: Vec<LayerPlacement>,
    pub precision: Precision,
}

impl Plan {
    pub fn cloud_only(n_layers: u32, precision: Precision) -> Self {
        Self { layers: vec![LayerPlacement::CLOUD; n_layers as usize], precision }
    }

    pub fn edge_only(n_layers: u32, n_heads: u32, precision: Precision) -> Self {
        Self { layers: vec![LayerPlacement::edge(n_heads); n_layers as usize], precision }
    }

    /// ALS layer split: layers `< split` on the edge, the rest on the cloud (0 = cloud-only,
    /// `n_layers` = edge-only).
    pub fn layer_split(n_layers: u32, n_heads: u32, split: u32, precision: Precision) -> Self {
        assert!(split <= n_layers, "split {split} beyond {n_layers} layers");
        let layers = (0..n_layers)
            .map(|l| if l < split { LayerPlacement::edge(n_heads) } else { LayerPlacement::CLOUD })
            .collect();
        Self { layers, precision }
    }

    /// SplitLLM placement: one bit per layer (true = edge), several switches allowed.
    pub fn from_edge_layers(edge: &[bool], n_heads: u32, precision: Precision) -> Self {
        let layers =
            edge.iter().map(|&e| if e { LayerPlacement::edge(n_heads) } else { LayerPlacement::CLOUD }).collect();
        Self { layers, precision }
    }

    pub fn is_cloud_only(&self) -> bool {
        self.layers.iter().all(LayerPlacement::is_cloud)
    }

    pub fn is_edge_only(&self, n_heads: u32) -> bool {
        self.layers.iter().all(|l| l.is_full_edge(n_heads))
    }

    /// Number of leading layers entirely on the edge (the split layer of a layer split).
    pub fn leading_edge_layers(&self, n_heads: u32) -> u32 {
        self.layers.iter().take_while(|l| l.is_full_edge(n_heads)).count() as u32
    }

    /// Checks the plan's shape against the model (layer count, head counts).
    pub fn check_shape(&self, n_layers: u32, n_heads: u32) -> Result<(), String> {
        if self.layers.len() != n_layers as usize {
            return Err(format!("plan has {} layers, the model {n_layers}", self.layers.len()));
        }
        if let Some((l, p)) = self.layers.iter().enumerate().find(|(_, p)| u32::from(p.edge_heads) > n_heads) {
            return Err(format!("layer {l} puts {} heads on the edge, the model has {n_heads}", p.edge_heads));
        }
        Ok(())
    }

    /// The first `k` layers entirely on the edge (privacy floor: raw tokens and early hidden
    /// states never leave the device).
    pub fn respects_privacy_floor(&self, k: u32, n_heads: u32) -> bool {
        self.layers.iter().take(k as usize).all(|l| l.is_full_edge(n_heads))
    }
}

/// Edge memory needed by a plan (system-model §3: edge-resident weights plus their KV cache must
/// fit in the edge's available memory).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryModel {
    pub head_weight_bytes: f64,
    /// KV cache of one head for `concurrency` requests at the maximum context.
    pub head_kv_bytes: f64,
    pub ffn_first_weight_bytes: f64,
    pub ffn_down_weight_bytes: f64,
    pub embedding_weight_bytes: f64,
    pub lm_head_extra_weight_bytes: f64,
    /// Activation buffers when anything runs on the edge (assumption: `concurrency` prefills of
    /// the longest prompt, holding the FFN intermediate plus two residual-sized buffers, FP16).
    pub workspace_bytes: f64,
    pub n_heads: u32,
}

impl MemoryModel {
    pub fn new(costs: &ModelCosts, max_context_tokens: f64, max_prompt_tokens: f64, concurrency: u32) -> Self {
        let a = &costs.arch;
        let k = f64::from(concurrency);
        Self {
            head_weight_bytes: costs.head.weight_bytes,
            head_kv_bytes: costs.kv_bytes_per_head_token * max_context_tokens * k,
            ffn_first_weight_bytes: costs.ffn_first.weight_bytes,
            ffn_down_weight_bytes: costs.ffn_down.weight_bytes,
            embedding_weight_bytes: costs.embedding_weight_bytes,
            lm_head_extra_weight_bytes: costs.lm_head_extra_weight_bytes(),
            workspace_bytes: k * max_prompt_tokens * (a.d_ff as f64 + 2.0 * a.d_model as f64) * 2.0,
            n_heads: a.n_heads,
        }
    }

    /// Edge bytes of one layer placement (weights + KV cache).
    #[inline]
    pub fn layer_bytes(&self, p: LayerPlacement) -> f64 {
        let heads = f64::from(p.edge_heads) * (self.head_weight_bytes + self.head_kv_bytes);
        let ffn = match p.ffn {
            FfnMode::Cloud => 0.0,
            FfnMode::Split => self.ffn_first_weight_bytes,
            FfnMode::Edge => self.ffn_first_weight_bytes + self.ffn_down_weight_bytes,
        };
        heads + ffn
    }

    /// Bytes that are on the edge whenever anything is (embedding + workspace), and the LM head
    /// when the last layer's output stays on the edge.
    #[inline]
    pub fn fixed_bytes(&self, any_edge: bool, last_on_edge: bool) -> f64 {
        if !any_edge {
            return 0.0;
        }
        let lm = if last_on_edge { self.lm_head_extra_weight_bytes } else { 0.0 };
        self.embedding_weight_bytes + self.workspace_bytes + lm
    }

    /// Total edge bytes of a plan.
    pub fn plan_bytes(&self, plan: &Plan) -> f64 {
        let any_edge = !plan.is_cloud_only();
        let last_on_edge = plan.layers.last().is_some_and(|l| l.ffn == FfnMode::Edge);
        plan.layers.iter().map(|&p| self.layer_bytes(p)).sum::<f64>() + self.fixed_bytes(any_edge, last_on_edge)
    }

    /// Weight bytes (no KV, no workspace) of a layer placement: what must be loaded from storage
    /// when it becomes resident.
    pub fn layer_weight_bytes(&self, p: LayerPlacement) -> f64 {
        let heads = f64::from(p.edge_heads) * self.head_weight_bytes;
        let ffn = match p.ffn {
            FfnMode::Cloud => 0.0,
            FfnMode::Split => self.ffn_first_weight_bytes,
            FfnMode::Edge => self.ffn_first_weight_bytes + self.ffn_down_weight_bytes,
        };
        heads + ffn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelPreset, Precisions};

    fn llama7b_memory() -> MemoryModel {
        let c = ModelCosts::new(&ModelPreset::Llama7b.arch(), Precisions { weight_bits: 16, kv_bits: 16 });
        MemoryModel::new(&c, 512.0, 256.0, 1)
    }

    #[test]
    fn layer_split_special_cases() {
        let p = Plan::layer_split(4, 8, 2, Precision::Bits8);
        assert_eq!(p.leading_edge_layers(8), 2);
        assert!(Plan::layer_split(4, 8, 0, Precision::Bits16).is_cloud_only());
        assert!(Plan::layer_split(4, 8, 4, Precision::Bits16).is_edge_only(8));
        let s = Plan::from_edge_layers(&[true, false, true, true], 8, Precision::Bits16);
        assert_eq!(s.leading_edge_layers(8), 1);
        assert!(!s.is_cloud_only() && !s.is_edge_only(8));
        assert!(s.respects_privacy_floor(1, 8) && !s.respects_privacy_floor(2, 8));
    }

    #[test]
    fn edge_only_llama_7b_bytes_by_hand() {
        // Weights: 6,738,415,616 params × 2 B. KV: 32 layers × 32 heads × 2·128 values × 2 B ×
        // 512 tokens = 268,435,456 B. Workspace: 256 × (11008 + 8192) × 2 B = 9,830,400 B.
        let m = llama7b_memory();
        let plan = Plan::edge_only(32, 32, Precision::Bits16);
        let expected = 6_738_415_616.0 * 2.0 + 268_435_456.0 + 9_830_400.0;
        assert!((m.plan_bytes(&plan) - expected).abs() < 1.0, "{}", m.plan_bytes(&plan));
        assert_eq!(m.plan_bytes(&Plan::cloud_only(32, Precision::Bits16)), 0.0);
    }

    #[test]
    fn split_ffn_keeps_two_thirds_of_llama_ffn_on_edge() {
        let m = llama7b_memory();
        let split = m.layer_bytes(LayerPlacement { edge_heads: 0, ffn: FfnMode::Split });
        let edge = m.layer_bytes(LayerPlacement { edge_heads: 0, ffn: FfnMode::Edge });
        assert!((split / edge - 2.0 / 3.0).abs() < 1e-3);
    }

    #[test]
    fn precision_serde_uses_bits() {
        #[derive(Deserialize)]
        struct W {
            p: Precision,
        }
        let w: W = toml::from_str("p = \"8\"").unwrap();
        assert_eq!(w.p.bits(), 8);
        assert_eq!(Precision::from_bits(4), Some(Precision::Bits4));
        assert_eq!(Precision::from_bits(12), None);
    }
}
