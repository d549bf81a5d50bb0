"""Monitoring: image and model features, the reference profile, and drift tests against it."""
