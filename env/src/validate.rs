//! Config validation errors. Every config section validates itself and reports the first invalid
//! field as `InvalidField { field, value, allowed }`, with `field` a dotted path relative to the
//! section; callers prefix their own path (`under`) and the binary adds the file name, so a user
//! reads e.g. `configs/x.toml: link.snr.nakagami_m = 0.3: must be >= 0.5 (Nakagami-m shape)`.

use std::fmt::Display;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} = {value}: {allowed}")]
pub struct InvalidField {
    pub field: String,
    pub value: String,
    pub allowed: String,
}

pub type Validation = Result<(), InvalidField>;

impl InvalidField {
    pub fn new(field: impl Into<String>, value: impl Display, allowed: impl Into<String>) -> Self {
        Self { field: field.into(), value: value.to_string(), allowed: allowed.into() }
    }

    /// Prefixes the field path with the enclosing section: `under("link")` turns `snr.mean_db`
    /// into `link.snr.mean_db`.
    pub fn under(mut self, prefix: &str) -> Self {
        if !prefix.is_empty() {
            self.field = if self.field.is_empty() { prefix.to_string() } else { format!("{prefix}.{}", self.field) };
        }
        self
    }
}

/// `lo <= value <= hi` and finite.
pub fn in_range(field: &str, value: f64, lo: f64, hi: f64, what: &str) -> Validation {
    if value.is_finite() && value >= lo && value <= hi {
        Ok(())
    } else {
        Err(InvalidField::new(field, value, format!("must be in [{lo}, {hi}] ({what})")))
    }
}

/// `value > 0` and finite.
pub fn positive(field: &str, value: f64, what: &str) -> Validation {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(InvalidField::new(field, value, format!("must be a finite number > 0 ({what})")))
    }
}

/// `value >= 0` and finite.
pub fn non_negative(field: &str, value: f64, what: &str) -> Validation {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(InvalidField::new(field, value, format!("must be a finite number >= 0 ({what})")))
    }
}

/// A probability in [0, 1].
pub fn probability(field: &str, value: f64) -> Validation {
    in_range(field, value, 0.0, 1.0, "a probability")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_field_value_and_rule() {
        let e = positive("bandwidth_bps", -3.0, "link rate").unwrap_err().under("link.rate");
        assert_eq!(e.field, "link.rate.bandwidth_bps");
        assert_eq!(e.to_string(), "link.rate.bandwidth_bps = -3: must be a finite number > 0 (link rate)");
        assert!(in_range("m", f64::NAN, 0.5, 100.0, "x").is_err());
        assert!(probability("p", 1.0).is_ok());
    }
}
