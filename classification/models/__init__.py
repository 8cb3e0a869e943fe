"""The model zoo by the paper's names; see :func:`build_model`."""
from classification.models.factory import MODELS, build_model, check_model_name, list_models, model_names

__all__ = ["MODELS", "build_model", "check_model_name", "list_models", "model_names"]
