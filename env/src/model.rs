//! The LLM being partitioned (system-model.md §2): architecture presets and the per-sub-block
//! costs every plan is built from — FLOPs, weight bytes, KV-cache bytes and the bytes that cross
//! the link at a boundary — for prefill (n new tokens) and decode (one token with the KV cache).
//!
//! Sub-blocks of a layer: each attention head (its Q/K/V slices, its KV cache, its slice of W_O)
//! and the FFN (first projection(s) and down projection). Heads of one layer cost the same, so
//! per-head numbers are per-layer numbers divided by the head count. Biases and norm parameters
//! are attached to the sub-block that uses them, so the sub-blocks plus embeddings add up to the
//! published parameter count exactly (a test checks it).

use crate::validate::{InvalidField, Validation};
use serde::{Deserialize, Serialize};

/// Feed-forward block structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FfnKind {
    /// Two matrices (up, down) with GELU: GPT-2.
    Gelu,
    /// Three matrices (gate, up, down) with SwiGLU: LLaMA.
    SwiGlu,
}

impl FfnKind {
    /// Matrices on the edge side when the FFN is split (all but the down projection).
    pub fn first_matrices(self) -> u64 {
        match self {
            FfnKind::Gelu => 1,
            FfnKind::SwiGlu => 2,
        }
    }
}

/// Architecture facts of a decoder-only transformer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelArch {
    pub name: String,
    pub n_layers: u32,
    pub d_model: u32,
    pub n_heads: u32,
    /// Key/value heads (grouped-query attention); equals `n_heads` without GQA.
    pub n_kv_heads: u32,
    pub d_ff: u32,
    pub ffn: FfnKind,
    pub vocab_size: u32,
    pub tied_embeddings: bool,
    /// Learned absolute positions (GPT-2: 1024); 0 for rotary embeddings (LLaMA).
    pub learned_positions: u32,
    /// Linear layers carry biases (GPT-2) or not (LLaMA).
    pub biases: bool,
    /// LayerNorm (weight + bias) when true, RMSNorm (weight only) when false.
    pub layernorm_bias: bool,
}

/// Named architecture presets (architecture facts; sources in `arch()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelPreset {
    Gpt2Medium,
    Gpt2Xl,
    #[serde(rename = "llama-7b")]
    Llama7b,
    #[serde(rename = "llama2-7b")]
    Llama2_7b,
    #[serde(rename = "llama-13b")]
    Llama13b,
}

impl ModelPreset {
    pub const ALL: [ModelPreset; 5] = [Self::Gpt2Medium, Self::Gpt2Xl, Self::Llama7b, Self::Llama2_7b, Self::Llama13b];

    /// Published parameter count (for the 2 % check): GPT-2 (Radford et al. 2019) and the
    /// LLaMA / LLaMA 2 papers (Touvron et al. 2023a, 2023b).
    pub fn published_params(self) -> f64 {
        match self {
            Self::Gpt2Medium => 0.35e9,
            Self::Gpt2Xl => 1.56e9,
            Self::Llama7b | Self::Llama2_7b => 6.74e9,
            Self::Llama13b => 13.0e9,
        }
    }

    pub fn arch(self) -> ModelArch {
        // GPT-2: HuggingFace configs of gpt2-medium / gpt2-xl (n_layer, n_embd, n_head, n_inner =
        // 4·n_embd, vocab 50257, n_positions 1024, tied wte/lm_head, LayerNorm with bias).
        let gpt2 = |name: &str, n_layers, d_model, n_heads| ModelArch {
            name: name.to_string(),
            n_layers,
            d_model,
            n_heads,
            n_kv_heads: n_heads,
            d_ff: 4 * d_model,
            ffn: FfnKind::Gelu,
            vocab_size: 50257,
            tied_embeddings: true,
            learned_positions: 1024,
            biases: true,
            layernorm_bias: true,
        };
        // LLaMA: Touvron et al. 2023a Table 2 and the released params.json (SwiGLU hidden 11008
        // for 7B, 13824 for 13B; vocab 32000; untied output; RMSNorm; no biases; rotary).
        let llama = |name: &str, n_layers, d_model, n_heads, d_ff| ModelArch {
            name: name.to_string(),
            n_layers,
            d_model,
            n_heads,
            n_kv_heads: n_heads,
            d_ff,
            ffn: FfnKind::SwiGlu,
            vocab_size: 32000,
            tied_embeddings: false,
            learned_positions: 0,
            biases: false,
            layernorm_bias: false,
        };
        match self {
            Self::Gpt2Medium => gpt2("gpt2-medium", 24, 1024, 16),
            Self::Gpt2Xl => gpt2("gpt2-xl", 48, 1600, 25),
            Self::Llama7b => llama("llama-7b", 32, 4096, 32, 11008),
            // LLaMA 2 7B has the LLaMA-7B shape (Touvron et al. 2023b, Table 1).
            Self::Llama2_7b => llama("llama2-7b", 32, 4096, 32, 11008),
            Self::Llama13b => llama("llama-13b", 40, 5120, 40, 13824),
        }
    }
}

impl ModelArch {
    pub fn validate(&self) -> Validation {
        let positive = |field: &str, v: u32| {
            if v == 0 { Err(InvalidField::new(field, v, "must be >= 1")) } else { Ok(()) }
        };
        positive("n_layers", self.n_layers)?;
        positive("d_model", self.d_model)?;
        positive("n_heads", self.n_heads)?;
        positive("n_kv_heads", self.n_kv_heads)?;
        positive("d_ff", self.d_ff)?;
        positive("vocab_size", self.vocab_size)?;
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(InvalidField::new(
                "d_model",
                self.d_model,
                format!("must be a multiple of n_heads = {}", self.n_heads),
            ));
        }
        if self.n_kv_heads > self.n_heads || !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(InvalidField::new(
                "n_kv_heads",
                self.n_kv_heads,
                format!("must divide n_heads = {} (grouped-query attention)", self.n_heads),
            ));
        }
        Ok(())
    }

    pub fn d_head(&self) -> u64 {
        u64::from(self.d_model / self.n_heads)
    }

    fn norm_params(&self) -> u64 {
        u64::from(self.d_model) * if self.layernorm_bias { 2 } else { 1 }
    }

    /// Parameters of one attention head: its Q slice, its share of K/V (grouped-query heads share
    /// K/V, amortised per head), its W_O slice, bias shares and its share of the attention norm.
    pub fn head_params(&self) -> f64 {
        let (d, dh, h) = (self.d_model as f64, self.d_head() as f64, self.n_heads as f64);
        let kv_share = self.n_kv_heads as f64 / h;
        let mut p = d * dh * (1.0 + 2.0 * kv_share) + dh * d;
        if self.biases {
            p += dh * (1.0 + 2.0 * kv_share) + d / h;
        }
        p + self.norm_params() as f64 / h
    }

    /// Parameters of the FFN's first projection(s) (up, and gate for SwiGLU) with biases and the
    /// FFN norm: the part that runs on the edge when the FFN is split.
    pub fn ffn_first_params(&self) -> f64 {
        let (d, f) = (self.d_model as f64, self.d_ff as f64);
        let m = self.ffn.first_matrices() as f64;
        m * d * f + if self.biases { m * f } else { 0.0 } + self.norm_params() as f64
    }

    /// Parameters of the FFN's down projection (with bias).
    pub fn ffn_down_params(&self) -> f64 {
        let (d, f) = (self.d_model as f64, self.d_ff as f64);
        f * d + if self.biases { d } else { 0.0 }
    }

    pub fn layer_params(&self) -> f64 {
        self.head_params() * self.n_heads as f64 + self.ffn_first_params() + self.ffn_down_params()
    }

    /// Token (+ learned position) embedding parameters: they run on the edge (system-model §2).
    pub fn embedding_params(&self) -> f64 {
        let d = self.d_model as f64;
        (self.vocab_size as f64 + self.learned_positions as f64) * d
    }

    /// Final norm + LM head parameters that are *not* shared with the embedding.
    pub fn head_out_params(&self) -> f64 {
        let lm = if self.tied_embeddings { 0.0 } else { self.vocab_size as f64 * self.d_model as f64 };
        lm + self.norm_params() as f64
    }

    pub fn total_params(&self) -> f64 {
        self.embedding_params() + self.layer_params() * self.n_layers as f64 + self.head_out_params()
    }
}

/// Numeric precisions of a deployment: weights, KV cache, and boundary tensors.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Precisions {
    pub weight_bits: u8,
    pub kv_bits: u8,
}

/// Bytes of `values` boundary values quantised to `bits`. Below 16 bits, one FP16 scale per
/// group of `QUANT_GROUP_SIZE` values is sent too (group-wise absmax quantisation, the usual
/// scheme of 8/4-bit activation quantisers; an assumption, Splitwise does not give its format).
pub fn boundary_bytes(values: f64, bits: u8) -> f64 {
    let payload = values * f64::from(bits) / 8.0;
    if bits >= 16 { payload } else { payload + (values / QUANT_GROUP_SIZE).ceil() * 2.0 }
}

/// Group size of the boundary quantiser (assumption, see [`boundary_bytes`]).
pub const QUANT_GROUP_SIZE: f64 = 64.0;

/// Bytes of one sampled token id on the link (int32).
pub const TOKEN_ID_BYTES: f64 = 4.0;

/// Costs of one compute segment as affine functions of the tokens processed and the keys
/// attended, so one precomputed value serves every request length:
/// `flops = flops_per_token·n + flops_per_key·keys`, `bytes = weight_bytes + kv_bytes_per_key·keys
/// + act_bytes_per_token·n`, where `keys` is the number of (query, key) pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentCost {
    pub flops_per_token: f64,
    pub flops_per_key: f64,
    pub weight_bytes: f64,
    pub kv_bytes_per_key: f64,
    pub act_bytes_per_token: f64,
}

impl SegmentCost {
    pub fn add(&mut self, o: &SegmentCost) {
        self.flops_per_token += o.flops_per_token;
        self.flops_per_key += o.flops_per_key;
        self.weight_bytes += o.weight_bytes;
        self.kv_bytes_per_key += o.kv_bytes_per_key;
        self.act_bytes_per_token += o.act_bytes_per_token;
    }

    pub fn scaled(&self, k: f64) -> SegmentCost {
        SegmentCost {
            flops_per_token: self.flops_per_token * k,
            flops_per_key: self.flops_per_key * k,
            weight_bytes: self.weight_bytes * k,
            kv_bytes_per_key: self.kv_bytes_per_key * k,
            act_bytes_per_token: self.act_bytes_per_token * k,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.flops_per_token == 0.0 && self.weight_bytes == 0.0 && self.flops_per_key == 0.0
    }

    /// FLOPs for `n` tokens attending `keys` (query, key) pairs in total.
    pub fn flops(&self, n: f64, keys: f64) -> f64 {
        self.flops_per_token * n + self.flops_per_key * keys
    }

    /// Memory traffic: weights read once per forward pass, the KV cache read per query position
    /// (`kv_bytes_per_key·keys/n` per position would undercount: a batched prefill reads each
    /// key once, so callers pass the number of *distinct* keys for prefill, see [`Pass`]).
    pub fn bytes(&self, n: f64, distinct_keys: f64) -> f64 {
        self.weight_bytes + self.kv_bytes_per_key * distinct_keys + self.act_bytes_per_token * n
    }
}

/// One forward pass over `n` new tokens after `context` cached tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pass {
    pub n: f64,
    pub context: f64,
}

impl Pass {
    pub fn prefill(n_in: f64) -> Self {
        Self { n: n_in, context: 0.0 }
    }

    /// A decode step generating one token with `context` tokens already cached.
    pub fn decode(context: f64) -> Self {
        Self { n: 1.0, context }
    }

    /// Causal (query, key) pairs: token i (1-based) attends context + i keys.
    pub fn attended_pairs(&self) -> f64 {
        self.n * self.context + self.n * (self.n + 1.0) / 2.0
    }

    /// Keys whose K/V are read from (or written to) memory: context + n.
    pub fn distinct_keys(&self) -> f64 {
        self.context + self.n
    }
}

/// Per-sub-block costs of a model at a given precision, precomputed once per scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelCosts {
    pub arch: ModelArch,
    pub precisions: Precisions,
    /// One attention head (per layer; every head costs the same).
    pub head: SegmentCost,
    /// FFN first projection(s) (edge side of a split FFN).
    pub ffn_first: SegmentCost,
    /// FFN down projection (cloud side of a split FFN).
    pub ffn_down: SegmentCost,
    /// Final norm + LM head, for the one position whose logits are needed.
    pub lm_head: SegmentCost,
    /// Weight bytes of the embedding tables.
    pub embedding_weight_bytes: f64,
    /// KV-cache bytes of one head per cached token.
    pub kv_bytes_per_head_token: f64,
}

impl ModelCosts {
    pub fn new(arch: &ModelArch, precisions: Precisions) -> Self {
        let wb = f64::from(precisions.weight_bits) / 8.0;
        let kvb = f64::from(precisions.kv_bits) / 8.0;
        let (d, dh, h) = (arch.d_model as f64, arch.d_head() as f64, arch.n_heads as f64);
        let kv_share = arch.n_kv_heads as f64 / h;
        let head_params = arch.head_params();
        // A head's K and V (its GQA share) per cached token.
        let kv_bytes_per_head_token = 2.0 * dh * kv_share * kvb;
        let head = SegmentCost {
            // 2 FLOPs per weight per token for the projections; QK^T and AV: 2·d_head each per
            // (query, key) pair.
            flops_per_token: 2.0 * head_params,
            flops_per_key: 4.0 * dh,
            weight_bytes: head_params * wb,
            kv_bytes_per_key: kv_bytes_per_head_token,
            // Reads its share of the layer input and writes its W_O partial sum (FP16).
            act_bytes_per_token: 2.0 * (d / h + d),
        };
        let ffn_first_params = arch.ffn_first_params();
        let ffn_first = SegmentCost {
            flops_per_token: 2.0 * ffn_first_params,
            flops_per_key: 0.0,
            weight_bytes: ffn_first_params * wb,
            kv_bytes_per_key: 0.0,
            act_bytes_per_token: 2.0 * (d + arch.d_ff as f64),
        };
        let ffn_down_params = arch.ffn_down_params();
        let ffn_down = SegmentCost {
            flops_per_token: 2.0 * ffn_down_params,
            flops_per_key: 0.0,
            weight_bytes: ffn_down_params * wb,
            kv_bytes_per_key: 0.0,
            act_bytes_per_token: 2.0 * (d + arch.d_ff as f64),
        };
        let lm_params = arch.vocab_size as f64 * d + arch.norm_params() as f64;
        let lm_head = SegmentCost {
            // Logits are computed for one position per pass (the one being sampled); callers
            // evaluate it with n = 1.
            flops_per_token: 2.0 * lm_params,
            flops_per_key: 0.0,
            weight_bytes: lm_params * wb,
            kv_bytes_per_key: 0.0,
            act_bytes_per_token: 2.0 * (d + arch.vocab_size as f64),
        };
        Self {
            arch: arch.clone(),
            precisions,
            head,
            ffn_first,
            ffn_down,
            lm_head,
            embedding_weight_bytes: arch.embedding_params() * wb,
            kv_bytes_per_head_token,
        }
    }

    /// Weight bytes of the final norm + LM head that are not shared with the embedding.
    pub fn lm_head_extra_weight_bytes(&self) -> f64 {
        self.arch.head_out_params() * f64::from(self.precisions.weight_bits) / 8.0
    }

    pub fn layer_weight_bytes(&self) -> f64 {
        self.head.weight_bytes * self.arch.n_heads as f64 + self.ffn_first.weight_bytes + self.ffn_down.weight_bytes
    }

    pub fn total_weight_bytes(&self) -> f64 {
        self.embedding_weight_bytes
            + self.layer_weight_bytes() * self.arch.n_layers as f64
            + self.lm_head_extra_weight_bytes()
    }

    /// Values crossing the link at a residual-stream boundary, per token.
    pub fn hidden_values(&self) -> f64 {
        self.arch.d_model as f64
    }

    /// Values crossing when the FFN is split: the intermediate activation plus the residual
    /// stream, which the cloud needs for the residual add after the down projection.
    pub fn ffn_split_values(&self) -> f64 {
        self.arch.d_ff as f64 + self.arch.d_model as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_within_two_percent_of_published() {
        for preset in ModelPreset::ALL {
            let arch = preset.arch();
            arch.validate().unwrap();
            let rel = arch.total_params() / preset.published_params() - 1.0;
            assert!(rel.abs() < 0.02, "{preset:?}: {} params, {rel:+.4} off", arch.total_params());
        }
    }

    #[test]
    fn llama_7b_count_matches_hand_computation() {
        // 32 layers × (4·4096² attention + 3·4096·11008 FFN + 2·4096 RMSNorm)
        // + 32000·4096 embedding + 32000·4096 LM head + 4096 final norm.
        let per_layer = 4.0 * 4096.0 * 4096.0 + 3.0 * 4096.0 * 11008.0 + 2.0 * 4096.0;
        let expected = 32.0 * per_layer + 2.0 * 32000.0 * 4096.0 + 4096.0;
        let got = ModelPreset::Llama7b.arch().total_params();
        assert_eq!(got, expected);
        assert_eq!(expected, 6_738_415_616.0); // the number the HF checkpoint reports
    }

    #[test]
    fn gpt2_xl_count_matches_hand_computation() {
        // Per layer: 12·d² weights + (3d + d) attention biases + (4d + d) FFN biases + 2·2d LN.
        let d = 1600.0;
        let per_layer = 12.0 * d * d + 4.0 * d + 5.0 * d + 4.0 * d;
        // wte (tied with the LM head) + wpe + final LN.
        let expected = 48.0 * per_layer + 50257.0 * d + 1024.0 * d + 2.0 * d;
        assert_eq!(ModelPreset::Gpt2Xl.arch().total_params(), expected);
        assert_eq!(expected, 1_557_611_200.0); // HF gpt2-xl num_parameters()
    }

    #[test]
    fn sub_blocks_add_up_to_layer() {
        let a = ModelPreset::Llama13b.arch();
        let c = ModelCosts::new(&a, Precisions { weight_bits: 16, kv_bits: 16 });
        let layer = c.layer_weight_bytes() / 2.0;
        assert!((layer - a.layer_params()).abs() < 1e-3);
        assert!((c.total_weight_bytes() / 2.0 - a.total_params()).abs() < 1.0);
    }

    #[test]
    fn decode_costs_of_one_llama_7b_layer() {
        // A decode step at context 127: every weight is read once (memory-bound):
        // 202.4M params × 2 B = 404.8 MB; FLOPs = 2 × params + attention 4·128·(128 keys)·32 heads.
        let a = ModelPreset::Llama7b.arch();
        let c = ModelCosts::new(&a, Precisions { weight_bits: 16, kv_bits: 16 });
        let pass = Pass::decode(127.0);
        let heads = c.head.scaled(32.0);
        let mut layer = heads;
        layer.add(&c.ffn_first);
        layer.add(&c.ffn_down);
        let params = 4.0 * 4096.0 * 4096.0 + 3.0 * 4096.0 * 11008.0 + 2.0 * 4096.0;
        let flops = layer.flops(pass.n, pass.attended_pairs());
        assert_eq!(flops, 2.0 * params + 4.0 * 128.0 * 128.0 * 32.0);
        // KV: 2 (K, V) × 4096 values × 2 B per token, 128 tokens.
        let kv = 2.0 * 4096.0 * 2.0 * 128.0;
        let bytes = layer.bytes(pass.n, pass.distinct_keys());
        let act = layer.act_bytes_per_token;
        assert!((bytes - (params * 2.0 + kv + act)).abs() < 1e-3);
    }

    #[test]
    fn prefill_pairs_are_causal() {
        // 3 new tokens, no context: 1 + 2 + 3 = 6 (query, key) pairs.
        assert_eq!(Pass::prefill(3.0).attended_pairs(), 6.0);
        // Decode at context 10: one query attends 11 keys (itself included).
        assert_eq!(Pass::decode(10.0).attended_pairs(), 11.0);
    }

    #[test]
    fn ffn_split_is_larger_than_hidden() {
        // The split FFN sends d_ff + d_model values: (11008 + 4096)/4096 = 3.69 for LLaMA
        // (the intermediate alone is 2.7×) and (6400 + 1600)/1600 = 5 for GPT-2 XL (4×).
        let l = ModelCosts::new(&ModelPreset::Llama7b.arch(), Precisions { weight_bits: 16, kv_bits: 16 });
        assert!((l.ffn_split_values() / l.hidden_values() - 15104.0 / 4096.0).abs() < 1e-12);
        let g = ModelCosts::new(&ModelPreset::Gpt2Xl.arch(), Precisions { weight_bits: 16, kv_bits: 16 });
        assert_eq!(g.ffn_split_values() / g.hidden_values(), 5.0);
    }

    #[test]
    fn boundary_quantisation_bytes() {
        // 4096 values: 16-bit 8192 B; 8-bit 4096 + 64 groups × 2 B = 4224 B; 4-bit 2048 + 128.
        assert_eq!(boundary_bytes(4096.0, 16), 8192.0);
        assert_eq!(boundary_bytes(4096.0, 8), 4224.0);
        assert_eq!(boundary_bytes(4096.0, 4), 2176.0);
    }

    #[test]
    fn invalid_arch_names_the_field() {
        let mut a = ModelPreset::Gpt2Medium.arch();
        a.n_kv_heads = 5;
        assert_eq!(a.validate().unwrap_err().field, "n_kv_heads");
        a.n_kv_heads = 16;
        a.n_heads = 0;
        assert_eq!(a.validate().unwrap_err().field, "n_heads");
    }
}
