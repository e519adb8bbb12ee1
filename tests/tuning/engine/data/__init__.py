"""Test data for the engine's tests (generated in code, nothing downloaded)."""
