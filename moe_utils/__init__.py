"""Helpers shared by the moe-experiments notebooks."""
