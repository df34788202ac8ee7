"""The play log (every song played, for whom and how long) and, later, royalty reports."""
