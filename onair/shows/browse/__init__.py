"""Browsing shows: live now by listeners, by genre (ranked by what the shows really play), by
hashtag (trending over the last 24 hours) and by host."""
