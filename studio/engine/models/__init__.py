"""The model manager: the catalog, the user's installed models, imports and downloads.

Used by `studio models ...`, the window's model picker and the installer. Nothing here imports
torch at module level; importing a file loads it through `studio.engine.neural.loader`.
"""

from studio.engine.models._catalog import (
    CatalogEntry,
    Recommendation,
    catalog,
    catalog_entry,
    catalog_path,
    recommendations,
)
from studio.engine.models._download import ProgressCallback, download, fetch
from studio.engine.models.store import (
    ImportResult,
    InstalledModel,
    VerifyResult,
    import_folder,
    import_model,
    installed_model,
    installed_models,
    model_file,
    remove,
    verify,
)

__all__ = [
    "CatalogEntry",
    "ImportResult",
    "InstalledModel",
    "ProgressCallback",
    "Recommendation",
    "VerifyResult",
    "catalog",
    "catalog_entry",
    "catalog_path",
    "download",
    "fetch",
    "import_folder",
    "import_model",
    "installed_model",
    "installed_models",
    "model_file",
    "recommendations",
    "remove",
    "verify",
]
