"""Secret rotation: a crash-safe state machine driven by pluggable rotators."""
