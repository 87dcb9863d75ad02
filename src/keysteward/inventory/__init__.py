"""Importing credential inventories from provider exports, and exporting them."""
