//! CartPole-v1 (placeholder: being ported).
