"""Measures shared by the models trained here and external ones: routing sets, load, head importance, the task probe."""
