"""Show lifecycle (scheduled → live → ended), hashtags, lists and the show's queue."""
