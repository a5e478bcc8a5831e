"""Tests of appserver.store."""
