//! Learning agents on burn 0.22.
