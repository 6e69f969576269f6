"""Rollout strategies: RollingUpdate and Recreate, one sync step each."""
