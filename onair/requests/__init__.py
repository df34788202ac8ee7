"""Song requests: a listener asks for a song (with a dedication); the crew queues or dismisses."""
