"""Discovery: one search box over shows, hosts, hashtags, artists and songs, and "who is
playing this now?" from the play log."""
