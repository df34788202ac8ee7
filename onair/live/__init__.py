"""A live show on this node: its studio, its program feed, and what they tell the world."""
