"""The live room: typed events with sequence numbers, fanned out over one WebSocket per room."""
