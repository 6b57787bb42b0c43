"""The domain: specs, run state machine, eval gate, and the service-layer handlers."""
