"""Checkout platforms as sources of carts and payments (SPEC §11)."""
