//! Observation and action space descriptions. Observations are flat `f32` vectors whose features
//! are named, documented and bounded; actions are multi-discrete index vectors (a discrete space
//! is the one-component case) with boolean masks returned alongside the observation, so agents
//! stay generic over environments.

use serde::{Deserialize, Serialize};

/// One observation feature: its name, finite bounds, unit and how it is computed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    pub low: f32,
    pub high: f32,
    pub unit: String,
    pub description: String,
}

impl Feature {
    pub fn new(name: impl Into<String>, low: f32, high: f32, unit: &str, description: &str) -> Self {
        let feature =
            Self { name: name.into(), low, high, unit: unit.to_string(), description: description.to_string() };
        assert!(
            low.is_finite() && high.is_finite() && low < high,
            "feature {} needs finite bounds low < high, got [{low}, {high}]",
            feature.name
        );
        feature
    }
}

/// A box observation space with a layout name. The layout name plus the fingerprint identify the
/// exact feature order and bounds; checkpoints record both so a policy never runs on a layout it
/// was not trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservationSpace {
    pub layout: String,
    pub features: Vec<Feature>,
}

impl ObservationSpace {
    pub fn dim(&self) -> usize {
        self.features.len()
    }

    /// FNV-1a (64-bit) over the layout name, every feature name, unit and bound: stable across
    /// Rust releases (unlike `DefaultHasher`) and across platforms.
    pub fn fingerprint(&self) -> String {
        use std::hash::Hasher;
        let mut h = fnv::FnvHasher::default();
        h.write(self.layout.as_bytes());
        for f in &self.features {
            h.write(&[0xff]);
            h.write(f.name.as_bytes());
            h.write(&[0xfe]);
            h.write(f.unit.as_bytes());
            h.write(&f.low.to_le_bytes());
            h.write(&f.high.to_le_bytes());
        }
        format!("{:016x}", h.finish())
    }

    /// Index of the first feature outside its bounds (or not finite), if any.
    pub fn first_violation(&self, obs: &[f32]) -> Option<usize> {
        assert_eq!(obs.len(), self.dim(), "observation length");
        obs.iter().zip(&self.features).position(|(&x, f)| !(x.is_finite() && x >= f.low && x <= f.high))
    }
}

/// A multi-discrete action space: component `k` takes values `0..nvec[k]`. A discrete space has
/// one component. The mask of a state is the concatenation of one boolean per value of every
/// component, in component order (`mask_len() == nvec.iter().sum()`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionSpace {
    pub nvec: Vec<usize>,
    pub names: Vec<String>,
}

impl ActionSpace {
    pub fn discrete(n: usize, name: &str) -> Self {
        Self::multi_discrete(vec![(name.to_string(), n)])
    }

    pub fn multi_discrete(components: Vec<(String, usize)>) -> Self {
        assert!(!components.is_empty(), "an action space needs at least one component");
        assert!(components.iter().all(|(_, n)| *n >= 1), "every component needs at least one value");
        let (names, nvec) = components.into_iter().unzip();
        Self { nvec, names }
    }

    pub fn n_components(&self) -> usize {
        self.nvec.len()
    }

    pub fn mask_len(&self) -> usize {
        self.nvec.iter().sum()
    }

    /// Offset of component `k`'s block in a mask.
    pub fn mask_offset(&self, k: usize) -> usize {
        self.nvec[..k].iter().sum()
    }

    /// Whether `action` is in range and allowed by `mask` in every component.
    pub fn allows(&self, action: &[usize], mask: &[bool]) -> bool {
        if action.len() != self.nvec.len() || mask.len() != self.mask_len() {
            return false;
        }
        let mut offset = 0;
        for (&a, &n) in action.iter().zip(&self.nvec) {
            if a >= n || !mask[offset + a] {
                return false;
            }
            offset += n;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> ObservationSpace {
        ObservationSpace {
            layout: "test-v1".into(),
            features: vec![Feature::new("a", 0.0, 1.0, "1", "a"), Feature::new("b", -1.0, 1.0, "1", "b")],
        }
    }

    #[test]
    fn fingerprint_changes_with_bounds_and_order() {
        let s = space();
        let mut t = space();
        t.features[1].high = 2.0;
        let mut u = space();
        u.features.swap(0, 1);
        assert_ne!(s.fingerprint(), t.fingerprint());
        assert_ne!(s.fingerprint(), u.fingerprint());
        assert_eq!(s.fingerprint(), space().fingerprint());
    }

    #[test]
    fn violations_are_found() {
        let s = space();
        assert_eq!(s.first_violation(&[0.5, 0.0]), None);
        assert_eq!(s.first_violation(&[0.5, 1.5]), Some(1));
        assert_eq!(s.first_violation(&[f32::NAN, 0.0]), Some(0));
    }

    #[test]
    fn masks_are_concatenated_per_component() {
        let a = ActionSpace::multi_discrete(vec![("x".into(), 2), ("y".into(), 3)]);
        assert_eq!(a.mask_len(), 5);
        assert_eq!(a.mask_offset(1), 2);
        let mask = [true, false, false, true, true];
        assert!(a.allows(&[0, 1], &mask));
        assert!(!a.allows(&[1, 1], &mask));
        assert!(!a.allows(&[0, 0], &mask));
        assert!(!a.allows(&[0, 3], &mask));
    }
}
