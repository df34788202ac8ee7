"""Restream: the host's RTMP destinations and pushing a live show to them (onair.media.restream
does the pushing)."""
