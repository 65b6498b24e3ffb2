"""The MLOps half of a use case: train, validate (the gate) and release."""
