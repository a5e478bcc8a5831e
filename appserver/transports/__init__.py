"""transports layer (see DESIGN.md)."""
