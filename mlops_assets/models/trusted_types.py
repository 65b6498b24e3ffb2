"""Which types a stored scikit-learn artifact may hold: decided by code, never by the
artifact.

skops loads without pickle, trusting on its own only plain containers, numpy arrays and
scikit-learn's estimators; every other type it finds it reports, unloaded. Such a type is
allowed when it is the estimator class the use case's YAML names (the YAML is code), or a
class under a fixed list of package prefixes. A function (a `FunctionTransformer`'s `func`,
a scorer), or any class elsewhere, is refused with its name, before anything is imported.
"""

from __future__ import annotations

import hashlib
import re

from mlops_assets.errors import MlopsError

TRUSTED_PREFIXES = ("sklearn.", "xgboost.", "lightgbm.", "scipy.sparse.")
"""Classes of these packages may be stored (their functions may not)."""
TRUSTED_NUMPY = frozenset(
    {
        "numpy.dtype",
        "numpy.ndarray",
        "numpy.float64",
        "numpy.float32",
        "numpy.int64",
        "numpy.int32",
        "numpy.int8",
        "numpy.uint8",
        "numpy.bool_",
        "numpy.str_",
        "numpy.random._pcg64.PCG64",
        "numpy.random._generator.Generator",
        "numpy.random.mtrand.RandomState",
        "numpy.random._mt19937.MT19937",
    }
)
_CLASS = re.compile(r"_*[A-Z][A-Za-z0-9_]*")
"""A class name by convention: what distinguishes `...predictor.TreePredictor` from a
function such as `sklearn.utils._testing.assert_run_python_script_without_output`."""


class UntrustedArtifactError(MlopsError, RuntimeError):
    """The artifact holds types outside the trusted list."""


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def allowed(name: str, estimators: tuple[str, ...] = ()) -> bool:
    if name in estimators or name in TRUSTED_NUMPY:
        return True
    last = name.rpartition(".")[2]
    return name.startswith(TRUSTED_PREFIXES) and bool(_CLASS.fullmatch(last))


def trusted_types(data: bytes, estimators: tuple[str, ...] = ()) -> list[str]:
    """The types skops must be told to trust to load `data`; refuses any that code does
    not allow (`estimators`: the class paths of the estimators the YAML names)."""
    import skops.io as sio

    found = sio.get_untrusted_types(data=data)
    refused = [t for t in found if not allowed(t, estimators)]
    if refused:
        raise UntrustedArtifactError(
            "artifact holds types outside the trusted list: "
            f"{', '.join(refused)} (a stored model may hold classes of "
            f"{', '.join(TRUSTED_PREFIXES)} and the estimator the use case names; no "
            "function, no other class)"
        )
    return list(found)


def allowlist_digest(estimators: tuple[str, ...] = ()) -> str:
    """A hash of the rule above with its estimators, pinned in the values file: a server
    whose code allows other types than the release was made with refuses to start."""
    text = "\n".join([*TRUSTED_PREFIXES, *sorted(TRUSTED_NUMPY), _CLASS.pattern, *estimators])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
