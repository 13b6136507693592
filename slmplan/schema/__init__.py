"""pydantic models only: catalog, device profile, estimate results."""

from slmplan.schema.catalog import Catalog, CatalogModel, CatalogVariant
from slmplan.schema.device import DeviceProfile
from slmplan.schema.estimate import EnergyEstimate, FitResult, MemoryEstimate, SpeedEstimate

__all__ = [
    "Catalog", "CatalogModel", "CatalogVariant", "DeviceProfile",
    "EnergyEstimate", "FitResult", "MemoryEstimate", "SpeedEstimate",
]
