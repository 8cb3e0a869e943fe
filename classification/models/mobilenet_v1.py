"""MobileNet V1 (filled in by the model-zoo work)."""
