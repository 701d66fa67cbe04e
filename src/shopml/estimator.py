"""The one estimator contract of shopml, on scikit-learn's ``BaseEstimator``.

* ``get_params``, ``set_params``, ``clone`` and ``repr`` come from ``__init__``, which only
  stores its arguments; learned state ends in ``_``; ``fit`` returns ``self``.
* One fitted check (:meth:`Estimator._check_fitted`) and one ``save``/``load``: a model folder
  of model.json + safetensors through :mod:`shopml.artifacts` (never pickle). A subclass names
  its ``kind`` and implements ``_artifact()`` and ``_from_artifact(model_dir)``.
* One documented return type per kind (see :mod:`shopml.testing`): a recommender or session
  model returns per history a list of ``{"item_id", "score", ...}`` dicts, a classifier
  probabilities, a forecaster a frame per customer, a demand model an array of expected units.

Example:
    >>> from sklearn.base import clone
    >>> from shopml.customers.bgnbd import BGNBD
    >>> clone(BGNBD(penalizer=0.1))
    BGNBD(penalizer=0.1)
"""

from __future__ import annotations

from sklearn.base import BaseEstimator

from shopml.artifacts import read_model_dir, write_model_dir
from shopml.errors import NotFittedError

__all__ = ["Estimator"]


class Estimator(BaseEstimator):
    """Base of every shopml estimator (see the module docstring)."""

    kind = "estimator"
    #: Old parameter name -> new, so folders saved before a rename still load (a name that is
    #: still a parameter of the class keeps its meaning).
    renamed_params: dict = {"hidden": "dim", "time_budget": "max_seconds", "n_models": "n_members",
                            "val_fraction": "valid_fraction"}

    def __sklearn_is_fitted__(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")

    def save(self, path) -> None:
        """Write the fitted model to a folder (model.json + tensors.safetensors; no pickle)."""
        self._check_fitted()
        params, tensors, meta = self._artifact()
        write_model_dir(path, kind=self.kind, params={**self.get_params(deep=False), **params},
                        tensors=tensors, meta=meta)

    @classmethod
    def load(cls, path):
        """Load a folder written by :meth:`save` (refuses other model kinds)."""
        md = read_model_dir(path, kind=cls.kind)
        names = set(cls._get_param_names())
        params = {k if k in names else cls.renamed_params.get(k, k): v for k, v in md.params.items()}
        self = cls(**{k: v for k, v in params.items() if k in names})
        self._from_artifact(md)
        return self

    def _artifact(self) -> tuple[dict, dict, dict]:
        """``(extra params, tensors, meta)`` of the fitted state."""
        raise NotImplementedError

    def _from_artifact(self, md) -> None:
        """Restore the fitted state from a :class:`shopml.artifacts.ModelDir`."""
        raise NotImplementedError
