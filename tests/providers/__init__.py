"""Tests for appserver.engine.providers (real HTTP against tests.support.mock_model)."""
