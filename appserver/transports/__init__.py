"""transports layer (see ARCHITECTURE.md)."""
