"""Shared code of the moe-experiments notebooks; see README's Layout for the subpackages."""
