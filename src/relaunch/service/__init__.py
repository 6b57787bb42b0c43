"""The service layer: handlers that take a command or an event and drive the ports (store, bus, backends)."""
