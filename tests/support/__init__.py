"""Shared test helpers (mock model server and friends); imported by tests, never by appserver."""
