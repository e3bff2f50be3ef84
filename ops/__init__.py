"""Operator commands that run outside Lambda against the deployed table."""
