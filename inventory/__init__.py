"""The inventory: a city's departments, systems, hosts and network, validated (see `model.py`)."""

from inventory.loader import DEFAULT_INVENTORY, InventoryError, Problem, load
from inventory.model import Inventory

__all__ = ["DEFAULT_INVENTORY", "Inventory", "InventoryError", "Problem", "load"]
